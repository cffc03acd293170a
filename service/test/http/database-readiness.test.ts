import { expect } from 'chai';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type pg from 'pg';
import { buildSnapshot } from '../../src/config/snapshot.js';
import { SnapshotHolder } from '../../src/config/snapshot-holder.js';
import { PoolHolder } from '../../src/db/pool-holder.js';
import { createApp } from '../../src/http/app.js';
import { DatabaseReadiness } from '../../src/http/database-readiness.js';
import { TrafficGate } from '../../src/http/traffic-gate.js';
import { startTestPostgres, type TestPostgres } from '../support/postgres.js';
import { appScope, capturingLogger, renderedDocument, sampleSecrets } from '../support/rendered-secrets.js';
import { readSettings } from '../../src/config/settings.js';
import { routeDependencies } from '../../src/http/route-dependencies.js';
import { devRedirectUrl, startIdentityProvider, type IdentityProvider } from '../support/sign-in.js';
import type { DevServer } from '../support/bao.js';

/** A stand-in for PoolHolder.use: counts the probes and answers as told. */
function fakePools(answer: () => Promise<unknown>) {
  const calls = { count: 0 };
  const pools = {
    use: async <T>(work: (pool: pg.Pool) => Promise<T>): Promise<T> => {
      calls.count++;
      return work({ query: answer } as unknown as pg.Pool);
    },
  };
  return { pools, calls };
}

describe('DatabaseReadiness', function () {
  it('costs nothing while no data route failed', async function () {
    const { pools, calls } = fakePools(() => Promise.reject(new Error('down')));
    const readiness = new DatabaseReadiness(pools);
    expect(await readiness.ready()).to.equal(true);
    expect(calls.count).to.equal(0);
  });

  it('after a failure, probes once per /readyz (concurrent probes share one query) until one succeeds', async function () {
    let up = false;
    const { pools, calls } = fakePools(() => (up ? Promise.resolve({ rows: [] }) : Promise.reject(new Error('down'))));
    const readiness = new DatabaseReadiness(pools);
    readiness.failed();
    expect(await Promise.all([readiness.ready(), readiness.ready(), readiness.ready()])).to.deep.equal([false, false, false]);
    expect(calls.count).to.equal(1);
    expect(await readiness.ready()).to.equal(false);
    expect(calls.count).to.equal(2);
    up = true;
    expect(await readiness.ready()).to.equal(true);
    expect(await readiness.ready()).to.equal(true);
    expect(calls.count, 'no query once the database answered').to.equal(3);
  });

  it('says not ready when the database does not answer within the timeout', async function () {
    const { pools } = fakePools(() => new Promise(() => undefined));
    const readiness = new DatabaseReadiness(pools, 50);
    readiness.failed();
    const began = Date.now();
    expect(await readiness.ready()).to.equal(false);
    expect(Date.now() - began).to.be.lessThan(1_000);
  });

  it('keeps a failure reported during a probe that succeeds', async function () {
    let release: (value: unknown) => void = () => undefined;
    const { pools } = fakePools(() => new Promise((resolve) => { release = resolve; }));
    const readiness = new DatabaseReadiness(pools);
    readiness.failed();
    const probe = readiness.ready();
    readiness.failed();
    release({ rows: [] });
    expect(await probe).to.equal(false);
    expect(readiness.suspect).to.equal(true);
  });
});

describe('/readyz on a real PostgreSQL whose user goes away (signed in through a bao dev server\'s OpenID Connect provider)', function () {
  this.timeout(30_000);
  let postgres: TestPostgres;
  let identity: IdentityProvider & { server: DevServer };
  let server: Server;
  let url: string;
  let pools: PoolHolder;
  let username: string;

  before(async function () {
    postgres = await startTestPostgres();
    const secrets = sampleSecrets();
    username = secrets.database.username;
    await postgres.provision(username, secrets.database.password);
    identity = await startIdentityProvider(devRedirectUrl);
    secrets.oidc = await identity.credentials();
    const log = capturingLogger();
    const holder = new SnapshotHolder();
    holder.swap(buildSnapshot(appScope('dev'), renderedDocument('dev', 2, secrets), 'rev-2', Date.now()));
    const gate = new TrafficGate(log.logger);
    gate.valid();
    pools = new PoolHolder({ host: '127.0.0.1', port: postgres.layout.port, database: 'saas' }, holder, log.logger);
    const app = createApp({
      holder, gate, logger: log.logger, retryAfterSeconds: () => 1,
      pools, ...routeDependencies(readSettings(identity.serviceEnv)),
    });
    server = app.listen(0, '127.0.0.1');
    await new Promise((r) => server.once('listening', r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(async function () {
    await new Promise((r) => server.close(r));
    await pools.close();
    await postgres.stop();
    await identity.server.stop();
  });

  it('answers 503 database_unavailable as soon as a data route does, and 200 again once the user is back', async function () {
    const { cookieHeader: cookie } = await identity.signIn(url);
    expect((await fetch(`${url}/api/projects`, { headers: { cookie } })).status).to.equal(200);
    expect((await fetch(`${url}/readyz`)).status).to.equal(200);

    // What Vault's revocation does to a dynamic user, without the DROP: no login, sessions ended.
    await postgres.query(`ALTER ROLE "${username}" NOLOGIN`);
    await postgres.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '${username}'`);
    let data: Response | undefined;
    // The pool may hand out a connection whose termination it has not seen yet: the next one is new.
    for (let attempt = 0; attempt < 3 && data?.status !== 503; attempt++) data = await fetch(`${url}/api/projects`, { headers: { cookie } });
    expect(data?.status).to.equal(503);
    expect(((await data?.json()) as { error: { code: string } }).error.code).to.equal('database_unavailable');

    const ready = await fetch(`${url}/readyz`);
    expect(ready.status, 'readiness while the data routes answer database_unavailable').to.equal(503);
    expect(ready.headers.get('retry-after')).to.equal('5');
    expect(await ready.json()).to.deep.equal({
      error: { code: 'database_unavailable', message: 'the database is unavailable; try again shortly' },
    });
    expect((await fetch(`${url}/readyz`)).status, 'still, with no data request in between').to.equal(503);

    await postgres.query(`ALTER ROLE "${username}" LOGIN`);
    expect((await fetch(`${url}/readyz`)).status, 'the probe itself sees the user back').to.equal(200);
    expect((await fetch(`${url}/api/projects`, { headers: { cookie } })).status).to.equal(200);
  });
});
