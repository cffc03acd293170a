import Cookies from 'cookies';
import type { Context } from 'koa';

export const sessionCookie = 'saas_session';
const tenantPattern = /^[a-z0-9][a-z0-9-]{1,62}$/;

export function isTenant(value: unknown): value is string {
  return typeof value === 'string' && tenantPattern.test(value);
}

/**
 * Signed session cookies keyed by the `app` group's session_keys of the request's snapshot:
 * the first key signs, every key verifies, so adding a new key in front rotates without
 * logging anyone out, and dropping the old one retires its cookies. A cookie set on a request
 * that came over TLS (trusted-proxies.ts) is Secure.
 */
export function useSessionKeys(ctx: Context, keys: readonly string[], overTls: boolean): void {
  // The cookies library marks what it sets Secure when told the request came over TLS.
  ctx.cookies = new Cookies(ctx.req, ctx.res, { keys: [...keys], secure: overTls });
}

export function readSession(ctx: Context): { tenant: string } | undefined {
  const value = ctx.cookies.get(sessionCookie, { signed: true });
  if (value === undefined) return undefined;
  try {
    const session = JSON.parse(Buffer.from(value, 'base64url').toString('utf8')) as { tenant?: unknown };
    return isTenant(session.tenant) ? { tenant: session.tenant } : undefined;
  } catch {
    return undefined;
  }
}

export function writeSession(ctx: Context, tenant: string): void {
  const value = Buffer.from(JSON.stringify({ tenant, iat: Math.floor(Date.now() / 1000) })).toString('base64url');
  ctx.cookies.set(sessionCookie, value, { signed: true, httpOnly: true, sameSite: 'lax', maxAge: 8 * 3600 * 1000 });
}

export function clearSession(ctx: Context): void {
  ctx.cookies.set(sessionCookie, null, { signed: true });
}
