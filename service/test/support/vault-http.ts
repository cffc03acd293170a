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
