# saas-app-prod: what the SaaS service may do in the prod environment.
# Read its own secrets (KV v2 data paths) and its own database credentials, renew
# their leases, and nothing else: no list, no metadata, no write, no other environment.
# Token self-management (lookup-self, renew-self) comes from Vault's built-in default
# policy, which AppRole tokens also carry.
path "secret/data/saas-project/prod/*" {
  capabilities = ["read"]
}

# The `dynamic` way (scripts/database-engine.sh): a PostgreSQL user of its own, issued for
# this environment only, under a lease.
path "database/creds/saas-app-prod" {
  capabilities = ["read"]
}

# Renewing such a lease (PUT with its lease_id in the body): only a holder of the lease id
# can name it. OpenBao's built-in default policy grants the same (and sys/leases/lookup), but
# a token created without it (no_default_policy, token_no_default_policy) would be left
# unable to renew: this policy alone is enough. No revoke: the lease ends with its TTL, or
# with the token that read it.
path "sys/leases/renew" {
  capabilities = ["update"]
}
