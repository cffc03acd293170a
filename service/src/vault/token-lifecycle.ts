import { performance } from 'node:perf_hooks';
import type { HaltCode, TrafficGate } from '../http/traffic-gate.js';
import type { Logger } from '../log/logger.js';
import { coalesce } from '../coalesce.js';
import { backoffDelay, type BackoffPolicy } from './backoff.js';
import { checkDelayMs } from './check-schedule.js';
import type { LoginResult, VaultApi } from './vault-api.js';
import { describeVaultError, isTransient } from './vault-error.js';

/** Where the token comes from. */
export type TokenSource =
  /** Vault Agent owns and renews the token; the service only reads its sink and checks it. */
  | { readonly mode: 'agent'; readonly file: string; readonly readToken: () => Promise<string | undefined> }
  /** The service logged in itself: it renews, and logs in again when renewal stops working. */
  | { readonly mode: 'sdk'; readonly initial: LoginResult; readonly login: () => Promise<LoginResult> };

export interface TokenLifecycleOptions {
  api: Pick<VaultApi, 'lookupSelf' | 'renewSelf'>;
  source: TokenSource;
  gate: TrafficGate;
  logger: Logger;
  /** Upper bound between two checks (0: none, the TTL alone decides). */
  maxCheckIntervalMs?: number;
  minDelayMs?: number;
  backoff?: BackoffPolicy;
  random?: () => number;
  /** A monotonic clock: expiry is measured locally, never from server timestamps. */
  now?: () => number;
  wallClock?: () => number;
}

export interface TokenStatus {
  readonly mode: 'agent' | 'sdk';
  readonly ttlSeconds: number | null;
  readonly renewable: boolean | null;
  readonly lastCheckAt: string | null;
  readonly lastCheckOk: boolean | null;
  readonly nextCheckInSeconds: number | null;
}

/** A failure worth retrying: Vault did not answer, or could not serve. */
class Transient extends Error {}

/**
 * The token's whole life in one loop, for both modes: check (agent) or renew (SDK) at about
 * two thirds of the remaining TTL, log in again when renewal no longer extends the TTL,
 * retry transient failures with capped backoff, and drive the traffic gate: open while the
 * token is known valid, halted when Vault refuses it or its known expiry passes unverified.
 * It runs on timers and never sits in a request's path.
 */
export class TokenLifecycle {
  readonly #o: Required<Omit<TokenLifecycleOptions, 'maxCheckIntervalMs'>> & { maxCheckIntervalMs: number };
  #token: string | undefined;
  #expiresAt: number | undefined;
  #renewAt = 0;
  #loginTtlMs = 0;
  #renewable: boolean | null = null;
  /** Renewal can no longer extend the token (max TTL, not renewable): only a login helps. */
  #loginWhy: string | undefined;
  #lastCheck: { at: number; ok: boolean } | undefined;
  #failures = 0;
  /** Why the last login failed, while it keeps failing: the cause to report at expiry. */
  #loginProblem: string | undefined;
  #nextAt: number | undefined;
  #timer: NodeJS.Timeout | undefined;
  #expiryAlarm: NodeJS.Timeout | undefined;
  #stopped = false;
  readonly #runner = coalesce(async () => {
    if (!this.#stopped) this.#schedule(await this.#step());
  });

  constructor(options: TokenLifecycleOptions) {
    this.#o = {
      maxCheckIntervalMs: 0, minDelayMs: 250, backoff: { baseMs: 500, capMs: 10_000 }, random: Math.random,
      now: () => performance.now(), wallClock: Date.now, ...options,
    };
    if (options.source.mode === 'sdk') this.#adoptLogin(options.source.initial);
  }

  /**
   * Agent mode: runs the first check now and resolves once it is done. SDK mode: the login
   * just verified the token, so the first renewal is scheduled. The loop then goes on by itself.
   */
  async start(): Promise<void> {
    this.#stopped = false;
    if (this.#o.source.mode === 'sdk') this.#schedule(this.#sdkDelay());
    else await this.checkNow();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    clearTimeout(this.#expiryAlarm);
    await this.#runner.idle();
    // A check in flight when stop() was called re-arms the expiry alarm when it succeeds.
    clearTimeout(this.#expiryAlarm);
  }

  /** Checks at once (the agent wrote a new token); a check in flight is followed by one more. */
  checkNow(): Promise<void> {
    return this.#runner.run();
  }

  status(): TokenStatus {
    const now = this.#o.now();
    return {
      mode: this.#o.source.mode,
      ttlSeconds: this.#expiresAt === undefined ? null : Math.max(0, Math.floor((this.#expiresAt - now) / 1000)),
      renewable: this.#renewable,
      lastCheckAt: this.#lastCheck === undefined ? null : new Date(this.#lastCheck.at).toISOString(),
      lastCheckOk: this.#lastCheck?.ok ?? null,
      nextCheckInSeconds: this.#nextAt === undefined ? null : Math.max(0, (this.#nextAt - now) / 1000),
    };
  }

  #schedule(delay: number): void {
    if (this.#stopped) return;
    clearTimeout(this.#timer);
    this.#nextAt = this.#o.now() + delay;
    this.#timer = setTimeout(() => { void this.checkNow(); }, delay);
  }

  /** One check or renewal; returns the delay until the next one. */
  async #step(): Promise<number> {
    try {
      return this.#o.source.mode === 'agent'
        ? await this.#checkAgentToken(this.#o.source)
        : await this.#renewOwnToken(this.#o.source);
    } catch (error) {
      if (!(error instanceof Transient)) throw error;
      const delay = this.#retryDelay();
      this.#o.logger.warn(
        { problem: error.message, retryInMs: delay, expiresInMs: this.#expiresAt === undefined ? null : Math.round(this.#expiresAt - this.#o.now()) },
        'could not verify the Vault token; serving from the last good configuration until its known expiry',
      );
      return delay;
    }
  }

  async #checkAgentToken(source: Extract<TokenSource, { mode: 'agent' }>): Promise<number> {
    const token = await source.readToken();
    if (token !== undefined && token !== this.#token) {
      if (this.#token !== undefined) this.#o.logger.info({ file: source.file }, 'the agent wrote a new token');
      // The old token's known expiry stands until the new one is verified.
      this.#token = token;
    }
    if (this.#token === undefined) {
      this.#o.gate.halt('vault_token_missing', `no token in ${source.file} (VAULT_TOKEN_FILE): is Vault Agent running?`);
      return this.#retryDelay();
    }
    let info;
    try {
      info = await this.#o.api.lookupSelf(this.#token);
    } catch (error) {
      return this.#refused(error, 'vault_token_invalid', `Vault refused the agent's token from ${source.file}`,
        'waiting for the agent to log in again');
    }
    this.#verified(info.ttlSeconds, info.renewable);
    return this.#checkDelay();
  }

  async #renewOwnToken(source: Extract<TokenSource, { mode: 'sdk' }>): Promise<number> {
    const now = this.#o.now();
    // A timer may fire a little before the monotonic clock reaches renewAt: within minDelayMs
    // the renewal is due, rather than a lookup now and the renewal 250 ms later.
    if (now < this.#renewAt - this.#o.minDelayMs) {
      // Between renewals (only when a maximum interval asks for more frequent checks).
      try {
        const info = await this.#o.api.lookupSelf(this.#token ?? '');
        this.#verified(info.ttlSeconds, info.renewable);
        return this.#sdkDelay();
      } catch (error) {
        if (isTransient(error)) throw new Transient(describeVaultError(error).detail);
        return this.#loginAgain(source, `Vault refused the service's token (${describeVaultError(error).detail})`, false);
      }
    }
    if (this.#renewable === false) this.#loginWhy ??= 'the token is not renewable';
    if (this.#loginWhy !== undefined) return this.#loginAgain(source, this.#loginWhy, true);
    let renewed: LoginResult;
    try {
      renewed = await this.#o.api.renewSelf(this.#token ?? '');
    } catch (error) {
      if (isTransient(error)) throw new Transient(describeVaultError(error).detail);
      const failure = describeVaultError(error);
      return this.#loginAgain(source, `renewal refused (${failure.status ?? ''} ${failure.detail})`, false);
    }
    this.#verified(renewed.ttlSeconds, renewed.renewable);
    if (renewed.ttlSeconds * 1000 < this.#loginTtlMs - 1000 || !renewed.renewable) {
      // The max TTL caps the renewal: log in again now, while this token still works.
      this.#loginWhy = `renewal no longer extends the TTL (${renewed.ttlSeconds} s left of max TTL)`;
      return this.#loginAgain(source, this.#loginWhy, true);
    }
    this.#renewAt = this.#o.now() + checkDelayMs(renewed.ttlSeconds * 1000, { ...this.#scheduleOptions(), maxIntervalMs: 0 });
    return this.#sdkDelay();
  }

  /** `tokenStillValid`: the current token works until its expiry, so a failed login need not halt yet. */
  async #loginAgain(source: Extract<TokenSource, { mode: 'sdk' }>, why: string, tokenStillValid: boolean): Promise<number> {
    this.#o.logger.info({ why }, 'logging in to Vault again with AppRole');
    let login: LoginResult;
    try {
      login = await source.login();
    } catch (error) {
      if (isTransient(error)) throw new Transient(describeVaultError(error).detail);
      const failure = describeVaultError(error);
      this.#loginProblem = `${why}, and AppRole login failed: ${error instanceof Error && failure.status === undefined ? error.message : `${failure.status ?? ''} ${failure.detail}`}`;
      if (tokenStillValid && this.#expiresAt !== undefined && this.#o.now() < this.#expiresAt) {
        this.#o.logger.error({ problem: this.#loginProblem }, 'cannot log in again; traffic halts when the current token expires');
      } else {
        this.#expiresAt = undefined;
        clearTimeout(this.#expiryAlarm);
        this.#o.gate.halt('vault_login_failed', this.#loginProblem);
      }
      return this.#retryDelay();
    }
    this.#adoptLogin(login);
    this.#o.logger.info({ ttlSeconds: login.ttlSeconds }, 'logged in to Vault again');
    return this.#sdkDelay();
  }

  #adoptLogin(login: LoginResult): void {
    this.#token = login.token;
    this.#loginTtlMs = login.ttlSeconds * 1000;
    this.#loginProblem = undefined;
    this.#loginWhy = undefined;
    this.#verified(login.ttlSeconds, login.renewable);
    this.#renewAt = this.#o.now() + checkDelayMs(login.ttlSeconds * 1000, { ...this.#scheduleOptions(), maxIntervalMs: 0 });
  }

  /** The token is valid for `ttlSeconds` from now: record it, re-arm the expiry alarm, open the gate. */
  #verified(ttlSeconds: number, renewable: boolean): void {
    const now = this.#o.now();
    this.#failures = 0;
    this.#renewable = renewable;
    this.#lastCheck = { at: this.#o.wallClock(), ok: true };
    clearTimeout(this.#expiryAlarm);
    // A TTL of 0 is a token that never expires (such as a root token).
    this.#expiresAt = ttlSeconds > 0 ? now + ttlSeconds * 1000 : undefined;
    if (this.#expiresAt !== undefined) {
      const expiresAt = this.#expiresAt;
      this.#expiryAlarm = setTimeout(() => { this.#expired(expiresAt); }, expiresAt - now);
    }
    this.#o.gate.open();
  }

  #expired(expiresAt: number): void {
    if (this.#expiresAt !== expiresAt || this.#stopped) return;
    this.#expiresAt = undefined;
    if (this.#loginProblem !== undefined) {
      this.#o.gate.halt('vault_login_failed', `the token expired: ${this.#loginProblem}`);
    } else {
      this.#o.gate.halt('vault_token_expired', 'the token\'s known expiry passed without a successful check');
    }
  }

  #refused(error: unknown, code: HaltCode, what: string, next: string): number {
    if (isTransient(error)) throw new Transient(describeVaultError(error).detail);
    const failure = describeVaultError(error);
    this.#lastCheck = { at: this.#o.wallClock(), ok: false };
    this.#expiresAt = undefined;
    clearTimeout(this.#expiryAlarm);
    this.#o.gate.halt(code, `${what} (${failure.status ?? ''} ${failure.detail}); ${next}`);
    return this.#retryDelay();
  }

  /** Capped backoff, and never longer than the maximum check interval when one is set. */
  #retryDelay(): number {
    const delay = backoffDelay(this.#failures++, this.#o.backoff, this.#o.random);
    return this.#o.maxCheckIntervalMs > 0 ? Math.min(delay, this.#o.maxCheckIntervalMs) : delay;
  }

  #scheduleOptions() {
    return { random: this.#o.random, maxIntervalMs: this.#o.maxCheckIntervalMs, minDelayMs: this.#o.minDelayMs };
  }

  #checkDelay(): number {
    const remaining = this.#expiresAt === undefined ? 60_000 : this.#expiresAt - this.#o.now();
    return checkDelayMs(remaining, this.#scheduleOptions());
  }

  #sdkDelay(): number {
    let delay = Math.max(this.#o.minDelayMs, this.#renewAt - this.#o.now());
    if (this.#o.maxCheckIntervalMs > 0) delay = Math.min(delay, this.#o.maxCheckIntervalMs);
    return delay;
  }
}
