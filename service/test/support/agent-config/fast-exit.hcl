# Tests only, added after agent-config/env/<env>.hcl: the tests of the agent's loud failures
# (a denied path, a missing key) need it to give up in seconds, not after the four minutes of
# retries every environment allows. Nothing else differs from the shipped configuration.
vault {
  retry {
    num_retries = 2
  }
}
