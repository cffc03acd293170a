# prod: KV v2 is not leased, so the agent re-reads it on this interval; five minutes bounds
# how long a rotated secret takes to reach the service while keeping Vault's load low.
template_config {
  static_secret_render_interval = "5m"
  exit_on_retry_failure         = true
}

vault {
  retry {
    # 12 retries back off from 250 ms to 1 m: about five minutes of outage is ridden out
    # on the last good render before the agent exits and the failure becomes visible.
    num_retries = 12
  }
}
