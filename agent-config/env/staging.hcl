# staging: as prod, with a shorter re-read interval so rotations are tried out quickly.
template_config {
  static_secret_render_interval = "1m"
  exit_on_retry_failure         = true
}

vault {
  retry {
    # Failed reads only (Vault sealed or unreachable, a path denied or without a secret, a
    # revoked token): 12 retries back off from 1 s to 30 s (min_backoff and max_backoff,
    # below): about four minutes (241 s) of outage is ridden out on the last good render before
    # the agent exits 1; the compose restart policy then starts it again, and it logs in once
    # Vault answers. A render that fails after the reads (a key missing in Vault, a rendered
    # file it cannot write: a full filesystem) is never retried: both servers' agents exit 1
    # at the first re-read after the change, within 1 minute here (env/dev.hcl says more).
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
      secret_id_response_wrapping_path = "auth/approle/role/saas-app-staging/secret-id"
    }
  }

  sink "file" {
    config = {
      path = "secrets/token"
      mode = 0440
    }
  }
}
