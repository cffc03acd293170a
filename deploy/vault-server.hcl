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
  # TLS 1.3 only: every suite it has is AEAD with an ephemeral key exchange (TLS 1.2 offered
  # CBC suites), and every client shipped speaks it (the service's Node.js, the Go CLI, agent
  # and Raft peers). service/test/deploy/tls-suites.test.ts checks it with testssl.sh.
  tls_min_version = "tls13"
}

api_addr     = "https://vault:8200"
cluster_addr = "https://vault:8201"

# A file audit device on the persistent volume (the runbook reads it). OpenBao 2.x takes it
# only from here: it refuses `audit enable` over the API. HashiCorp Vault ignores this block,
# without a word (v1.21.4): scripts/prod/first-bootstrap.sh enables the same device over the
# API when the server lists none, before it revokes the root token.
# Secrets, tokens and secret ids appear only as HMACs. Reopened on SIGHUP, for logrotate.
# The file sits in the Raft folder itself, which exists and is the server's: the device would
# create a missing parent folder with the file's mode (0600), which a non-root server cannot enter.
audit "file" "file" {
  options {
    file_path = "/vault/data/audit.log"
  }
}

# A second file device on a volume of its own: Vault answers a request once any one device has
# logged it, so a full Raft volume (or a full audit volume) no longer stops every request.
# scripts/prod/rotate-audit-log.sh rotates either file (rename, SIGHUP, keep the newest few).
audit "file" "file-audit" {
  options {
    file_path = "/vault/audit/audit.log"
  }
}

# With integrated storage, HashiCorp recommends disabling mlock: Raft memory-maps its
# database, and locking that memory can exhaust it. Use encrypted swap, or none, instead.
disable_mlock = true
ui            = false
