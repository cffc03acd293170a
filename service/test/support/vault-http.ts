import { vaultServer } from './bao.js';

/**
 * Raw calls to the Vault HTTP API for tests that assert on status codes (a 403 is the
 * point of a policy test, and a client library would turn it into an exception).
 */
export interface VaultResponse {
  status: number;
  body: unknown;
}

export async function vaultRequest(
  addr: string,
  token: string | undefined,
  method: string,
  path: string,
  body?: unknown,
  contentType = 'application/json',
): Promise<VaultResponse> {
  const headers: Record<string, string> = {};
  if (token !== undefined) headers['X-Vault-Token'] = token;
  if (body !== undefined) headers['Content-Type'] = contentType;
  const response = await fetch(`${addr}/v1/${path}`, {
    method,
    headers,
    body: body === undefined ? null : JSON.stringify(body),
    signal: AbortSignal.timeout(10_000),
  });
  const text = await response.text();
  return { status: response.status, body: text === '' ? undefined : (JSON.parse(text) as unknown) };
}

/** The `data` of a successful response (undefined for 204), or an error naming the call and its status. */
export async function vaultData<T>(
  addr: string,
  token: string,
  method: string,
  path: string,
  body?: unknown,
): Promise<T> {
  const response = await vaultRequest(addr, token, method, path, body);
  if (response.status >= 300) {
    throw new Error(`${method} ${path} answered ${response.status}: ${JSON.stringify(response.body)}`);
  }
  return (response.body as { data: T } | undefined)?.data as T;
}

/**
 * What the agent does with the bootstrap's secret-id file: unwraps the response-wrapped
 * secret id (once: a second unwrap of the same token fails).
 */
export async function unwrapSecretId(addr: string, wrappingToken: string): Promise<string> {
  const response = await vaultRequest(addr, wrappingToken.trim(), 'POST', 'sys/wrapping/unwrap');
  if (response.status !== 200) throw new Error(`unwrapping failed with ${response.status}: ${JSON.stringify(response.body)}`);
  return (response.body as { data: { secret_id: string } }).data.secret_id;
}

/**
 * Waits until the server refuses an expired secret id of `role`: just past its expiration time
 * with OpenBao, which checks it at login; with HashiCorp Vault, whose login does not, until its
 * AppRole tidy has deleted it (`vaultServer.expiredSecretIdGraceMs`). Fails after that + 1 s.
 */
export async function untilSecretIdExpired(server: { addr: string; rootToken: string }, role: string, secretId: string): Promise<void> {
  const lookup = () => vaultRequest(server.addr, server.rootToken, 'POST', `auth/approle/role/${role}/secret-id/lookup`, { secret_id: secretId });
  const first = await lookup();
  const expiration = (first.body as { data?: { expiration_time?: string } } | undefined)?.data?.expiration_time;
  if (first.status !== 200 || expiration === undefined) throw new Error(`no secret id of ${role} to wait for: ${first.status}`);
  const expiresAt = Date.parse(expiration);
  await new Promise((r) => setTimeout(r, Math.max(0, expiresAt - Date.now()) + 500));
  const grace = vaultServer.expiredSecretIdGraceMs;
  if (grace === 0) return;
  while ((await lookup()).status === 200) {
    if (Date.now() > expiresAt + grace + 1000) throw new Error(`${vaultServer.name} still holds a secret id of ${role} ${grace + 1000} ms after it expired`);
    await new Promise((r) => setTimeout(r, 1000));
  }
}
