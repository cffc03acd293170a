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
}

export function describeVaultError(error: unknown): VaultFailure {
  const candidate = error as { response?: { statusCode?: unknown }; code?: unknown; message?: unknown };
  if (typeof candidate.response?.statusCode === 'number') {
    const message = typeof candidate.message === 'string' ? candidate.message : '';
    return { unreachable: false, status: candidate.response.statusCode, detail: message.split('\n')[0] ?? '' };
  }
  if (typeof candidate.code === 'string') {
    return { unreachable: true, status: undefined, detail: candidate.code };
  }
  return { unreachable: false, status: undefined, detail: error instanceof Error ? error.name : 'unknown error' };
}

/** Worth another try: no answer, or a server that answered it cannot serve now (sealed, standby, 5xx). */
export function isTransient(error: unknown): boolean {
  const failure = describeVaultError(error);
  return failure.unreachable || (failure.status !== undefined && failure.status >= 500);
}
