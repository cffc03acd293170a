import type pg from 'pg';
import { schemaOnce } from './schema-once.js';

/** An event for the webhook receiver, as the outbox keeps it until it is delivered. */
export interface WebhookEvent {
  readonly type: string;
  readonly tenant: string;
  readonly data: unknown;
}

/** A delivery claimed by one worker: its event, and how many attempts this one makes it. */
export interface ClaimedDelivery extends WebhookEvent {
  readonly id: string;
  readonly attempt: number;
  readonly createdAt: string;
}

/** The table (and its index) the store creates at its first use; db/schema.ts lists it for the schema Job. */
export const webhookOutboxSchema = `
CREATE TABLE IF NOT EXISTS webhook_outbox (
  id bigserial PRIMARY KEY,
  tenant text NOT NULL,
  type text NOT NULL,
  data jsonb NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  attempts integer NOT NULL DEFAULT 0,
  next_attempt_at timestamptz NOT NULL DEFAULT now(),
  delivered_at timestamptz,
  failed_at timestamptz,
  last_error text
);
CREATE INDEX IF NOT EXISTS webhook_outbox_due ON webhook_outbox (next_attempt_at) WHERE delivered_at IS NULL AND failed_at IS NULL;
`;

/** Delivered and failed rows are kept this long (for an operator's look), then swept. */
const keptMs = 24 * 3_600_000;

/**
 * The webhook outbox in PostgreSQL: an event is written in the transaction that makes what it
 * reports, so it exists exactly when that does, and stays until a worker delivers it, on this
 * replica or another, now or after a restart (at least once: a receiver may see an event twice).
 */
export class WebhookOutbox {

  /** Creates the table once per outbox (schema-once.ts); a create calls it before its transaction. */
  readonly ensureSchema = schemaOnce(webhookOutboxSchema);

  /** Adds the event in the caller's transaction (`client` is inside BEGIN ... COMMIT). */
  async add(client: pg.PoolClient, event: WebhookEvent): Promise<void> {
    await client.query('INSERT INTO webhook_outbox (tenant, type, data) VALUES ($1, $2, $3)',
      [event.tenant, event.type, JSON.stringify(event.data)]);
  }

  /**
   * Claims up to `count` due deliveries, oldest first, for `leaseMs`: no other worker takes
   * them before then. A worker that stops before it settles one (a crash, a kill) leaves it due
   * again once the lease is over.
   */
  async claim(pool: pg.Pool, count: number, leaseMs: number): Promise<ClaimedDelivery[]> {
    await this.ensureSchema(pool);
    if (count <= 0) return [];
    const result = await pool.query<{ id: string; tenant: string; type: string; data: unknown; attempts: number; created_at: Date }>(
      `UPDATE webhook_outbox SET attempts = attempts + 1, next_attempt_at = now() + $2::bigint * interval '1 millisecond'
       WHERE id IN (
         SELECT id FROM webhook_outbox WHERE delivered_at IS NULL AND failed_at IS NULL AND next_attempt_at <= now()
         ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED)
       RETURNING id, tenant, type, data, attempts, created_at`, [count, leaseMs]);
    return result.rows.sort((a, b) => Number(a.id) - Number(b.id)).map((row) => ({
      id: row.id, tenant: row.tenant, type: row.type, data: row.data, attempt: row.attempts, createdAt: row.created_at.toISOString(),
    }));
  }

  async delivered(pool: pg.Pool, id: string): Promise<void> {
    await pool.query('UPDATE webhook_outbox SET delivered_at = now(), last_error = NULL WHERE id = $1', [id]);
  }

  /** Due again in `delayMs`; `error` says why this attempt failed (a status or a network error, never a body). */
  async retryLater(pool: pg.Pool, id: string, delayMs: number, error: string): Promise<void> {
    await pool.query(`UPDATE webhook_outbox SET next_attempt_at = now() + $2::bigint * interval '1 millisecond', last_error = $3
      WHERE id = $1`, [id, delayMs, error]);
  }

  /** Given up: kept for the operator, never tried again. */
  async failed(pool: pg.Pool, id: string, error: string): Promise<void> {
    await pool.query('UPDATE webhook_outbox SET failed_at = now(), last_error = $2 WHERE id = $1', [id, error]);
  }

  /** Deliveries not yet delivered nor given up; sweeps up to 1000 settled rows older than a day. */
  async pending(pool: pg.Pool): Promise<number> {
    await this.ensureSchema(pool);
    await pool.query(`DELETE FROM webhook_outbox WHERE id IN (SELECT id FROM webhook_outbox
      WHERE coalesce(delivered_at, failed_at) < now() - $1::bigint * interval '1 millisecond' LIMIT 1000)`, [keptMs]);
    const result = await pool.query<{ count: string }>(
      'SELECT count(*) FROM webhook_outbox WHERE delivered_at IS NULL AND failed_at IS NULL');
    return Number(result.rows[0]?.count ?? 0);
  }
}
