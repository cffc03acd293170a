import { expect } from 'chai';
import type pg from 'pg';
import { schemaOnce } from '../../src/db/schema-once.js';

/** A pool whose query answers as `answer` says, counting the calls (no database: the logic alone). */
function countingPool(answer: () => Promise<unknown>) {
  const calls: string[] = [];
  const pool = { query: (sql: string) => { calls.push(sql); return answer(); } } as unknown as Pick<pg.Pool, 'query'>;
  return { pool, calls };
}

describe('schemaOnce (a counting stand-in for the pool)', function () {
  it('runs the schema once, for concurrent and later callers alike', async function () {
    const { pool, calls } = countingPool(() => Promise.resolve({ rows: [] }));
    const ensure = schemaOnce('CREATE TABLE t ()');
    await Promise.all([ensure(pool), ensure(pool), ensure(pool)]);
    await ensure(pool);
    expect(calls).to.deep.equal(['CREATE TABLE t ()']);
  });

  it('forgets a failed run: every caller of it sees the error, and the next call tries again', async function () {
    let down = true;
    const { pool, calls } = countingPool(() => (down ? Promise.reject(new Error('connection refused')) : Promise.resolve({ rows: [] })));
    const ensure = schemaOnce('CREATE TABLE t ()');
    const failed = await Promise.allSettled([ensure(pool), ensure(pool)]);
    expect(failed.map((r) => r.status)).to.deep.equal(['rejected', 'rejected']);
    expect(calls).to.have.length(1);
    down = false;
    await ensure(pool);
    await ensure(pool);
    expect(calls).to.have.length(2);
  });
});
