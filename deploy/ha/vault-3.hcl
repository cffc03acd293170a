# Three-node HA Vault (Raft integrated storage, TLS): node vault-3 of vault-1, vault-2, vault-3.
# Each node runs `vault server -config=<this file>` (or `bao server`) on its own host, reachable
# as vault-3, with its own persistent volume at /vault/data and the cluster's TLS files at
# /vault/tls (a certificate valid for vault-1, vault-2 and vault-3). Initialise ONE node
# (scripts/prod/operator-init.sh), unseal it; the two others join it through retry_join, then
# take the same unseal keys (scripts/prod/unseal.sh). specs/vault/plan-vault.md, section 5.
# The tests run these three files with bao, on loopback ports and temporary folders.

storage "raft" {
  path    = "/vault/data"
  node_id = "vault-3"

  # The other two nodes: an uninitialised node keeps trying them until one answers as an
  # initialised, unsealed leader (or a standby that forwards), then joins its cluster.
  retry_join {
    leader_api_addr     = "https://vault-1:8200"
    leader_ca_cert_file = "/vault/tls/ca.pem"
  }
  retry_join {
    leader_api_addr     = "https://vault-2:8200"
    leader_ca_cert_file = "/vault/tls/ca.pem"
  }
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

api_addr     = "https://vault-3:8200"
cluster_addr = "https://vault-3:8201"

# OpenBao 2.x: a file audit device declared here (OpenBao refuses `audit enable` over the API),
# on the persistent volume. HashiCorp Vault ignores this block, without a word (v1.21.4):
# scripts/prod/first-bootstrap.sh enables the same device over the API when the server lists
# none, before it revokes the root token.
# Keep this block identical on the three nodes: the device is recorded in the cluster's
# replicated audit table, and a node declaring other options (another file_path) failed to take
# over as leader in our tests. Reopened on SIGHUP, for logrotate.
# The file sits in the Raft folder itself, which exists and is the server's: the device would
# create a missing parent folder with the file's mode (0600), which a non-root server cannot enter.
audit "file" "file" {
  options {
    file_path = "/vault/data/audit.log"
  }
}

# The second device (deploy/vault-server.hcl says why), the same on every node.
audit "file" "file-audit" {
  options {
    file_path = "/vault/audit/audit.log"
  }
}

disable_mlock = true
ui            = false
