# saas-app-staging: what the SaaS service may do in the staging environment.
# Read its own secrets (KV v2 data paths) and nothing else: no list, no metadata,
# no write, no other environment. Token self-management (lookup-self, renew-self)
# comes from Vault's built-in default policy, which AppRole tokens also carry.
path "secret/data/saas-project/staging/*" {
  capabilities = ["read"]
}
