import { retryAfterKey } from './vault-transport.js';

/**
 * What went wrong with a call to Vault, in words safe to log: a status and Vault's own
 * error text, or the network error's code. Never the request (it carries the token) nor
 * a response body (it may carry secrets).
 */
export interface VaultFailure {
  /** No answer at all (refused, reset, timed out, DNS): worth retrying. */
  readonly unreachable: boolean;
  readonly status: number | undefined;
  readonly detail: string;
  /** How long Vault asked the client to wait (Retry-After), when it said. */
  readonly retryAfterMs: number | undefined;
}

export function describeVaultError(error: unknown): VaultFailure {
  const candidate = error as { response?: { statusCode?: unknown; body?: unknown }; code?: unknown; message?: unknown };
  if (typeof candidate.response?.statusCode === 'number') {
    const message = typeof candidate.message === 'string' ? candidate.message : '';
    const body = candidate.response.body;
    const retryAfter = typeof body === 'object' && body !== null ? (body as Record<symbol, unknown>)[retryAfterKey] : undefined;
    return {
      unreachable: false, status: candidate.response.statusCode, detail: errorText(message),
      retryAfterMs: typeof retryAfter === 'number' ? retryAfter : undefined,
    };
  }
  if (typeof candidate.code === 'string') {
    return { unreachable: true, status: undefined, detail: candidate.code, retryAfterMs: undefined };
  }
  return { unreachable: false, status: undefined, detail: error instanceof Error ? error.name : 'unknown error', retryAfterMs: undefined };
}

/**
 * Vault's error on one line. OpenBao answers one reason ("permission denied"); HashiCorp Vault
 * often answers "2 errors occurred:" followed by each reason on an indented "* " line, which
 * is said as "permission denied, invalid token".
 */
export function errorText(message: string): string {
  const [first = '', ...rest] = message.split('\n');
  if (!/^\d+ errors? occurred:$/.test(first.trim())) return first;
  const reasons = rest.map((line) => /^\s*\* (.*)$/.exec(line)?.[1]).filter((reason) => reason !== undefined);
  return reasons.length > 0 ? reasons.join(', ') : first;
}

/**
 * Worth another try: no answer; a server that cannot serve now (sealed, standby, 5xx); a
 * rate-limit quota (429); a performance standby not caught up yet (412). None of these says
 * anything about the token or the credentials.
 */
export function isTransient(error: unknown): boolean {
  const { unreachable, status } = describeVaultError(error);
  return unreachable || (status !== undefined && (status >= 500 || status === 429 || status === 412));
}

/**
 * Vault saying the token itself is bad: lookup-self and renew-self answer 403 for a revoked,
 * expired or unknown token. Only this halts traffic; any other answer is retried.
 */
export function isTokenRefused(error: unknown): boolean {
  return describeVaultError(error).status === 403;
}

/** "403 permission denied", "429 rate limit quota exceeded", "ECONNREFUSED": for logs and the operator view. */
export function failureText(error: unknown): string {
  const { status, detail } = describeVaultError(error);
  return status === undefined ? detail : `${status} ${detail}`.trim();
}

/**
 * Vault saying the lease no longer exists: revoked by an operator, expired, or revoked with
 * the token that created it. Lookup answers 400 "invalid lease", renewal 400 "lease not found".
 */
export function isLeaseGone(error: unknown): boolean {
  const { status, detail } = describeVaultError(error);
  return status === 400 && /lease/i.test(detail);
}
