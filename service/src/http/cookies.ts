import Cookies from 'cookies';
import type { Context } from 'koa';
import { ClientError } from './errors.js';

/**
 * The service's cookies, by transport. Over TLS (the connection's, or a trusted proxy's word:
 * trusted-proxies.ts) a cookie is `__Host-`, which browsers keep only when it is Secure, has
 * Path=/ and no Domain: no other host or path can set or shadow it. Plain HTTP is dev's only
 * (settings.ts allows an http redirect on a loopback host with APP_ENV=dev): there the plain
 * name, without Secure.
 */
export const cookieNames = {
  session: { tls: '__Host-saas_session', plain: 'saas_session' },
  signIn: { tls: '__Host-saas_sign_in', plain: 'saas_sign_in' },
} as const;
export type CookieKind = keyof typeof cookieNames;

interface CookieState {
  overTls: boolean;
  plainAllowed: boolean;
}
const cookieState = new WeakMap<Context, CookieState>();

/**
 * Signed cookies keyed by the `app` group's session_keys of the request's snapshot: the first
 * key signs, every key verifies, so adding a new key in front rotates without logging anyone
 * out, and dropping the old one retires its cookies. `plainAllowed`: dev, where a cookie may
 * be set over plain HTTP.
 */
export function useSessionKeys(ctx: Context, keys: readonly string[], overTls: boolean, plainAllowed: boolean): void {
  // The cookies library marks what it sets Secure when told the request came over TLS.
  ctx.cookies = new Cookies(ctx.req, ctx.res, { keys: [...keys], secure: overTls });
  cookieState.set(ctx, { overTls, plainAllowed });
}

function nameFor(ctx: Context, kind: CookieKind): string | undefined {
  const state = cookieState.get(ctx);
  if (state === undefined) return undefined;
  if (state.overTls) return cookieNames[kind].tls;
  return state.plainAllowed ? cookieNames[kind].plain : undefined;
}

/** The cookie's value when its signature holds, under the name this request's transport uses. */
export function readCookie(ctx: Context, kind: CookieKind): string | undefined {
  const name = nameFor(ctx, kind);
  return name === undefined ? undefined : ctx.cookies.get(name, { signed: true });
}

/** Sets the cookie (HttpOnly, SameSite=Lax, Path=/); refuses plain HTTP outside dev, naming why. */
export function writeCookie(ctx: Context, kind: CookieKind, value: string, maxAgeMs: number): void {
  const name = nameFor(ctx, kind);
  if (name === undefined) {
    throw new ClientError(400, 'tls_required',
      'signing in needs TLS outside APP_ENV=dev: serve the service over HTTPS, or list its TLS proxy in TRUSTED_PROXIES');
  }
  ctx.cookies.set(name, value, { signed: true, httpOnly: true, sameSite: 'lax', path: '/', maxAge: maxAgeMs, overwrite: true });
}

export function clearCookie(ctx: Context, kind: CookieKind): void {
  const name = nameFor(ctx, kind);
  if (name !== undefined) ctx.cookies.set(name, null, { signed: true, path: '/', overwrite: true });
}
