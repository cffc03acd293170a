# staging: as prod, with a shorter re-read interval so rotations are tried out quickly.
template_config {
  static_secret_render_interval = "1m"
  exit_on_retry_failure         = true
}

vault {
  retry {
    # 12 retries back off from 1 s to 30 s (agent.hcl's min_backoff and max_backoff): about
    # four minutes (241 s) of outage is ridden out on the last good render before the agent
    # exits; the compose restart policy then starts it again, and it logs in once Vault answers.
    num_retries = 12
  }
}
