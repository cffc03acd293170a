/**
 * What the operator's view shows of Vault Agent (agent mode): whether it renewed its token when
 * it should have. `overdue`: the agent's renewal time passed without a renewal (it is dead,
 * stuck, or cannot reach Vault); `on_time`: it renewed in time; `unknown`: Vault did not say
 * when the token was last renewed, or no token was checked yet.
 */
export interface AgentStatus {
  readonly state: 'on_time' | 'overdue' | 'unknown';
  /** Seconds since the agent last renewed its token (or logged in), as of the last check. */
  readonly lastRenewalSecondsAgo: number | null;
  /** Seconds until its next renewal is due (negative: overdue by that much), as of the last check. */
  readonly renewalDueInSeconds: number | null;
}
