# Kubernetes: the pod's service account token is its identity, so the agent logs in with
# Vault's kubernetes auth method instead of AppRole, and no secret id has to be delivered.
# Given last, after env/<APP_ENV>.hcl: an agent takes auto_auth whole from the last file that
# has one, so this block replaces the AppRole one (the rest of env/<APP_ENV>.hcl stays).
#
#   vault agent -config=config/agent.hcl -config=config/prod.hcl -config=config/kubernetes.hcl
#
# The role is <app>-app-<env> (scripts/lib/app-name.sh), bound by scripts/kubernetes-auth.sh to
# the service account saas-app in the namespace saas and the audience vault; another
# application or environment names its own role here. The token is projected by the kubelet
# for the audience vault into the agent's container only (the pod mounts no default token:
# deploy/kubernetes/overlays/native-sidecar/agent-sidecar.yaml), rotated by the kubelet, and
# read again at every login.

auto_auth {
  method "kubernetes" {
    # As env/prod.hcl's AppRole login: from 1 s, doubling, up to 30 s between failed logins.
    # The agent also paces the template's read retries with them (env/<env>.hcl counts them).
    min_backoff = "1s"
    max_backoff = "30s"
    config = {
      role       = "saas-app-prod"
      token_path = "/var/run/secrets/vault/token"
    }
  }

  sink "file" {
    config = {
      path = "secrets/token"
      mode = 0440
    }
  }
}
