# Production Vault server: integrated Raft storage on a persistent volume, TLS only, no dev
# mode, no root token anywhere (scripts/prod/operator-init.sh, unseal.sh, first-bootstrap.sh).
# docker-compose.prod.yml mounts this file at /vault/config/vault-server.hcl; the tests run the
# same file with bao, on loopback ports and temporary folders.

storage "raft" {
  path    = "/vault/data"
  node_id = "vault-1"
}

listener "tcp" {
  address         = "0.0.0.0:8200"
  cluster_address = "0.0.0.0:8201"
  tls_cert_file   = "/vault/tls/server.pem"
  tls_key_file    = "/vault/tls/server-key.pem"
  tls_min_version = "tls12"
}

api_addr     = "https://vault:8200"
cluster_addr = "https://vault:8201"

# With integrated storage, HashiCorp recommends disabling mlock: Raft memory-maps its
# database, and locking that memory can exhaust it. Use encrypted swap, or none, instead.
disable_mlock = true
ui            = false
