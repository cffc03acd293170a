# saas-orchestrator: what the trusted orchestrator (CI/CD, the Kubernetes operator, the
# deploy job) may do: mint secret ids for the app's roles saas-app-<env>, and only
# response-wrapped ones, so the orchestrator hands the app a wrapping token it never sees inside.
# One block per environment: a glob such as saas-app-* would also let it update the role itself.
path "auth/approle/role/saas-app-dev/secret-id" {
  capabilities     = ["update"]
  min_wrapping_ttl = "1s"
  max_wrapping_ttl = "10m"
}
path "auth/approle/role/saas-app-staging/secret-id" {
  capabilities     = ["update"]
  min_wrapping_ttl = "1s"
  max_wrapping_ttl = "10m"
}
path "auth/approle/role/saas-app-prod/secret-id" {
  capabilities     = ["update"]
  min_wrapping_ttl = "1s"
  max_wrapping_ttl = "10m"
}
