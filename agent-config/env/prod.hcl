# prod: KV v2 is not leased, so the agent re-reads it on this interval; five minutes bounds
# how long a rotated secret takes to reach the service while keeping Vault's load low.
template_config {
  static_secret_render_interval = "5m"
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
