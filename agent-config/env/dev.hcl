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
    # 12 retries back off from 1 s to 30 s (agent.hcl's min_backoff and max_backoff): 241 s.
    num_retries = 12
  }
}
