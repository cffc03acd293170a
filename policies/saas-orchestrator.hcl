# saas-orchestrator: what the trusted orchestrator (CI/CD, the Kubernetes operator, the
# deploy job) may do: mint secret ids for saas-app-role, and only response-wrapped ones, so
# the orchestrator hands the app a wrapping token it never sees inside.
path "auth/approle/role/saas-app-role/secret-id" {
  capabilities     = ["update"]
  min_wrapping_ttl = "1s"
  max_wrapping_ttl = "10m"
}
