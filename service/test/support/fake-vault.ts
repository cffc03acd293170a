import sinon from 'sinon';
import type { LoginResult, TokenInfo } from '../../src/vault/vault-api.js';

/**
 * Answers and failures shaped as node-vault and the service's transport produce them, for
 * unit tests of timing logic only (hand-written fakes of Vault; what a real server answers is
 * tested against bao).
 */
export const refused = (): Error => Object.assign(new Error('permission denied'), { response: { statusCode: 403, body: {} } });
export const unreachable = (): Error => Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:8200'), { code: 'ECONNREFUSED' });
export const answered = (statusCode: number, message: string, body: object = {}): Error =>
  Object.assign(new Error(message), { response: { statusCode, body } });
export const loginResult = (token: string, ttlSeconds: number, renewable = true): LoginResult =>
  ({ token, ttlSeconds, renewable, policies: ['default', 'saas-app-dev'] });
export const tokenInfo = (ttlSeconds: number, renewable = true): TokenInfo => ({ ttlSeconds, renewable, policies: ['default'] });

/** A small deterministic generator, so "random" spreads are the same on every run. */
export function seeded(seed: number): () => number {
  let state = seed;
  return () => {
    state = (state * 1103515245 + 12345) % 2147483648;
    return state / 2147483648;
  };
}

/** A stub answering `result`, remembering the fake time of each call. */
export function timed<T>(result: () => Promise<T>): { stub: sinon.SinonStub; times: number[] } {
  const times: number[] = [];
  const stub = sinon.stub().callsFake(() => { times.push(Date.now()); return result(); });
  return { stub, times };
}

/** Gaps between successive times. */
export const gaps = (times: readonly number[]): number[] => times.slice(1).map((t, i) => t - (times[i] ?? 0));
