/**
 * A sign-in played as a browser plays it, against the service and Vault's OpenID Connect
 * provider (scripts/demo-identity.sh): what `npm run dev:sign-in` runs, and what the tests sign
 * in with. The user's password goes to Vault only; the Vault token it gets is revoked at the end.
 */

/** A cookie the service set, as a jar keeps it. */
export interface JarCookie {
  readonly name: string;
  readonly value: string;
  readonly secure: boolean;
  readonly httpOnly: boolean;
  /** Seconds since the epoch; 0: until the browser closes. */
  readonly expires: number;
}

export interface BrowserSignIn {
  /** The service as the browser reaches it. */
  readonly appUrl: string;
  readonly user: string;
  readonly password: string;
  /** Vault as the browser reaches it; default: the address the service redirects to. */
  readonly vaultAddr?: string;
  /** Sent to the service with each request (a test's X-Forwarded-Proto behind its "proxy"). */
  readonly headers?: Readonly<Record<string, string>>;
  /** How to reach Vault (default: the global fetch): a test's Vault with a CA of its own. */
  readonly vaultFetch?: (url: string, init: RequestInit) => Promise<Response>;
}

export interface SignedIn {
  readonly tenant: string;
  /** Every cookie the service set and did not clear, the session's among them. */
  readonly cookies: readonly JarCookie[];
  /** The Cookie header that carries them. */
  readonly cookieHeader: string;
}

/** Each step that can fail says which one it was and what came back (never a secret: no body of Vault's login). */
class SignInStepFailed extends Error {}

/** A Set-Cookie header as a jar keeps it, or `expired` when it clears the cookie. */
function parseSetCookie(header: string, nowS: number): JarCookie | { name: string; expired: true } {
  const [pair = '', ...attributes] = header.split(';').map((part) => part.trim());
  const equals = pair.indexOf('=');
  const name = pair.slice(0, equals);
  const value = pair.slice(equals + 1);
  const lower = attributes.map((attribute) => attribute.toLowerCase());
  const maxAge = lower.find((attribute) => attribute.startsWith('max-age='));
  const expiresAt = attributes.find((attribute) => attribute.toLowerCase().startsWith('expires='));
  let expires = 0;
  if (maxAge !== undefined) expires = nowS + Number(maxAge.slice('max-age='.length));
  else if (expiresAt !== undefined) expires = Math.floor(Date.parse(expiresAt.slice('expires='.length)) / 1000);
  if ((maxAge !== undefined || expiresAt !== undefined) && expires <= nowS) return { name, expired: true };
  return { name, value, secure: lower.includes('secure'), httpOnly: lower.includes('httponly'), expires };
}

/** The jar after a response: its cookies replace those of the same name; a cleared one goes. */
function keep(jar: Map<string, JarCookie>, response: Response): void {
  const nowS = Math.floor(Date.now() / 1000);
  for (const header of response.headers.getSetCookie()) {
    const cookie = parseSetCookie(header, nowS);
    if ('expired' in cookie) jar.delete(cookie.name);
    else jar.set(cookie.name, cookie);
  }
}

type VaultFetch = NonNullable<BrowserSignIn['vaultFetch']>;

async function vaultJson(vaultFetch: VaultFetch, url: string, init: RequestInit, step: string): Promise<Record<string, unknown>> {
  const response = await vaultFetch(url, { ...init, signal: AbortSignal.timeout(10_000) });
  const body = await response.json().catch(() => ({})) as Record<string, unknown>;
  if (!response.ok) {
    const errors = Array.isArray(body.errors) ? body.errors.join(', ') : `HTTP ${response.status}`;
    throw new SignInStepFailed(`${step}: Vault answered ${errors}`);
  }
  return body;
}

/** A sign-in up to the issuer's answer: what the browser holds before it follows the redirect back. */
export interface IssuerAnswer {
  /** The sign-in cookie the service set, and the rest of the jar. */
  readonly jar: Map<string, JarCookie>;
  /** The service's callback, as the browser reaches the service, with the issuer's code and state. */
  readonly callback: URL;
  /** The authorization request the service sent the browser with (its query: PKCE, state, nonce...). */
  readonly authorize: URL;
}

/**
 * Steps 1 and 2: GET /auth/login, then the user signs in to Vault (the demo user's userpass)
 * and lets the client in; Vault answers with a code for the callback.
 */
export async function signInAtIssuer(options: BrowserSignIn): Promise<IssuerAnswer> {
  const { appUrl, user, password, headers = {}, vaultFetch = (url: string, init: RequestInit) => fetch(url, init) } = options;
  const jar = new Map<string, JarCookie>();
  const login = await fetch(`${appUrl}/auth/login`, { redirect: 'manual', headers, signal: AbortSignal.timeout(10_000) });
  const location = login.headers.get('location');
  if (login.status !== 302 || location === null) {
    throw new SignInStepFailed(`GET ${appUrl}/auth/login: expected a redirect to the issuer, got ${login.status} ${await login.text()}`);
  }
  keep(jar, login);
  const authorize = new URL(location);
  const vaultAddr = options.vaultAddr ?? authorize.origin;
  // Vault's authorization endpoint is a page of its UI; the page calls this API path.
  const apiPath = authorize.pathname.replace(/^\/ui\/vault\//, '/v1/');

  const vaultLogin = await vaultJson(vaultFetch, `${vaultAddr}/v1/auth/userpass/login/${encodeURIComponent(user)}`,
    { method: 'POST', body: JSON.stringify({ password }) }, `signing in to Vault at ${vaultAddr} as ${user}`);
  const vaultToken = (vaultLogin.auth as { client_token?: string } | undefined)?.client_token ?? '';
  let answer: Record<string, unknown>;
  try {
    answer = await vaultJson(vaultFetch, `${vaultAddr}${apiPath}${authorize.search}`, { headers: { 'X-Vault-Token': vaultToken } },
      `the issuer's authorization endpoint ${apiPath}`);
  } finally {
    await vaultFetch(`${vaultAddr}/v1/auth/token/revoke-self`, { method: 'POST', headers: { 'X-Vault-Token': vaultToken } })
      .then((r) => r.body?.cancel(), () => undefined);
  }
  if (typeof answer.code !== 'string') {
    throw new SignInStepFailed(`the issuer refused the sign-in: ${String(answer.error)} (${String(answer.error_description)})`);
  }
  // The browser follows the redirect to the service's callback, wherever it reaches the service.
  const redirect = new URL(authorize.searchParams.get('redirect_uri') ?? '');
  const callback = new URL(`${appUrl}${redirect.pathname}`);
  callback.search = new URLSearchParams({ code: answer.code, state: String(answer.state) }).toString();
  return { jar, callback, authorize };
}

/** Step 3: the callback, with the sign-in cookie; the service answers with the tenant and the session cookie. */
export async function finishSignIn(answer: IssuerAnswer, headers: Readonly<Record<string, string>> = {}): Promise<SignedIn> {
  const { jar, callback } = answer;
  const done = await fetch(callback, { headers: { ...headers, Cookie: cookieHeader(jar) }, signal: AbortSignal.timeout(10_000) });
  const body = await done.json().catch(() => ({})) as { tenant?: unknown; error?: { message?: unknown } };
  if (done.status !== 200 || typeof body.tenant !== 'string') {
    throw new SignInStepFailed(`GET ${callback.origin}${callback.pathname}: expected 200 and a tenant, got ${done.status} ${String(body.error?.message)}`);
  }
  keep(jar, done);
  return { tenant: body.tenant, cookies: [...jar.values()], cookieHeader: cookieHeader(jar) };
}

/** The whole sign-in, as a browser plays it. */
export async function playSignIn(options: BrowserSignIn): Promise<SignedIn> {
  return finishSignIn(await signInAtIssuer(options), options.headers);
}

/** The Cookie header of a jar. */
export function cookieHeader(jar: ReadonlyMap<string, JarCookie>): string {
  return [...jar.values()].map(({ name, value }) => `${name}=${value}`).join('; ');
}

/** The cookies in curl's (Netscape) cookie-jar format, for `curl -b <jar>`. */
export function curlJar(host: string, cookies: readonly JarCookie[]): string {
  const lines = cookies.map((cookie) => [
    `${cookie.httpOnly ? '#HttpOnly_' : ''}${host}`, 'FALSE', '/', cookie.secure ? 'TRUE' : 'FALSE', String(cookie.expires),
    cookie.name, cookie.value,
  ].join('\t'));
  return ['# Netscape HTTP Cookie File', '# Written by npm run dev:sign-in: a signed-in session of the service.', ...lines, ''].join('\n');
}
