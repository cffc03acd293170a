/** What the operator's view shows of anything a lifetime watcher watches: a token, a lease. */
export interface WatchStatus {
  /** Seconds left before its known expiry; null when none is known (never verified, refused, expired). */
  readonly ttlSeconds: number | null;
  readonly renewable: boolean | null;
  readonly lastCheckAt: string | null;
  readonly lastCheckOk: boolean | null;
  readonly nextCheckInSeconds: number | null;
}
