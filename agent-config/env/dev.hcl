# dev: secrets change while people work, so KV is re-read every few seconds.
#
# How a render fails, the same for both servers' agents (OpenBao 2.7 and Vault 1.21, measured by
# service/test/agent-config/render-failures-bao.test.ts and agent.test.ts), each failure logged
# at once:
# - A read that fails (Vault sealed or unreachable, a path the policy denies, a path with no
#   secret, a revoked token) is retried: vault.retry below, 241 s, then the agent exits 1.
#   Minutes, not seconds: when an operator revokes the agent's token (a rotation), reads fail
#   with 403 until the agent logs in again with its secret id (at its next renewal at the
#   latest, about two thirds into the 5-minute token TTL); an agent that gave up sooner would
#   turn a rotation into an outage.
# - A render that fails after the reads is never retried: a key the template names but Vault
#   lacks (error_on_missing_key, agent.hcl) or a rendered file it cannot write (a full
#   filesystem: "no space left on device"). The agent exits 1 at once ("template server
#   error: ...", OpenBao's adding backoff=-1ns: no restart; then "runtime error encountered:
#   ... exitCode=1"), at the first re-read after the change: within 5 s here. That exit is
#   exit_on_retry_failure's: without it both agents restart their template runner forever,
#   backing off from about 1 s, alive and renewing their token, and the service sees nothing.
# An agent that exits leaves the last good file, which the service keeps serving; the service
# sees the agent overdue within one renewal period (RELIABILITY.md). Started again on a still
# full filesystem, the agent exits 1 at once, before logging in ("error creating file sink:
# error during write check"): the secret id waits unread until there is space.
template_config {
  static_secret_render_interval = "5s"
  exit_on_retry_failure         = true
}

vault {
  retry {
    # Failed reads only (see above): 12 retries back off from 1 s to 30 s (min_backoff and
    # max_backoff, below): 241 s.
    num_retries = 12
  }
}

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
      # wrapping token that was not created by this environment's role's secret-id endpoint
      # (<app>-app-<env>; another application's agent config names its own role here).
      secret_id_response_wrapping_path = "auth/approle/role/saas-app-dev/secret-id"
    }
  }

  sink "file" {
    config = {
      path = "secrets/token"
      mode = 0440
    }
  }
}
