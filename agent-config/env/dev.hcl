# dev: secrets change while people work, so KV is re-read every few seconds. Failures are
# retried for about four minutes, then the agent exits non-zero. Minutes, not seconds:
# when an operator revokes the agent's token (a rotation), every render fails with 403 until
# the agent notices at its next renewal (about two thirds into the 5-minute token TTL) and logs in
# again with its secret id; an agent that gave up sooner would turn a rotation into an outage.
# Each failed render is logged by the agent at once, so a denied path or a missing key still
# shows immediately.
template_config {
  static_secret_render_interval = "5s"
  exit_on_retry_failure         = true
}

vault {
  retry {
    # 12 retries back off from 1 s to 30 s (min_backoff and max_backoff, below): 241 s.
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
