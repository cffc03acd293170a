# Vault Agent for the SaaS service: AppRole auto-auth, a token sink, and one template that
# renders every secret the service needs. Runs unchanged with `vault agent` (compose) and
# `bao agent` (tests, local stack):
#
#   cd <agent dir> && vault agent -config=config/agent.hcl -config=config/env/<APP_ENV>.hcl
#
# Paths are relative to the agent's working directory, laid out like the Kubernetes injector:
#   config/       this folder, read-only
#   credentials/  role-id and secret-id, written by scripts/bootstrap.sh
#   secrets/      a tmpfs shared with the service: the token sink and the rendered file
# The server's address comes from VAULT_ADDR (BAO_ADDR for bao). The template reads APP_ENV.
# config/env/<APP_ENV>.hcl adds what differs per environment: how often KV is re-read, and
# how long failures are retried before the agent gives up.

auto_auth {
  method "approle" {
    # Between failed logins the agent waits from min_backoff, doubling, up to max_backoff: after
    # an unseal, or a secret id that was missing, it tries again within 30 s. The agent also
    # gives these bounds to the template retries (env/<env>.hcl counts them).
    min_backoff = "1s"
    max_backoff = "30s"
    config = {
      role_id_file_path   = "credentials/role-id"
      secret_id_file_path = "credentials/secret-id"
      # The secret id then lives only in the agent's memory, and it is single-use in
      # production: every login needs a new file. scripts/prod/deliver-secret-ids.sh keeps one
      # waiting (the compose files run it as secret-id-courier), so a login at the max TTL, after
      # a revoked token or after a restart finds one.
      remove_secret_id_file_after_reading = true
      # The file holds a response-wrapped secret id: the agent unwraps it, and refuses a
      # wrapping token that was not created by this role's secret-id endpoint.
      secret_id_response_wrapping_path = "auth/approle/role/saas-app-role/secret-id"
    }
  }

  sink "file" {
    config = {
      path = "secrets/token"
      mode = 0440
    }
  }
}

template {
  source      = "config/secrets.json.ctmpl"
  destination = "secrets/app.json"
  perms       = "0440"
  # A key the template names but Vault lacks stops the render instead of printing "".
  error_on_missing_key = true
}
