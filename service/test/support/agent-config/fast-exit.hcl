# Tests only, added after agent-config/env/<env>.hcl: the tests of the agent's loud failures
# need a denied path to give up in seconds, not after the four minutes of read retries every
# environment allows (a missing key exits at once whatever the retries). Nothing else differs
# from the shipped configuration.
vault {
  retry {
    num_retries = 2
  }
}
