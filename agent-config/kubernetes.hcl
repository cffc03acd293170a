# Kubernetes: the pod's service account token is its identity, so the agent logs in with
# Vault's kubernetes auth method instead of AppRole, and no secret id has to be delivered.
# Given last, after env/<APP_ENV>.hcl: an agent takes auto_auth whole from the last file that
# has one, so this block replaces the AppRole one (the rest of env/<APP_ENV>.hcl stays, but for
# template_config, below).
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

# In a pod the agent does not exit when its reads keep failing (env/prod.hcl's
# exit_on_retry_failure, which compose keeps): after the 12 retries it starts its template
# runner again in-process ("template server restart", backing off from about 1 s), its container
# stays Running, renews its token, and renders as soon as Vault answers. A native sidecar that
# exits takes its pod out of the Service until the kubelet has started it again (its back-off:
# 10 s, doubling), and a Vault outage would make every replica's agent exit at about the same
# time; the pod's readiness is then the app's /readyz, which answers 503 once the token or the
# lease is no longer good. A crash is still the kubelet's to restart, and the liveness probe
# (overlays/native-sidecar/agent-sidecar.yaml) restarts an agent whose token Vault refuses.
# An agent takes template_config whole from the last file that differs from the default, so
# the render interval is env/prod.hcl's again.
template_config {
  static_secret_render_interval = "5m"
  exit_on_retry_failure         = false
}
