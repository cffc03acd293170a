import { createHash, randomBytes } from 'node:crypto';
import type pg from 'pg';
import { schemaOnce } from './schema-once.js';

/** Who signed in: the issuer's subject, and the tenant its ID token named. */
export interface SignedInUser {
  readonly issuer: string;
  readonly subject: string;
  readonly tenant: string;
}

export interface SessionLifetimes {
  /** A session unused this long has ended. */
  readonly idleMs: number;
  /** A session this old has ended, used or not. */
  readonly absoluteMs: number;
}

/** One user's live sessions at most: a sign-in beyond it ends that user's oldest. */
export const sessionsPerUser = 20;

/** The table (and its index) the store creates at its first use; db/schema.ts lists it for the schema Job. */
export const sessionsSchema = `
CREATE TABLE IF NOT EXISTS sessions (
  id text PRIMARY KEY,
  issuer text NOT NULL,
  subject text NOT NULL,
  tenant text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  last_seen_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS sessions_user ON sessions (issuer, subject, created_at);
`;

/** The table holds a digest of each token, never the token: a read of the table signs no one in. */
const digest = (token: string) => createHash('sha256').update(token).digest('base64url');

/**
 * Sessions kept in PostgreSQL, which every replica sees: ending one (logout, sign out
 * everywhere) refuses its cookie on every replica at the next request. Lifetimes are checked
 * against the database's clock, one clock for every replica.
 */
export class SessionStore {
  /** The table, created once per store (schema-once.ts). */
  readonly #ensureSchema = schemaOnce(sessionsSchema);
  readonly #lifetimes: SessionLifetimes;

  constructor(lifetimes: SessionLifetimes) {
    this.#lifetimes = lifetimes;
  }

  /**
   * A new session for `user`: the token its cookie carries (256 random bits). Ended sessions
   * of anyone are swept (at most 100 per sign-in), and the user's oldest beyond
   * sessionsPerUser end, so the table stays bounded by live users.
   */
  async create(pool: pg.Pool, user: SignedInUser): Promise<string> {
    await this.#ensureSchema(pool);
    const token = randomBytes(32).toString('base64url');
    await pool.query(
      `WITH swept AS (
         DELETE FROM sessions WHERE id IN (SELECT id FROM sessions WHERE ${this.#ended()} LIMIT 100)
       ), added AS (
         INSERT INTO sessions (id, issuer, subject, tenant) VALUES ($1, $2, $3, $4)
       )
       DELETE FROM sessions WHERE id IN (
         SELECT id FROM sessions WHERE issuer = $2 AND subject = $3 ORDER BY created_at DESC OFFSET $5)`,
      [digest(token), user.issuer, user.subject, user.tenant, sessionsPerUser - 1]);
    return token;
  }

  /**
   * The user of a live session, or undefined when the token names none or its session has
   * ended. Marks it used, at most once per tenth of the idle timeout (a write per request
   * would cost every request a write; the idle timeout is that much less exact).
   */
  async find(pool: pg.Pool, token: string): Promise<SignedInUser | undefined> {
    await this.#ensureSchema(pool);
    const result = await pool.query<SignedInUser>(
      `WITH live AS (
         SELECT id, issuer, subject, tenant, last_seen_at FROM sessions WHERE id = $1 AND NOT (${this.#ended()})
       ), touched AS (
         UPDATE sessions SET last_seen_at = now() FROM live
         WHERE sessions.id = live.id AND live.last_seen_at < now() - $2::bigint * interval '1 millisecond'
       )
       SELECT issuer, subject, tenant FROM live`,
      [digest(token), Math.floor(this.#lifetimes.idleMs / 10)]);
    return result.rows[0];
  }

  /** Ends one session (logout). */
  async end(pool: pg.Pool, token: string): Promise<void> {
    await this.#ensureSchema(pool);
    await pool.query('DELETE FROM sessions WHERE id = $1', [digest(token)]);
  }

  /** Ends every session of the user (sign out everywhere); how many ended. */
  async endAll(pool: pg.Pool, user: Pick<SignedInUser, 'issuer' | 'subject'>): Promise<number> {
    await this.#ensureSchema(pool);
    const result = await pool.query('DELETE FROM sessions WHERE issuer = $1 AND subject = $2', [user.issuer, user.subject]);
    return result.rowCount ?? 0;
  }

  /** The SQL condition of an ended session: idle too long, or too old. Whole milliseconds, no input. */
  #ended(): string {
    const { idleMs, absoluteMs } = this.#lifetimes;
    return `(last_seen_at <= now() - interval '${String(Math.floor(idleMs))} milliseconds'
      OR created_at <= now() - interval '${String(Math.floor(absoluteMs))} milliseconds')`;
  }
}
