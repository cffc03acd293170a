import type pg from 'pg';
import { projectsSchema } from './projects.js';
import { sessionsSchema } from './sessions.js';
import { webhookOutboxSchema } from './webhook-outbox.js';

/**
 * Every table the stores create at their first use (schema-once.ts), by name: the schema Job
 * (schema-main.ts) creates them all before the app's first request does. Each statement is
 * CREATE ... IF NOT EXISTS, so running it again, or beside a store's own, changes nothing.
 */
export const tableSchemas = {
  projects: projectsSchema,
  sessions: sessionsSchema,
  webhook_outbox: webhookOutboxSchema,
} as const;

/** Runs every table's statements in one transaction: all the tables, or none. Answers their names. */
export async function createSchema(client: Pick<pg.Client, 'query'>): Promise<string[]> {
  await client.query('BEGIN');
  try {
    for (const sql of Object.values(tableSchemas)) await client.query(sql);
    await client.query('COMMIT');
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  }
  return Object.keys(tableSchemas);
}
