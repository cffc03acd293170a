import type { Logger } from '../log/logger.js';
import { signWebhook } from './webhook-signature.js';

export interface WebhookEvent {
  readonly type: string;
  readonly tenant: string;
  readonly data: unknown;
}

/**
 * Delivers events to WEBHOOK_URL, signed with the `api-keys` group's webhook_signing_key
 * from the snapshot the request started with. Delivery never delays or fails the request.
 */
export class WebhookSender {
  readonly #url: string;
  readonly #logger: Logger;
  readonly #pending = new Set<Promise<void>>();

  constructor(url: string, logger: Logger) {
    this.#url = url;
    this.#logger = logger;
  }

  send(event: WebhookEvent, signingKey: string): void {
    if (this.#url === '') return;
    const body = JSON.stringify({ ...event, sentAt: new Date().toISOString() });
    const delivery = fetch(this.#url, {
      method: 'POST',
      headers: {
        'Content-Type': 'application/json',
        'X-Saas-Signature': signWebhook(body, signingKey, Math.floor(Date.now() / 1000)),
      },
      body,
      signal: AbortSignal.timeout(5000),
    }).then(async (response) => {
      await response.body?.cancel();
      if (!response.ok) this.#logger.warn({ event: event.type, status: response.status }, 'webhook refused by the receiver');
    }, (error: unknown) => {
      this.#logger.warn({ event: event.type, err: (error as Error).message }, 'webhook delivery failed');
    });
    this.#pending.add(delivery);
    void delivery.finally(() => this.#pending.delete(delivery));
  }

  /** Resolves once every delivery under way has finished (for shutdown). */
  async drain(): Promise<void> {
    await Promise.all(this.#pending);
  }
}
