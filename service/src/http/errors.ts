import type { Middleware } from 'koa';
import type { Logger } from '../log/logger.js';
import { runSteps, type RequestStep } from './request-steps.js';

const codes: Record<number, string> = {
  400: 'bad_request', 401: 'unauthenticated', 403: 'forbidden', 404: 'not_found', 405: 'method_not_allowed',
  413: 'payload_too_large', 415: 'unsupported_media_type',
};
// Our own words: a parser's message may quote the body it failed on.
const messages: Record<number, string> = {
  400: 'the request body is not valid JSON', 405: 'method not allowed on this route',
  413: 'the request body is over the 16 KB limit', 415: 'send the body as application/json',
};

/** A 4xx the client can act on: the message is shown as it is, so it must hold no secret. */
export class ClientError extends Error {
  constructor(readonly status: number, readonly code: string, message: string) {
    super(message);
  }
}

/** PostgreSQL unreachable or refusing the credentials: the request may succeed later. */
function isDatabaseUnavailable(error: unknown): boolean {
  const code = (error as { code?: unknown }).code;
  return typeof code === 'string' && (/^(08|28|57P0)/.test(code) || ['ECONNREFUSED', 'ETIMEDOUT', 'ENOTFOUND'].includes(code));
}

/**
 * Every error becomes a JSON body `{"error": {"code", "message"}}`. Client errors say what was
 * wrong with the request; anything else is logged (message only) and answered with a generic
 * message, never a stack trace or a driver's text. `onDatabaseUnavailable` hears of each 503
 * `database_unavailable` (readiness, database-readiness.ts).
 */
export function errorStep(logger: Logger, onDatabaseUnavailable: () => void = () => undefined): RequestStep {
  return {
    name: 'errors',
    fail: (ctx, error) => {
      const status = (error as { status?: unknown }).status;
      if (error instanceof ClientError) {
        ctx.status = error.status;
        ctx.body = { error: { code: error.code, message: error.message } };
      } else if (typeof status === 'number' && status >= 400 && status < 500) {
        // The body parser's client errors (bad JSON, too large, wrong type) and ctx.throw()s.
        const own = (error as { expose?: unknown }).expose === true && !(error instanceof SyntaxError);
        ctx.status = status;
        ctx.body = {
          error: { code: codes[status] ?? 'bad_request', message: own ? (error as Error).message : messages[status] ?? 'bad request' },
        };
      } else if (isDatabaseUnavailable(error)) {
        logger.error({ path: ctx.path, code: (error as { code?: string }).code }, 'database unavailable');
        onDatabaseUnavailable();
        ctx.status = 503;
        ctx.set('Retry-After', '5');
        ctx.body = { error: { code: 'database_unavailable', message: 'the database is unavailable; try again shortly' } };
      } else {
        logger.error({ path: ctx.path, err: (error as Error).message }, 'request failed');
        ctx.status = 500;
        ctx.body = { error: { code: 'internal_error', message: 'internal error' } };
      }
    },
    leave: (ctx) => {
      if (ctx.status === 404 && ctx.body === undefined) {
        ctx.status = 404;
        ctx.body = { error: { code: 'not_found', message: `no route for ${ctx.method} ${ctx.path}` } };
      } else if (ctx.status >= 400 && (ctx.body === undefined || typeof ctx.body === 'string')) {
        // Koa's plain-text answers (405 from the router, for one) become JSON like every other error.
        const status = ctx.status;
        ctx.body = { error: { code: codes[status] ?? 'error', message: messages[status] ?? 'request refused' } };
        ctx.status = status;
      }
    },
  };
}

/** The error handler as a middleware of its own, for an app without the service's steps. */
export function errorHandler(logger: Logger, onDatabaseUnavailable?: () => void): Middleware {
  return runSteps([errorStep(logger, onDatabaseUnavailable)]);
}
