import type { Logger } from '../log/logger.js';
import type { LeaseProblem, LeaseReport } from '../report/lease-report.js';
import type { TokenProblem, TokenReport } from '../report/token-report.js';
import type { RequestStep } from './request-steps.js';

/** Stable codes clients and alerts can match on. */
export type HaltCode = 'vault_token_unverified' | TokenProblem | LeaseProblem;

/**
 * What a client is told for each code. The reason behind a halt names files, Vault's answers
 * and error texts: it goes to the log and the operator's view, never to a public answer.
 */
export const publicHaltMessages: Readonly<Record<HaltCode, string>> = {
  vault_token_unverified: 'the service is starting: its Vault token is not verified yet',
  vault_token_invalid: 'the service\'s Vault token was refused',
  vault_token_expired: 'the service could not verify its Vault token before it expired',
  vault_token_missing: 'the service has no Vault token',
  vault_login_failed: 'the service cannot log in to Vault',
  database_lease_revoked: 'the service\'s database credentials were revoked',
  database_lease_expired: 'the service\'s database credentials expired',
};

interface Problem {
  readonly code: HaltCode;
  readonly reason: string;
}

export type GateState =
  | { readonly state: 'open'; readonly since: number }
  | { readonly state: 'halted'; readonly code: HaltCode; readonly reason: string; readonly since: number };

/**
 * Open while the service can vouch for its Vault token and, with dynamic credentials, for the
 * lease of its database credentials; halted when it cannot: what the token watchers and the
 * lease watchers report, turned into traffic. A token problem is shown before a lease problem
 * (the lease depends on the token). Each change of state is logged once: fatal when traffic
 * stops or its cause changes, info when it resumes.
 */
export class TrafficGate implements TokenReport, LeaseReport {
  #state: GateState;
  #token: Problem | undefined;
  #lease: Problem | undefined;
  readonly #haltListeners = new Set<(code: HaltCode) => void>();
  readonly #logger: Logger;
  readonly #now: () => number;

  constructor(logger: Logger, now: () => number = Date.now) {
    this.#logger = logger;
    this.#now = now;
    const reason = 'the Vault token has not been verified yet';
    this.#token = { code: 'vault_token_unverified', reason };
    this.#state = { state: 'halted', code: 'vault_token_unverified', reason, since: now() };
  }

  get current(): GateState {
    return this.#state;
  }

  get isOpen(): boolean {
    return this.#state.state === 'open';
  }

  /** The token is good: traffic opens unless the lease is not. */
  valid(): void {
    this.#token = undefined;
    this.#apply();
  }

  invalid(code: TokenProblem, reason: string): void {
    this.#token = { code, reason };
    this.#apply();
  }

  leaseValid(): void {
    this.#lease = undefined;
    this.#apply();
  }

  leaseInvalid(code: LeaseProblem, reason: string): void {
    this.#lease = { code, reason };
    this.#apply();
  }

  /** Halts for `code` as a token problem would (tests and tools; the watchers report through invalid). */
  halt(code: HaltCode, reason: string): void {
    this.#token = { code, reason };
    this.#apply();
  }

  /** Logs fatal when traffic stops, or when a halt turns into one for another cause; info when it resumes. */
  #apply(): void {
    const previous = this.#state;
    const problem = this.#token ?? this.#lease;
    if (problem === undefined) {
      if (previous.state === 'open') return;
      this.#state = { state: 'open', since: this.#now() };
      if (previous.code === 'vault_token_unverified') return;
      this.#logger.info(previous.code.startsWith('database_')
        ? 'traffic open again: the database credentials are valid' : 'traffic open again: the Vault token is valid');
      return;
    }
    const { code, reason } = problem;
    if (previous.state === 'halted' && previous.code === code && previous.reason === reason) return;
    this.#state = { state: 'halted', code, reason, since: previous.state === 'halted' ? previous.since : this.#now() };
    if (previous.state === 'open' || previous.code !== code) {
      this.#logger.fatal({ code, reason }, 'traffic halted: every route but /healthz answers 503');
      for (const listener of this.#haltListeners) listener(code);
    }
  }

  /** Called at each halt the fatal line marks (traffic stopped, or a halt changed cause); returns the unsubscribe. */
  onHalt(listener: (code: HaltCode) => void): () => void {
    this.#haltListeners.add(listener);
    return () => { this.#haltListeners.delete(listener); };
  }
}

/** Every route but liveness answers 503 while the gate is halted. */
export function gateStep(gate: TrafficGate, retryAfterSeconds: () => number): RequestStep {
  return {
    name: 'gate',
    enter: (ctx) => {
      const state = gate.current;
      if (state.state === 'open' || ctx.path === '/healthz') return false;
      ctx.status = 503;
      ctx.set('Retry-After', String(Math.max(1, Math.ceil(retryAfterSeconds()))));
      ctx.body = { error: { code: state.code, message: `service halted: ${publicHaltMessages[state.code]}` } };
      return true;
    },
  };
}
