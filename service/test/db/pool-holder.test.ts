import { expect } from 'chai';
import { buildSnapshot, type ConfigSnapshot } from '../../src/config/snapshot.js';
import { SnapshotHolder } from '../../src/config/snapshot-holder.js';
import { PoolHolder } from '../../src/db/pool-holder.js';
import { startTestPostgres, type TestPostgres } from '../support/postgres.js';
import { appScope, capturingLogger, randomKey, renderedDocument, sampleSecrets } from '../support/rendered-secrets.js';

describe('PoolHolder on a real PostgreSQL: one pool per credentials, each request on its own snapshot\'s', function () {
  this.timeout(30_000);
  let postgres: TestPostgres;
  const snapshots = new Map<string, ConfigSnapshot>();

  before(async function () {
    postgres = await startTestPostgres();
    let version = 0;
    for (const username of ['saas_app_a', 'saas_app_b']) {
      const secrets = { ...sampleSecrets(), database: { username, password: randomKey() } };
      await postgres.provision(username, secrets.database.password);
      version++;
      snapshots.set(username, buildSnapshot(appScope('dev'), renderedDocument('dev', version, secrets), `rev-${version}`, Date.now()));
    }
  });
  after(async function () {
    await postgres.stop();
  });

  const snapshot = (username: string) => snapshots.get(username) as ConfigSnapshot;
  const sessionUser = async (pools: PoolHolder, of?: ConfigSnapshot) =>
    pools.use(async (pool) => (await pool.query<{ user: string }>('SELECT session_user AS user')).rows[0]?.user, of);

  it('keeps a request on the pool of the snapshot it took, across a change of credentials, until it lets go', async function () {
    const holder = new SnapshotHolder();
    holder.swap(snapshot('saas_app_a'));
    const pools = new PoolHolder({ host: '127.0.0.1', port: postgres.layout.port, database: 'saas' }, holder, capturingLogger().logger);
    try {
      const release = pools.hold(snapshot('saas_app_a'));
      holder.swap(snapshot('saas_app_b'));
      expect(await sessionUser(pools, snapshot('saas_app_a')), 'the request that took A').to.equal('saas_app_a');
      expect(await sessionUser(pools, snapshot('saas_app_b'))).to.equal('saas_app_b');
      expect(await sessionUser(pools), 'new work').to.equal('saas_app_b');
      release();
      release();
      // A's pool closed once nothing held it: a late request with A's snapshot gets the current pool.
      expect(await sessionUser(pools, snapshot('saas_app_a'))).to.equal('saas_app_b');
      const deadline = Date.now() + 3000;
      while (await postgres.query("SELECT count(*) FROM pg_stat_activity WHERE usename = 'saas_app_a'") !== '0') {
        if (Date.now() > deadline) expect.fail('A\'s pool kept its connections after its last holder let go');
        await new Promise((r) => setTimeout(r, 50));
      }
    } finally {
      await pools.close();
    }
  });

  it('tells its listeners when PostgreSQL ends a session (57P01) or refuses the credentials (28P01), and not for other errors', async function () {
    const holder = new SnapshotHolder();
    holder.swap(snapshot('saas_app_a'));
    const pools = new PoolHolder({ host: '127.0.0.1', port: postgres.layout.port, database: 'saas' }, holder, capturingLogger().logger);
    const codes: string[] = [];
    const unsubscribe = pools.onCredentialsGone((code) => { codes.push(code); });
    try {
      await pools.use((pool) => pool.query('SELECT no_such_column FROM no_such_table')).catch(() => undefined);
      expect(codes, 'an error of the query itself').to.deep.equal([]);
      // A connection that stays open, idle (pg's pool drops a connection whose query failed).
      expect(await sessionUser(pools)).to.equal('saas_app_a');
      // What Vault's revocation statements do: end the user's sessions. The idle connection's error says so.
      await postgres.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = 'saas_app_a'");
      const deadline = Date.now() + 5000;
      while (codes.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      expect(codes).to.deep.equal(['57P01']);
      // And refuse its logins: a new connection is refused.
      await postgres.query(`ALTER ROLE saas_app_a PASSWORD '${randomKey()}'`);
      const refused = await sessionUser(pools).then(() => undefined, (error: unknown) => error as { code?: string });
      expect(refused?.code).to.equal('28P01');
      expect(codes).to.deep.equal(['57P01', '28P01']);
      unsubscribe();
      await sessionUser(pools).catch(() => undefined);
      expect(codes, 'nothing after unsubscribing').to.have.length(2);
    } finally {
      await pools.close();
      const password = snapshot('saas_app_a').secrets.database.password;
      await postgres.provision('saas_app_a', password);
    }
  });
});
