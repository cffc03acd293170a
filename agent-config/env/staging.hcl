# staging: as prod, with a shorter re-read interval so rotations are tried out quickly.
template_config {
  static_secret_render_interval = "1m"
  exit_on_retry_failure         = true
}

vault {
  retry {
    # 12 retries back off from 250 ms to 1 m: about five minutes of outage is ridden out
    # on the last good render before the agent exits and the failure becomes visible.
    num_retries = 12
  }
}
