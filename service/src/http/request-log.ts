import type { Middleware } from 'koa';
import { performance } from 'node:perf_hooks';
import { requestLineLogger, type Logger } from '../log/logger.js';

/** The probes an orchestrator sends every few seconds to every instance. */
const probePaths = new Set(['/healthz', '/readyz']);
const probeSummaryMs = 60_000;

/**
 * One line per request: method, path, status, duration. Never headers, cookies or bodies.
 * Successful probes are the exception: counted, and said in one line a minute (written with
 * the first probe after the minute, so no timer outlives the app). Every other request, and
 * every probe that did not answer 2xx, keeps its own line.
 */
export function requestLog(logger: Logger, now: () => number = () => performance.now()): Middleware {
  const lines = requestLineLogger(logger);
  let probes: Record<string, number> = {};
  let since = now();
  return async (ctx, next) => {
    const started = now();
    try {
      await next();
    } finally {
      const ended = now();
      if (ctx.status >= 200 && ctx.status < 300 && ctx.method === 'GET' && probePaths.has(ctx.path)) {
        probes[ctx.path] = (probes[ctx.path] ?? 0) + 1;
        if (ended - since >= probeSummaryMs) {
          lines.info({ probes, seconds: Math.round((ended - since) / 1000) }, 'probes answered 2xx');
          probes = {};
          since = ended;
        }
      } else {
        lines.info({ method: ctx.method, path: ctx.path, status: ctx.status, ms: Math.round(ended - started) }, 'request');
      }
    }
  };
}
