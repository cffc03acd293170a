import type { TokenGrant } from './vault-api.js';

/**
 * When Vault Agent renews its token, as both servers' agents do (Vault's api LifetimeWatcher,
 * which OpenBao's agent keeps): two thirds of the TTL the last renewal granted, plus a third of a
 * random grace of 10 to 20 % of the token's TTL. So the next renewal comes at most 2/3 of the
 * granted TTL plus 1/15 of the full TTL after the last one. Near the max TTL a renewal grants
 * less, and the agent logs in again instead: a new token, whose grant starts the count afresh.
 */
export const renewalFraction = 2 / 3;
export const maxGraceFraction = 0.2;

/** The longest the agent may take after a grant of `grantedTtlSeconds` before its next renewal. */
export function renewalPeriodMs(grantedTtlSeconds: number, fullTtlSeconds: number): number {
  return (renewalFraction * grantedTtlSeconds + (maxGraceFraction / 3) * fullTtlSeconds) * 1000;
}

/**
 * Where one grant stands, on this machine's monotonic clock. Vault rounds the TTL down to the
 * second, so one reading places the grant within a second; each reading of the same grant
 * narrows it. `latestAt` is the latest the grant can have been made: the renewal is called late
 * only once its period has passed since then, so an agent is never called late too soon.
 */
export interface GrantReading {
  readonly grant: TokenGrant;
  readonly fullTtlSeconds: number;
  readonly latestAt: number;
}

/** Folds one lookup (`ttlSeconds` left, read at `now`) into what is known of its grant. */
export function readGrant(previous: GrantReading | undefined, grant: TokenGrant, ttlSeconds: number, fullTtlSeconds: number, now: number): GrantReading {
  // What is left lies in [ttl, ttl + 1) s, so the grant was made between (granted - ttl) s and
  // (granted - ttl - 1) s ago: at the latest, (granted - ttl - 1) s before now.
  const latestAt = now - (grant.ttlSeconds - ttlSeconds - 1) * 1000;
  const same = previous !== undefined && previous.grant.at === grant.at;
  return { grant, fullTtlSeconds, latestAt: same ? Math.min(previous.latestAt, latestAt) : latestAt };
}

/**
 * The agent times its renewal from the answer it got, a moment after Vault recorded the grant,
 * and its next request reaches Vault a moment after its timer fires: one second is allowed for
 * those two trips and the agent's wake-up, the same second Vault rounds TTLs to. A hundred
 * milliseconds called a live agent overdue on a busy two-core machine (CI, 2026-12-06).
 */
export const requestToleranceMs = 1000;

/** Milliseconds until the agent's next renewal is due at the latest; zero or less: it is overdue. */
export function renewalDueInMs(reading: GrantReading, now: number): number {
  return reading.latestAt + renewalPeriodMs(reading.grant.ttlSeconds, reading.fullTtlSeconds) + requestToleranceMs - now;
}
