import type pg from 'pg';
import { schemaOnce } from './schema-once.js';
import type { WebhookOutbox } from './webhook-outbox.js';

export interface Project {
  readonly id: string;
  readonly name: string;
  readonly description: string;
  readonly createdAt: string;
}

export interface NewProject {
  readonly name: string;
  readonly description: string;
}

interface Row {
  id: string;
  name: string;
  description: string;
  created_at: Date;
  /** created_at in microseconds since the epoch: the exact position a page ends at. */
  position: string;
}

/** One page of a tenant's projects, oldest first, and where the next one starts when more remain. */
export interface ProjectPage {
  readonly projects: Project[];
  readonly next?: string;
}

/** A create refused: the tenant holds `quota` projects already. */
export class ProjectQuotaReached extends Error {
  constructor(readonly tenant: string, readonly quota: number) {
    super(`tenant ${tenant} holds ${quota} projects, its quota`);
  }
}

/** A page's end as the API hands it out: the last row's position and id, opaque to callers. */
const cursorPattern = /^(\d{1,20})\.([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$/;
const encodeCursor = (row: Row) => Buffer.from(`${row.position}.${row.id}`).toString('base64url');
/** The position and id a cursor names, or undefined when it is not one this store gave. */
export function decodeCursor(cursor: string): { position: string; id: string } | undefined {
  if (cursor.length > 100) return undefined;
  const match = cursorPattern.exec(Buffer.from(cursor, 'base64url').toString());
  return match === null ? undefined : { position: match[1] ?? '', id: match[2] ?? '' };
}
const columns = `id, name, description, created_at,
  ((extract(epoch FROM created_at) * 1000000)::bigint)::text AS position`;

/** The table (and its index) the store creates at its first use; db/schema.ts lists it for the schema Job. */
export const projectsSchema = `
CREATE TABLE IF NOT EXISTS projects (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  tenant text NOT NULL,
  name text NOT NULL,
  description text NOT NULL DEFAULT '',
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS projects_tenant ON projects (tenant, created_at);
`;

const toProject = (row: Row): Project => ({
  id: row.id, name: row.name, description: row.description, createdAt: row.created_at.toISOString(),
});

/**
 * Projects, always scoped to one tenant: no query can reach another tenant's rows. A tenant
 * holds at most `quota` projects, and lists them a page at a time. With `events`, each create
 * adds its project.created event to the webhook outbox in the same transaction.
 */
export class ProjectStore {
  /** The table, created once per store (schema-once.ts). */
  readonly #ensureSchema = schemaOnce(projectsSchema);
  readonly #quota: number;
  readonly #events: WebhookOutbox | undefined;

  constructor(options: { quota: number; events?: WebhookOutbox | undefined }) {
    this.#quota = options.quota;
    this.#events = options.events;
  }

  /**
   * Counts and inserts under a lock on the tenant (a transaction-scoped advisory lock), so that
   * creates racing at the quota cannot both pass the count; other tenants do not wait.
   */
  async create(pool: pg.Pool, tenant: string, project: NewProject): Promise<Project> {
    await this.#ensureSchema(pool);
    await this.#events?.ensureSchema(pool);
    const client = await pool.connect();
    // A checked-out client's connection error (PostgreSQL ending the session: a password
    // rotation, a revoked user) is an 'error' event with no listener of the pool's: without this
    // one it would end the process. A client that failed is destroyed, not given back.
    let broken: Error | undefined;
    const onError = (error: Error) => { broken = error; };
    client.on('error', onError);
    try {
      await client.query('BEGIN');
      await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [tenant]);
      const held = await client.query<{ count: string }>('SELECT count(*) FROM projects WHERE tenant = $1', [tenant]);
      if (Number(held.rows[0]?.count) >= this.#quota) throw new ProjectQuotaReached(tenant, this.#quota);
      const result = await client.query<Row>(
        `INSERT INTO projects (tenant, name, description) VALUES ($1, $2, $3) RETURNING ${columns}`,
        [tenant, project.name, project.description]);
      const created = toProject(result.rows[0] as Row);
      await this.#events?.add(client, { type: 'project.created', tenant, data: created });
      await client.query('COMMIT');
      return created;
    } catch (error) {
      if (!(error instanceof ProjectQuotaReached)) broken ??= error instanceof Error ? error : new Error(String(error));
      await client.query('ROLLBACK').catch(() => undefined);
      throw error;
    } finally {
      client.off('error', onError);
      client.release(broken);
    }
  }

  /** Up to `limit` projects after the cursor `after` (from the start without one), oldest first. */
  async list(pool: pg.Pool, tenant: string, page: { limit: number; after?: { position: string; id: string } }): Promise<ProjectPage> {
    await this.#ensureSchema(pool);
    // One row more than asked says whether another page follows.
    const result = page.after === undefined
      ? await pool.query<Row>(`SELECT ${columns} FROM projects WHERE tenant = $1 ORDER BY created_at, id LIMIT $2`, [tenant, page.limit + 1])
      : await pool.query<Row>(
        `SELECT ${columns} FROM projects WHERE tenant = $1
           AND (created_at, id) > ('epoch'::timestamptz + $2::bigint * interval '1 microsecond', $3::uuid)
         ORDER BY created_at, id LIMIT $4`, [tenant, page.after.position, page.after.id, page.limit + 1]);
    const rows = result.rows.slice(0, page.limit);
    const last = rows.at(-1);
    return { projects: rows.map(toProject), ...(result.rows.length > page.limit && last !== undefined ? { next: encodeCursor(last) } : {}) };
  }

  async get(pool: pg.Pool, tenant: string, id: string): Promise<Project | undefined> {
    await this.#ensureSchema(pool);
    const result = await pool.query<Row>(`SELECT ${columns} FROM projects WHERE tenant = $1 AND id = $2`, [tenant, id]);
    const row = result.rows[0];
    return row === undefined ? undefined : toProject(row);
  }

  async delete(pool: pg.Pool, tenant: string, id: string): Promise<boolean> {
    await this.#ensureSchema(pool);
    const result = await pool.query('DELETE FROM projects WHERE tenant = $1 AND id = $2', [tenant, id]);
    return result.rowCount === 1;
  }
}
