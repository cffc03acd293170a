/**
 * What a sign-in under way must remember between /auth/login and /auth/callback: the PKCE
 * verifier, the state and the nonce. It travels in the browser's signed sign-in cookie (the
 * signature says the service wrote it), so no replica keeps anything for a sign-in that is
 * never finished, and whichever replica gets the callback can end it.
 */
export interface SignInState {
  readonly verifier: string;
  readonly state: string;
  readonly nonce: string;
  /** When /auth/login started it (ms since the epoch). */
  readonly startedAt: number;
}

/** How long a sign-in may take, from /auth/login to /auth/callback. */
export const signInLifetimeMs = 10 * 60_000;

/** The three checks are openid-client's random values: 43 base64url characters each. */
const check = /^[A-Za-z0-9_-]{43,128}$/;

export function encodeSignInState(state: SignInState): string {
  return Buffer.from(JSON.stringify(state)).toString('base64url');
}

/**
 * The state a cookie holds, `expired` when it was started more than signInLifetimeMs before
 * `nowMs` (or in the future), or undefined when it is not one this service wrote.
 */
export function decodeSignInState(text: string, nowMs: number): SignInState | 'expired' | undefined {
  if (text.length > 1000) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(text, 'base64url').toString('utf8'));
  } catch {
    return undefined;
  }
  const { verifier, state, nonce, startedAt } = (parsed ?? {}) as Partial<Record<keyof SignInState, unknown>>;
  if (typeof verifier !== 'string' || typeof state !== 'string' || typeof nonce !== 'string' || typeof startedAt !== 'number') {
    return undefined;
  }
  if (![verifier, state, nonce].every((value) => check.test(value))) return undefined;
  const age = nowMs - startedAt;
  return age >= 0 && age <= signInLifetimeMs ? { verifier, state, nonce, startedAt } : 'expired';
}
