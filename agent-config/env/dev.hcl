# dev: secrets change while people work, so KV is re-read every few seconds. Failures are
# retried briefly (about 8 s in all) and then the agent exits non-zero: a denied path or a
# missing key shows at once. A dev server keeps nothing across restarts anyway.
template_config {
  static_secret_render_interval = "5s"
  exit_on_retry_failure         = true
}

vault {
  retry {
    num_retries = 5
  }
}
