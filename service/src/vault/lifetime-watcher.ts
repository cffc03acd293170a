import { performance } from 'node:perf_hooks';
import type { Logger } from '../log/logger.js';
import { CheckLoop } from './check-loop.js';
import { KnownExpiry } from './known-expiry.js';
import { renewalDelayMs, retryDelayMs, wakeDelayMs, type ScheduleRules } from './token-schedule.js';
import { describeVaultError, failureText, isTransient } from './vault-error.js';

/** Vault vouched for the thing watched: it is good for `ttlSeconds` more. */
export interface Vouched {
  readonly kind: 'vouched';
  readonly ttlSeconds: number;
  readonly renewable: boolean;
  /** false: a token that never expires (a root token); a TTL of 0 then means no expiry. */
  readonly expires: boolean;
  /** The TTL starts afresh (issued, renewed, or first seen): the next renewal is timed from it. */
  readonly fresh: boolean;
  /**
   * The TTL another process renews it to (the agent's token): the next check is timed from it,
   * not from what is left, so checks do not bunch up as the token ages towards its renewal.
   */
  readonly fullTtlSeconds?: number;
  /** Set when it still works but only a new one helps (renewal capped by the max TTL, not renewable). */
  readonly replace?: string;
  /** Newly seen, vouched for by whoever issued it: asked about at once all the same. */
  readonly askNow?: boolean;
}

/** What one step learned. A step that throws learned nothing (Vault unreachable, sealed, rate-limited). */
export type Finding<P extends string> =
  | Vouched
  /** Vault said it is no good: reported at once, then the strategy tries to get a new one. */
  | { readonly kind: 'refused'; readonly code: P; readonly reason: string }
  /** It still works until its known expiry, but Vault refused to extend it: only a new one helps. */
  | { readonly kind: 'replace'; readonly why: string }
  /** Nothing to ask Vault about yet (no token in the sink); reported when `code` is given. */
  | { readonly kind: 'waiting'; readonly code?: P; readonly reason: string }
  /** Nothing held (kv mode): looked at again in a minute. */
  | { readonly kind: 'idle' };

/** What is watched, and how: a token the agent keeps, the service's own token, a lease. */
export interface Strategy<P extends string> {
  /** Named in logs: "the agent's token from /vault/secrets/token", "the lease on database/creds/…". */
  describe(): string;
  /** One check, or a renewal when `renewDue`. */
  step(renewDue: boolean): Promise<Finding<P>>;
  /** Gets a working one again (log in, new credentials); absent where another process does (the agent). */
  acquire?(why: string): Promise<Vouched>;
  /** What is reported when the known expiry passes unverified; `acquireProblem`: why the last acquisition failed. */
  expired(acquireProblem: string | undefined): { code: P; reason: string };
  /** What is reported when getting a new one failed after it was refused. */
  acquireFailed(problem: string): { code: P; reason: string };
}

export interface Report<P extends string> {
  valid(ttlSeconds: number): void;
  invalid(code: P, reason: string): void;
}

/** The part of the operator's view every watcher shows. */
export interface WatchStatus {
  readonly ttlSeconds: number | null;
  readonly renewable: boolean | null;
  readonly lastCheckAt: string | null;
  readonly lastCheckOk: boolean | null;
  readonly nextCheckInSeconds: number | null;
}

export interface LifetimeWatcherOptions<P extends string> {
  strategy: Strategy<P>;
  report: Report<P>;
  logger: Logger;
  rules: ScheduleRules;
  /** A monotonic clock: expiry is measured locally, never from server timestamps. */
  now?: () => number;
  wallClock?: () => number;
}

/** With nothing held, how often the watcher looks again. */
const idleCheckMs = 60_000;

/**
 * One loop and one timing rule for everything with a lifetime in Vault, as Vault's own
 * LifetimeWatcher: renew (or, for what another process renews, check) at about two thirds of
 * the TTL with a random spread, check at least every maximum check interval (the kill switch),
 * retry what says nothing with capped backoff, and one rule for every refusal: report invalid
 * at once, then try to get a new one. The known expiry passing unverified is reported too.
 * What is watched, and how it is checked, renewed and acquired, is the strategy's.
 */
export class LifetimeWatcher<P extends string> {
  readonly #o: Required<LifetimeWatcherOptions<P>>;
  readonly #loop: CheckLoop;
  readonly #expiry: KnownExpiry;
  #renewAt = Number.POSITIVE_INFINITY;
  #renewable: boolean | null = null;
  #lastCheck: { at: number; ok: boolean } | undefined;
  /** Steps in a row without a vouching answer, for the backoff. */
  #failures = 0;
  /** Steps in a row that learned nothing (no answer), for the "answers again" line. */
  #silent = 0;
  /** Set while only a new one helps; `stillValid`: the current one works until its known expiry. */
  #acquire: { why: string; stillValid: boolean } | undefined;
  #acquireProblem: string | undefined;

  constructor(options: LifetimeWatcherOptions<P>) {
    this.#o = { now: () => performance.now(), wallClock: Date.now, ...options };
    this.#loop = new CheckLoop(() => this.#step(), this.#o.now);
    this.#expiry = new KnownExpiry(() => {
      const { code, reason } = this.#o.strategy.expired(this.#acquireProblem);
      this.#o.report.invalid(code, reason);
    }, this.#o.now);
  }

  /** Runs the first step now, or, after `vouched` (a login made at start-up), at its renewal time. */
  start(vouched?: Vouched): Promise<void> {
    if (vouched === undefined) return this.#loop.start();
    this.#vouched(vouched);
    return this.#loop.start(this.#nextWake());
  }

  async stop(): Promise<void> {
    await this.#loop.stop();
    this.#expiry.clear();
  }

  /** Steps at once; a step under way is followed by one more. */
  checkNow(): Promise<void> {
    return this.#loop.wake();
  }

  /** Gets a new one at the next step while the current one still works (what it depended on changed). */
  replaceSoon(why: string): Promise<void> {
    if (this.#o.strategy.acquire === undefined) return Promise.resolve();
    this.#acquire = { why, stillValid: true };
    return this.#loop.wake();
  }

  status(): WatchStatus {
    const remaining = this.#expiry.remainingMs();
    const next = this.#loop.nextInMs();
    return {
      ttlSeconds: remaining === undefined ? null : Math.floor(remaining / 1000),
      renewable: this.#renewable,
      lastCheckAt: this.#lastCheck === undefined ? null : new Date(this.#lastCheck.at).toISOString(),
      lastCheckOk: this.#lastCheck?.ok ?? null,
      nextCheckInSeconds: next === null ? null : next / 1000,
    };
  }

  async #step(): Promise<number> {
    const { strategy, logger, rules } = this.#o;
    try {
      if (this.#acquire !== undefined) return await this.#acquireAgain(this.#acquire.why, this.#acquire.stillValid);
      const finding = await strategy.step(this.#o.now() >= this.#renewAt - rules.minDelayMs);
      this.#answered();
      switch (finding.kind) {
        case 'vouched':
          this.#vouched(finding);
          if (finding.replace !== undefined) return await this.#acquireAgain(finding.replace, true);
          if (finding.askNow === true) return await this.#step();
          return this.#nextWake();
        case 'refused':
          this.#checked(false);
          this.#expiry.clear();
          this.#o.report.invalid(finding.code, finding.reason);
          if (strategy.acquire !== undefined) return await this.#acquireAgain(finding.reason, false);
          return retryDelayMs(this.#failures++, rules);
        case 'replace':
          return await this.#acquireAgain(finding.why, true);
        case 'waiting':
          if (finding.code !== undefined) this.#o.report.invalid(finding.code, finding.reason);
          return retryDelayMs(this.#failures++, rules);
        case 'idle':
          this.#expiry.clear();
          return wakeDelayMs(idleCheckMs, rules);
      }
    } catch (error) {
      // Nothing learned: an outage, a standby, a rate limit. Trusted until the known expiry.
      this.#checked(false);
      this.#silent++;
      const delay = retryDelayMs(this.#failures++, rules, describeVaultError(error).retryAfterMs);
      logger.warn({ problem: failureText(error), retryInMs: delay, expiresInMs: this.#expiry.remainingMs() ?? null },
        `Vault said nothing about ${strategy.describe()}; trusted until its known expiry`);
      return delay;
    }
  }

  async #acquireAgain(why: string, stillValid: boolean): Promise<number> {
    const { strategy, logger, rules, report } = this.#o;
    const acquire = strategy.acquire?.bind(strategy);
    if (acquire === undefined) return this.#nextWake();
    logger.info({ why }, `getting ${strategy.describe()} anew`);
    let got: Vouched;
    try {
      got = await acquire(why);
    } catch (error) {
      this.#acquire = { why, stillValid };
      // Nothing learned: retried; a refusal was already reported, an expiry will be.
      if (isTransient(error)) throw error;
      this.#answered();
      const status = describeVaultError(error).status;
      this.#acquireProblem = `${why}, and getting a new one failed: ${error instanceof Error && status === undefined ? error.message : failureText(error)}`;
      if (!stillValid) {
        const { code, reason } = strategy.acquireFailed(this.#acquireProblem);
        report.invalid(code, reason);
      }
      if (stillValid && this.#expiry.remainingMs() !== undefined) {
        logger.error({ problem: this.#acquireProblem }, 'cannot get a new one; traffic halts at the current one\'s known expiry');
      }
      return retryDelayMs(this.#failures++, rules);
    }
    this.#answered();
    this.#acquire = undefined;
    this.#acquireProblem = undefined;
    this.#vouched(got);
    logger.info({ ttlSeconds: got.ttlSeconds }, `got ${strategy.describe()} anew`);
    return this.#nextWake();
  }

  #vouched(v: Vouched): void {
    this.#checked(true);
    this.#failures = 0;
    this.#renewable = v.renewable;
    const now = this.#o.now();
    if (v.expires) this.#expiry.set(v.ttlSeconds);
    else this.#expiry.clear();
    const ttlMs = v.expires ? Math.max(1, v.ttlSeconds) * 1000 : idleCheckMs * 1.5;
    const scheduleMs = v.expires && v.fullTtlSeconds !== undefined ? Math.max(ttlMs, v.fullTtlSeconds * 1000) : ttlMs;
    if (v.fresh) this.#renewAt = now + renewalDelayMs(scheduleMs, this.#o.rules);
    // The known expiry is rounded down and the renewal spread up to 5/6 of the TTL: a later
    // lookup can bring the expiry before the renewal. The renewal comes first.
    if (v.expires) this.#renewAt = Math.min(this.#renewAt, now + ttlMs - this.#o.rules.minDelayMs);
    this.#o.report.valid(Math.max(v.expires ? 1 : 0, v.ttlSeconds));
  }

  #checked(ok: boolean): void {
    this.#lastCheck = { at: this.#o.wallClock(), ok };
  }

  /** Vault answered (whatever it said): one line closes an outage the warnings opened. */
  #answered(): void {
    if (this.#silent > 0) {
      this.#o.logger.info({ failedAttempts: this.#silent }, `Vault answers again about ${this.#o.strategy.describe()}`);
    }
    this.#silent = 0;
  }

  #nextWake(): number {
    return wakeDelayMs(this.#renewAt - this.#o.now(), this.#o.rules);
  }
}
