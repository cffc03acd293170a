import { randomUUID } from 'node:crypto';
import type { Middleware } from 'koa';
import { withLogContext } from '../log/log-context.js';
import { runSteps, type RequestStep } from './request-steps.js';

/**
 * What an incoming X-Request-Id may look like to be kept: what proxies and tracers generate
 * (UUIDs, hex, dotted or colon-separated ids), short, and nothing that could break a log line
 * or a header.
 */
const acceptable = /^[A-Za-z0-9._:-]{1,128}$/;

/**
 * First in the chain: the request's id is the caller's X-Request-Id when it is well formed
 * (so one id follows a request across services), a new UUID otherwise. It is returned in
 * X-Request-Id, and every log line written while the request is handled carries it as
 * `reqId`, from whichever module. A refused header is never logged: it could hold anything.
 */
export function requestIdStep(): RequestStep {
  return {
    name: 'request id',
    around: (ctx, rest) => {
      const offered = ctx.get('X-Request-Id');
      const id = acceptable.test(offered) ? offered : randomUUID();
      ctx.set('X-Request-Id', id);
      return withLogContext({ reqId: id }, rest);
    },
  };
}

/** The request id as a middleware of its own, for an app without the service's steps. */
export function requestId(): Middleware {
  return runSteps([requestIdStep()]);
}
