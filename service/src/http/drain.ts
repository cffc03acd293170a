import type { Server } from 'node:http';
import type { Logger } from '../log/logger.js';
import type { RequestStep } from './request-steps.js';

/** Set once, when the shutdown starts; read by every request after that. */
export class DrainState {
  #draining = false;

  get draining(): boolean {
    return this.#draining;
  }

  start(): void {
    this.#draining = true;
  }
}

/**
 * While draining, /readyz answers 503 (the load balancer takes this instance out) and every
 * response says `Connection: close`, so keep-alive clients reconnect elsewhere instead of
 * holding the server's close up until Node's keep-alive timeout. Mounted before the traffic
 * gate: a draining instance says so whatever the gate says.
 */
export function drainStep(state: DrainState): RequestStep {
  return {
    name: 'drain',
    enter: (ctx) => {
      if (!state.draining || ctx.path !== '/readyz') return false;
      ctx.status = 503;
      ctx.set('Connection', 'close');
      ctx.body = { error: { code: 'draining', message: 'the service is shutting down' } };
      return true;
    },
    // Checked again after the handler: a request in flight when the drain began is the last
    // one on its connection too.
    leave: (ctx) => {
      if (state.draining) ctx.set('Connection', 'close');
    },
  };
}

export interface DrainOptions {
  readonly server: Pick<Server, 'close' | 'closeIdleConnections' | 'closeAllConnections'>;
  readonly state: DrainState;
  /** How long the service keeps serving while /readyz answers 503 (DRAIN_DELAY_MS). */
  readonly delayMs: number;
  /** How long requests in flight may take once the server stops accepting. */
  readonly inFlightLimitMs: number;
  readonly logger: Pick<Logger, 'info' | 'warn'>;
}

/**
 * The HTTP half of a shutdown: draining at once (/readyz 503), serving on for `delayMs` so
 * load balancers see it and stop sending (endpoint removal takes a few seconds to spread),
 * then no new connections, and the requests in flight finish; past `inFlightLimitMs` their
 * connections are cut.
 */
export async function drainServer(options: DrainOptions): Promise<void> {
  const { server, state, delayMs, inFlightLimitMs, logger } = options;
  state.start();
  logger.info({ delayMs }, 'draining: /readyz answers 503, still serving until the load balancers let go');
  if (delayMs > 0) await new Promise((resolve) => setTimeout(resolve, delayMs));
  const closed = new Promise<void>((resolve) => { server.close(() => { resolve(); }); });
  server.closeIdleConnections();
  logger.info('not accepting connections: finishing requests in flight');
  const force = setTimeout(() => {
    logger.warn({ inFlightLimitMs }, 'requests still in flight at the limit: closing their connections');
    server.closeAllConnections();
  }, inFlightLimitMs);
  await closed;
  clearTimeout(force);
}
