import type { Context, Middleware } from 'koa';
import helmet from 'koa-helmet';
import { runSteps, type RequestStep } from './request-steps.js';

/**
 * koa-helmet's headers (its default policy, the product owner's choice), computed once from one
 * run of its own middleware and set on every response. With this policy they depend on nothing
 * in the request, and running helmet per request cost about a third of the service's
 * throughput (BENCHMARKS.md 1b).
 */
export function securityHeadersStep(): RequestStep {
  const set = new Map<string, string>();
  const removed = new Set<string>();
  const res = {
    setHeader(name: string, value: unknown) { set.set(name, String(value)); removed.delete(name); },
    removeHeader(name: string) { set.delete(name); removed.add(name); },
    getHeader(name: string) { return set.get(name); },
  };
  // helmet writes its headers synchronously, before the promise koa-helmet wraps it in settles.
  void helmet()({ req: { headers: {} }, res } as unknown as Context, () => Promise.resolve());
  if (set.size === 0) throw new Error('koa-helmet set no header when run once: its middleware is no longer synchronous');
  const headers = Object.fromEntries(set);
  const remove = [...removed];
  return {
    name: 'headers',
    enter: (ctx) => {
      ctx.set(headers);
      for (const name of remove) ctx.remove(name);
      return false;
    },
  };
}

/** The security headers as a middleware of their own, for an app without the service's steps. */
export function securityHeaders(): Middleware {
  return runSteps([securityHeadersStep()]);
}
