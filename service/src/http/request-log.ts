import type { Context, Middleware } from 'koa';
import { performance } from 'node:perf_hooks';
import { requestLineLogger, type Logger } from '../log/logger.js';
import { runSteps, type RequestStep } from './request-steps.js';

/** The probes an orchestrator sends every few seconds to every instance. */
const probePaths = new Set(['/healthz', '/readyz']);
const probeSummaryMs = 60_000;

/** When the request reached the log step, kept on the request's context. */
const startedAt = Symbol('request log: started at');
type Timed = Context & { [startedAt]?: number };

/**
 * One line per request: method, path, status, duration. Never headers, cookies or bodies.
 * Successful probes are the exception: counted, and said in one line a minute (written with
 * the first probe after the minute, so no timer outlives the app). Every other request, and
 * every probe that did not answer 2xx, keeps its own line. The line is written once the
 * answer is final, an error's included.
 */
export function requestLogStep(logger: Logger, now: () => number = () => performance.now()): RequestStep {
  const lines = requestLineLogger(logger);
  let probes: Record<string, number> = {};
  let since = now();
  return {
    name: 'log',
    enter: (ctx: Timed) => {
      ctx[startedAt] = now();
      return false;
    },
    leave: (ctx: Timed) => {
      const ended = now();
      if (ctx.status >= 200 && ctx.status < 300 && ctx.method === 'GET' && probePaths.has(ctx.path)) {
        probes[ctx.path] = (probes[ctx.path] ?? 0) + 1;
        if (ended - since >= probeSummaryMs) {
          lines.info({ probes, seconds: Math.round((ended - since) / 1000) }, 'probes answered 2xx');
          probes = {};
          since = ended;
        }
      } else {
        lines.info({ method: ctx.method, path: ctx.path, status: ctx.status, ms: Math.round(ended - (ctx[startedAt] ?? ended)) }, 'request');
      }
    },
  };
}

/** The request log as a middleware of its own, for an app without the service's steps. */
export function requestLog(logger: Logger, now?: () => number): Middleware {
  return runSteps([requestLogStep(logger, now)]);
}
