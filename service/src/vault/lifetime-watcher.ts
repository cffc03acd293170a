import { performance } from 'node:perf_hooks';
import type { Logger } from '../log/logger.js';
import type { WatchStatus } from '../report/watch-status.js';
import { CheckLoop } from './check-loop.js';
import { KnownExpiry } from './known-expiry.js';
import { renewalDelayMs, retryDelayMs, wakeDelayMs, type ScheduleRules } from './token-schedule.js';
import { describeVaultError, failureText, isTransient } from './vault-error.js';
import { initialState, transition, wakeAction, type Effect, type WatchEvent, type WatchState, type Wake } from './watch-state.js';

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
  /** Newly seen, vouched for by whoever issued it: asked about at once all the same. */
  readonly askNow?: boolean;
  /** Asked about again this soon, whatever its TTL (the lease while PostgreSQL reports it gone). */
  readonly checkAgainInMs?: number;
}

/** What one step learned. A step that throws learned nothing (Vault unreachable, sealed, rate-limited). */
export type Finding<P extends string> =
  | Vouched
  /** It works until its known expiry, but only a replacement helps; `vouched`: what a capped renewal answered. */
  | { readonly kind: 'outdated'; readonly why: string; readonly vouched?: Vouched }
  /** Vault said it is no good: reported at once, then replaced where the strategy can. */
  | { readonly kind: 'refused'; readonly code: P; readonly reason: string }
  /** Nothing to ask Vault about yet (no token in the sink); reported when `code` is given. */
  | { readonly kind: 'waiting'; readonly code?: P; readonly reason: string }
  /** Nothing held (kv credentials): looked at again in a minute. */
  | { readonly kind: 'idle' };

/** What is watched, and how: the agent's token, the service's own token, the database credentials' lease. */
export interface Strategy<P extends string> {
  /** Named in logs: "the agent's token from /vault/secrets/token", "the lease on database/creds/…". */
  describe(): string;
  /** One check, or a renewal when `renewDue`. */
  step(renewDue: boolean): Promise<Finding<P>>;
  /** Gets a working replacement (log in, new credentials); absent where another process does (the agent). */
  replace?(why: string): Promise<Vouched>;
  /** What is reported when the known expiry passes unverified; `replaceProblem`: why the last replacement failed. */
  expired(replaceProblem: string | undefined): { code: P; reason: string };
  /** What is reported when it was refused and no replacement could be got. */
  replaceFailed(problem: string): { code: P; reason: string };
}

export interface Report<P extends string> {
  valid(ttlSeconds: number): void;
  invalid(code: P, reason: string): void;
}

export interface LifetimeWatcherOptions<P extends string> {
  strategy: Strategy<P>;
  report: Report<P>;
  logger: Logger;
  rules: ScheduleRules;
  /**
   * Where in Vault's rounded-down TTL the known expiry is taken: at its low end (the default:
   * traffic halts before Vault ends it), or a second later, for what another process may renew
   * in its last second (Vault Agent, a database lease: secrets/database-lease.ts).
   */
  expiryAtLowEnd?: boolean;
  /** A monotonic clock: expiry is measured locally, never from server timestamps. */
  now?: () => number;
  wallClock?: () => number;
}

/** With nothing held, how often the watcher looks again. */
const idleCheckMs = 60_000;
/** Wakes at once in one run (a newly seen lease asked about, then replaced): more is a strategy's bug. */
const maxWakesAtOnce = 4;

/** What one wake learned, as the state machine's event, with what the effects need. */
interface Learned<P extends string> {
  event: WatchEvent;
  finding?: { code: P; reason: string };
  vouched?: Vouched;
  retryAfterMs?: number;
  problem?: string;
}

/**
 * One loop and one timing rule for everything with a lifetime in Vault, as Vault's own
 * LifetimeWatcher: renew (or, for what another process renews, check) at about two thirds of
 * the TTL with a random spread, check at least every maximum check interval (the kill switch),
 * retry what says nothing with capped backoff, and one rule for every refusal: report invalid
 * at once, then replace it where the strategy can. The known expiry passing unverified is
 * reported too. What to do next is watch-state.ts's table; what is watched, and how it is
 * checked, renewed and replaced, is the strategy's.
 */
export class LifetimeWatcher<P extends string> {
  readonly #options: Required<LifetimeWatcherOptions<P>>;
  readonly #loop: CheckLoop;
  readonly #expiry: KnownExpiry;
  #state: WatchState = initialState;
  #renewAt = Number.POSITIVE_INFINITY;
  #checkAgainAt = Number.POSITIVE_INFINITY;
  #renewable: boolean | null = null;
  #lastCheck: { at: number; ok: boolean } | undefined;
  /** The backoff drawn by the last transition that ended in a retry. */
  #retryInMs = 0;
  /** The known expiry passed unverified: a refusal after it says it expired, not that it was revoked. */
  #expiryPassed = false;

  constructor(options: LifetimeWatcherOptions<P>) {
    this.#options = { now: () => performance.now(), wallClock: Date.now, expiryAtLowEnd: true, ...options };
    this.#loop = new CheckLoop(() => this.#wake(), this.#options.now);
    this.#expiry = new KnownExpiry(() => { this.#apply({ event: { kind: 'expired' } }); }, this.#options.now);
  }

  /** Runs the first step now, or, after `vouched` (a login made at start-up), at its renewal time. */
  start(vouched?: Vouched): Promise<void> {
    if (vouched === undefined) return this.#loop.start();
    const wake = this.#apply({ event: { kind: 'vouched' }, vouched });
    return this.#loop.start(this.#delay(wake));
  }

  async stop(): Promise<void> {
    await this.#loop.stop();
    this.#expiry.clear();
  }

  /** Steps at once; a step under way is followed by one more. */
  checkNow(): Promise<void> {
    return this.#loop.wake();
  }

  /** Replaces it at the next wake, now, while the current one still works (what it depended on changed). */
  replaceSoon(why: string): Promise<void> {
    return this.#apply({ event: { kind: 'replaceSoon', why } }) === 'now' ? this.#loop.wake() : Promise.resolve();
  }

  /** The state machine's current state, for tests and logs. */
  get state(): WatchState['name'] {
    return this.#state.name;
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

  /** One wake of the loop: steps (or replaces) until the table says when to wake next. */
  async #wake(): Promise<number> {
    let wake: Wake = 'now';
    for (let n = 0; wake === 'now' && n < maxWakesAtOnce; n++) {
      wake = this.#apply(await this.#learn());
    }
    return wake === 'now' ? this.#options.rules.minDelayMs : this.#delay(wake);
  }

  /** Asks the strategy what the current state's wake does, and turns what it learned into an event. */
  async #learn(): Promise<Learned<P>> {
    const { strategy, now, rules } = this.#options;
    try {
      if (wakeAction(this.#state.name) === 'replace' && strategy.replace !== undefined) {
        return await this.#replace(strategy.replace.bind(strategy), this.#state.why ?? 'a replacement was asked for');
      }
      const finding = await strategy.step(now() >= this.#renewAt - rules.minDelayMs);
      switch (finding.kind) {
        case 'vouched': return { event: { kind: 'vouched', askNow: finding.askNow === true }, vouched: finding };
        case 'outdated': return { event: { kind: 'outdated', why: finding.why }, ...(finding.vouched === undefined ? {} : { vouched: finding.vouched }) };
        case 'refused': return { event: { kind: 'refused', reason: finding.reason }, finding };
        case 'waiting': return { event: { kind: 'waiting' }, ...(finding.code === undefined ? {} : { finding: { code: finding.code, reason: finding.reason } }) };
        case 'idle': return { event: { kind: 'idle' } };
      }
    } catch (error) {
      // Nothing learned: an outage, a standby, a rate limit. Trusted until the known expiry.
      const retryAfterMs = describeVaultError(error).retryAfterMs;
      return { event: { kind: 'unanswered' }, problem: failureText(error), ...(retryAfterMs === undefined ? {} : { retryAfterMs }) };
    }
  }

  async #replace(replace: (why: string) => Promise<Vouched>, why: string): Promise<Learned<P>> {
    this.#options.logger.info({ why }, `replacing ${this.#options.strategy.describe()}`);
    try {
      return { event: { kind: 'replaced' }, vouched: await replace(why) };
    } catch (error) {
      // Nothing learned: retried; a refusal was already reported, an expiry will be.
      if (isTransient(error)) throw error;
      const detail = error instanceof Error && describeVaultError(error).status === undefined ? error.message : failureText(error);
      return { event: { kind: 'replaceRefused', problem: `${why}, and replacing it failed: ${detail}` } };
    }
  }

  /** Takes the transition for what was learned and carries out its effects; returns when to wake. */
  #apply(learned: Learned<P>): Wake {
    const { strategy, rules } = this.#options;
    const previous = this.#state;
    const { state, effects, wake } = transition(previous, learned.event, { canReplace: strategy.replace !== undefined });
    this.#state = state;
    if (wake === 'retry') this.#retryInMs = retryDelayMs(state.retries - 1, rules, learned.retryAfterMs);
    if (learned.event.kind === 'refused' || learned.event.kind === 'unanswered') this.#checked(false);
    for (const effect of effects) this.#carryOut(effect, learned, previous);
    return wake;
  }

  #carryOut(effect: Effect, learned: Learned<P>, previous: WatchState): void {
    const { strategy, logger, report } = this.#options;
    switch (effect) {
      case 'adopt':
        if (learned.vouched !== undefined) this.#adopt(learned.vouched);
        if (learned.event.kind === 'replaced') logger.info({ ttlSeconds: learned.vouched?.ttlSeconds }, `replaced ${strategy.describe()}`);
        return;
      case 'forget':
        this.#expiry.clear();
        return;
      case 'reportFinding': {
        if (learned.finding === undefined) return;
        const { code, reason } = learned.event.kind === 'refused' && this.#expiryPassed ? strategy.expired(this.#state.replaceProblem) : learned.finding;
        report.invalid(code, reason);
        return;
      }
      case 'reportReplaceFailed': {
        const { code, reason } = strategy.replaceFailed(this.#state.replaceProblem ?? 'replacing it failed');
        report.invalid(code, reason);
        return;
      }
      case 'reportExpired': {
        this.#expiryPassed = true;
        const { code, reason } = strategy.expired(this.#state.replaceProblem);
        report.invalid(code, reason);
        return;
      }
      case 'warnExpiryNear':
        if (this.#expiry.remainingMs() !== undefined) {
          logger.error({ problem: this.#state.replaceProblem }, 'cannot replace it; traffic halts at the current one\'s known expiry');
        }
        return;
      case 'warnUnanswered':
        logger.warn({ problem: learned.problem, retryInMs: this.#retryInMs, expiresInMs: this.#expiry.remainingMs() ?? null },
          `Vault said nothing about ${strategy.describe()}; trusted until its known expiry`);
        return;
      case 'noteAnswered':
        logger.info({ failedAttempts: previous.unanswered }, `Vault answers again about ${strategy.describe()}`);
        return;
    }
  }

  #adopt(v: Vouched): void {
    this.#checked(true);
    this.#renewable = v.renewable;
    const now = this.#options.now();
    if (v.expires) this.#expiry.set(v.ttlSeconds, this.#options.expiryAtLowEnd);
    else this.#expiry.clear();
    const ttlMs = v.expires ? Math.max(1, v.ttlSeconds) * 1000 : idleCheckMs * 1.5;
    const scheduleMs = v.expires && v.fullTtlSeconds !== undefined ? Math.max(ttlMs, v.fullTtlSeconds * 1000) : ttlMs;
    if (v.fresh) this.#renewAt = now + renewalDelayMs(scheduleMs, this.#options.rules);
    // The known expiry is rounded down and the renewal spread up to 5/6 of the TTL: a later
    // lookup can bring the expiry before the renewal. The renewal comes first.
    if (v.expires) this.#renewAt = Math.min(this.#renewAt, now + ttlMs - this.#options.rules.minDelayMs);
    this.#checkAgainAt = v.checkAgainInMs === undefined ? Number.POSITIVE_INFINITY : now + v.checkAgainInMs;
    this.#expiryPassed = false;
    // Vouched for as long as its known expiry lies ahead, as status() shows it: at the low end a
    // TTL of 0 leaves none, so the expiry passes at once and says so instead.
    const remaining = this.#expiry.remainingMs();
    if (!v.expires) this.#options.report.valid(v.ttlSeconds);
    else if (remaining !== undefined && remaining > 0) this.#options.report.valid(Math.floor(remaining / 1000));
  }

  #checked(ok: boolean): void {
    this.#lastCheck = { at: this.#options.wallClock(), ok };
  }

  /** The wait before the next wake. */
  #delay(wake: Wake): number {
    const { rules, now } = this.#options;
    switch (wake) {
      case 'scheduled': return wakeDelayMs(Math.min(this.#renewAt, this.#checkAgainAt) - now(), rules);
      case 'idle': return wakeDelayMs(idleCheckMs, rules);
      case 'retry': return this.#retryInMs;
      case 'now': case 'keep': return 0;
    }
  }
}
