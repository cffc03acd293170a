import type pg from 'pg';

/**
 * A table's schema, created once by its store: the returned function runs `sql` at its first
 * call and answers every later call with that run. A failed
 * run is forgotten, so the next call tries again (the database may come back).
 */
export function schemaOnce(sql: string): (pool: Pick<pg.Pool, 'query'>) => Promise<void> {
  let ready: Promise<void> | undefined;
  return async (pool) => {
    ready ??= pool.query(sql).then(() => undefined, (error: unknown) => {
      ready = undefined;
      throw error;
    });
    await ready;
  };
}
