import type { ConfigSnapshot } from '../config/snapshot.js';
import type { PoolHolder } from '../db/pool-holder.js';
import type { ClaimedDelivery, WebhookOutbox } from '../db/webhook-outbox.js';
import type { Logger } from '../log/logger.js';
import { signWebhook } from './webhook-signature.js';

export interface DeliveryBounds {
  /** Deliveries under way at once, at most (each an open socket to the receiver). */
  readonly concurrency: number;
  /** How often the outbox is read for due deliveries. */
  readonly pollMs: number;
  /** Attempts before a delivery is given up (kept in the outbox, counted as failed). */
  readonly maxAttempts: number;
  /** How long one attempt may take; a claim lasts a little longer. */
  readonly timeoutMs: number;
}

/** What the shipped service uses: 4 at once, a look every second, 10 attempts (about 8.5 min of backoff), 5 s each. */
export const deliveryBounds: DeliveryBounds = { concurrency: 4, pollMs: 1000, maxAttempts: 10, timeoutMs: 5000 };

/** The wait before attempt `attempt + 1`: 1 s, doubling, at most 5 min. */
export function retryDelayMs(attempt: number): number {
  return Math.min(1000 * 2 ** Math.max(0, attempt - 1), 300_000);
}

export type DeliveryOutcome = 'delivered' | 'retried' | 'failed';

export interface DeliveryDependencies {
  readonly url: string;
  readonly outbox: WebhookOutbox;
  readonly pools: PoolHolder;
  /** The snapshot in force: its pool reads the outbox, its webhook_signing_key signs each attempt. */
  readonly current: () => ConfigSnapshot | undefined;
  /** False while the traffic gate is halted: nothing leaves the service then. */
  readonly open: () => boolean;
  readonly logger: Logger;
  readonly bounds?: DeliveryBounds;
}

/**
 * Delivers the outbox's events to WEBHOOK_URL, at most `concurrency` at once: one loop reads
 * due deliveries every `pollMs` (and at once when an attempt settles while more may be due),
 * claims as many as there are free places, and settles each
 * (delivered, due again after retryDelayMs, or failed after maxAttempts). Each attempt is
 * signed with the signing key current when it is made. Nothing is lost to a stop: what is not
 * delivered stays in the outbox for the next worker, here or on another replica.
 */
export class WebhookDeliveries {
  readonly #deps: DeliveryDependencies;
  readonly #bounds: DeliveryBounds;
  readonly #underWay = new Set<Promise<void>>();
  #timer: NodeJS.Timeout | undefined;
  #stopped = true;
  #passing: Promise<void> | undefined;
  /** A pass was asked for while one ran: run another right after it. */
  #again = false;
  /** The last claim took every free place: more may be due than it could take. */
  #full = false;
  #pending = 0;
  #countedAt = Number.NEGATIVE_INFINITY;
  readonly #counts: Record<DeliveryOutcome, number> = { delivered: 0, retried: 0, failed: 0 };

  constructor(deps: DeliveryDependencies) {
    this.#deps = deps;
    this.#bounds = deps.bounds ?? deliveryBounds;
  }

  /** Deliveries waiting in the outbox at the last look (every replica's, not only this one's). */
  get pending(): number {
    return this.#pending;
  }

  /** Attempts this worker has settled, by outcome, since it started (for /metrics). */
  get counts(): Readonly<Record<DeliveryOutcome, number>> {
    return { ...this.#counts };
  }

  /** Deliveries this worker has under way now. */
  get underWay(): number {
    return this.#underWay.size;
  }

  start(): void {
    this.#stopped = false;
    this.#wake();
  }

  /** No new claims; resolves once the attempts under way have settled (each within timeoutMs). */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    await this.#passing;
    await Promise.all(this.#underWay);
  }

  /**
   * One look at the outbox: claims what fits in the free places and starts those attempts.
   * The pending count (and the sweep of settled rows) is read at most once per pollMs.
   */
  async pass(): Promise<void> {
    const config = this.#deps.current();
    if (config === undefined || !this.#deps.open()) return;
    const { outbox, pools } = this.#deps;
    const free = this.#bounds.concurrency - this.#underWay.size;
    const claimed = await pools.use(async (pool) => {
      if (Date.now() - this.#countedAt >= this.#bounds.pollMs) {
        this.#countedAt = Date.now();
        this.#pending = await outbox.pending(pool);
      }
      return outbox.claim(pool, free, this.#bounds.timeoutMs + 5000);
    }, config);
    this.#full = free > 0 && claimed.length === free;
    for (const delivery of claimed) {
      const attempt = this.#attempt(delivery, config).finally(() => {
        this.#underWay.delete(attempt);
        // A place is free and more may be due: no need to wait for the next look.
        if (this.#full) this.#wake();
      });
      this.#underWay.add(attempt);
    }
  }

  /** A pass now, or right after the one under way; then the next look in pollMs. */
  #wake(): void {
    if (this.#stopped) return;
    if (this.#passing !== undefined) {
      this.#again = true;
      return;
    }
    clearTimeout(this.#timer);
    this.#passing = this.pass().catch((error: unknown) => {
      this.#deps.logger.warn({ err: (error as Error).message }, 'webhook outbox unreadable; trying again');
    }).finally(() => {
      this.#passing = undefined;
      if (this.#again) {
        this.#again = false;
        this.#wake();
      } else if (!this.#stopped) {
        this.#timer = setTimeout(() => { this.#wake(); }, this.#bounds.pollMs);
        this.#timer.unref();
      }
    });
  }

  async #attempt(delivery: ClaimedDelivery, config: ConfigSnapshot): Promise<void> {
    const { url, outbox, pools, logger } = this.#deps;
    const { id, type, tenant, data, createdAt } = delivery;
    const body = JSON.stringify({ id, type, tenant, data, createdAt, sentAt: new Date().toISOString() });
    let problem: string | undefined;
    try {
      const response = await fetch(url, {
        method: 'POST',
        headers: {
          'Content-Type': 'application/json',
          'X-Saas-Signature': signWebhook(body, config.secrets['api-keys'].webhook_signing_key, Math.floor(Date.now() / 1000)),
        },
        body,
        signal: AbortSignal.timeout(this.#bounds.timeoutMs),
      });
      await response.body?.cancel();
      if (!response.ok) problem = `the receiver answered ${response.status}`;
    } catch (error) {
      problem = `no answer: ${(error as Error).message}`;
    }
    await pools.use(async (pool) => {
      if (problem === undefined) {
        await outbox.delivered(pool, id);
        this.#counts.delivered++;
      } else if (delivery.attempt >= this.#bounds.maxAttempts) {
        await outbox.failed(pool, id, problem);
        this.#counts.failed++;
        logger.error({ event: type, delivery: id, attempts: delivery.attempt, problem }, 'webhook given up: kept in the outbox as failed');
      } else {
        await outbox.retryLater(pool, id, retryDelayMs(delivery.attempt), problem);
        this.#counts.retried++;
        logger.warn({ event: type, delivery: id, attempt: delivery.attempt, problem }, 'webhook not delivered; trying again later');
      }
    }, config).catch((error: unknown) => {
      // Unsettled, the claim runs out and another attempt follows: at least once.
      logger.warn({ delivery: id, err: (error as Error).message }, 'webhook delivery not recorded; its claim will run out');
    });
  }
}
