import { expect } from 'chai';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import sinon from 'sinon';
import { readSettings } from '../../src/config/settings.js';
import { buildSnapshot } from '../../src/config/snapshot.js';
import { SnapshotHolder } from '../../src/config/snapshot-holder.js';
import { PoolHolder } from '../../src/db/pool-holder.js';
import { createApp } from '../../src/http/app.js';
import { routeDependencies } from '../../src/http/route-dependencies.js';
import { TrafficGate } from '../../src/http/traffic-gate.js';
import { appScope, capturingLogger, renderedDocument } from '../support/rendered-secrets.js';

describe('createApp: each route pays only for what it uses (a pool pointing nowhere, no database reached)', function () {
  let server: Server;
  let url: string;
  let pools: PoolHolder;
  let hold: sinon.SinonSpy;

  beforeEach(async function () {
    const log = capturingLogger();
    const holder = new SnapshotHolder();
    holder.swap(buildSnapshot(appScope('dev'), renderedDocument('dev', 1), 'rev', Date.now()));
    const gate = new TrafficGate(log.logger);
    gate.valid();
    pools = new PoolHolder({ host: '127.0.0.1', port: 1, database: 'none' }, holder, log.logger);
    hold = sinon.spy(pools, 'hold');
    const app = createApp({ holder, gate, logger: log.logger, retryAfterSeconds: () => 1, pools, ...routeDependencies(readSettings({})) });
    server = app.listen(0);
    await new Promise((r) => server.once('listening', r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterEach(async function () {
    await new Promise((r) => server.close(r));
    await pools.close();
  });

  it('takes no pool hold for a probe, and one for a route that queries', async function () {
    expect((await fetch(`${url}/readyz`)).status).to.equal(200);
    expect((await fetch(`${url}/healthz`)).status).to.equal(200);
    expect(hold.callCount, 'the probes').to.equal(0);
    // Refused at the session check, which runs behind the hold: the spy sees a route that queries.
    expect((await fetch(`${url}/api/projects`)).status).to.equal(401);
    expect(hold.callCount, 'GET /api/projects').to.equal(1);
  });

  it('parses no body on a route without one: a broken or oversized JSON body reaches the route unread', async function () {
    const json = { 'Content-Type': 'application/json' };
    // POST /auth/logout reads a session, never a body: its answer is the session's 401, not the parser's 400.
    const logout = await fetch(`${url}/auth/logout`, { method: 'POST', headers: json, body: '{"broken' });
    expect(logout.status).to.equal(401);
    expect(((await logout.json()) as { error: { code: string } }).error.code).to.equal('unauthenticated');
    // No route takes a POST here: the router's 405, not the parser's 413.
    const probe = await fetch(`${url}/healthz`, { method: 'POST', headers: json, body: JSON.stringify({ x: 'y'.repeat(20_000) }) });
    expect(probe.status).to.equal(405);
  });
});
