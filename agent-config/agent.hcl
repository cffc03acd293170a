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
# config/env/<APP_ENV>.hcl adds what differs per environment: the AppRole auto-auth (the
# wrapped secret id must come from that environment's role, saas-app-<env>: one role per
# application and environment, scripts/lib/app-name.sh), how often KV is re-read, and how long
# failed reads are retried before the agent exits 1 (a render that fails after the reads, a
# missing key or a file it cannot write, is not retried: env/dev.hcl). An agent merges auto_auth
# whole from the last file that has one, so the block lives there entirely.

template {
  source      = "config/secrets.json.ctmpl"
  destination = "secrets/app.json"
  perms       = "0440"
  # A key the template names but Vault lacks stops the render instead of printing "": the
  # agent (both servers') exits 1 at once, without retrying, and the last good file stays.
  error_on_missing_key = true
}
