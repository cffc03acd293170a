# saas-orchestrator-prod: what the trusted orchestrator of prod (its CI/CD, the deploy job)
# may do: mint secret ids for the app's role saas-app-prod, and only response-wrapped ones, so
# the orchestrator hands the app a wrapping token it never sees inside. One policy and one
# token role per environment: a staging orchestrator's token cannot mint a prod secret id.
path "auth/approle/role/saas-app-prod/secret-id" {
  capabilities     = ["update"]
  min_wrapping_ttl = "1s"
  max_wrapping_ttl = "10m"
}
