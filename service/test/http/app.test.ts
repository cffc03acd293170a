import { expect } from 'chai';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import Koa from 'koa';
import helmet from 'koa-helmet';
import sinon from 'sinon';
import { buildSnapshot } from '../../src/config/snapshot.js';
import { SnapshotHolder } from '../../src/config/snapshot-holder.js';
import { PoolHolder } from '../../src/db/pool-holder.js';
import { createApp } from '../../src/http/app.js';
import { DrainState } from '../../src/http/drain.js';
import { publicHaltMessages, TrafficGate, type HaltCode } from '../../src/http/traffic-gate.js';
import { appScope, capturingLogger, renderedDocument } from '../support/rendered-secrets.js';
import { readSettings } from '../../src/config/settings.js';
import { routeDependencies } from '../../src/http/route-dependencies.js';

describe('createApp with the traffic gate', function () {
  let server: Server;
  let url: string;
  let gate: TrafficGate;
  let holder: SnapshotHolder;
  let log: ReturnType<typeof capturingLogger>;
  let pools: PoolHolder;

  beforeEach(async function () {
    log = capturingLogger();
    gate = new TrafficGate(log.logger);
    holder = new SnapshotHolder();
    holder.swap(buildSnapshot(appScope('dev'), renderedDocument('dev', 3), 'rev', Date.now()));
    // The database is never reached by these routes; the pool connects lazily.
    pools = new PoolHolder({ host: '127.0.0.1', port: 1, database: 'none' }, holder, log.logger);
    const app = createApp({
      holder, gate, logger: log.logger, retryAfterSeconds: () => 2.2,
      pools, ...routeDependencies(readSettings({})),
    });
    server = app.listen(0);
    await new Promise((r) => server.once('listening', r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterEach(async function () {
    await new Promise((r) => server.close(r));
    await pools.close();
  });

  it('starts halted until the token is verified: only /healthz answers 200', async function () {
    expect((await fetch(`${url}/healthz`)).status).to.equal(200);
    const ready = await fetch(`${url}/readyz`);
    expect(ready.status).to.equal(503);
    expect(await ready.json()).to.deep.equal({
      error: { code: 'vault_token_unverified', message: 'service halted: the service is starting: its Vault token is not verified yet' },
    });
    expect(log.lines.filter((l) => l.level === 'fatal'), 'not verified yet is not an alarm').to.have.length(0);
    // The successful probe is counted (request-log.ts), the halted one logged.
    expect(log.lines.filter((l) => l.msg === 'request').map((l) => [l.path, l.status])).to.deep.equal([['/readyz', 503]]);
  });

  it('serves every route while open', async function () {
    gate.valid();
    for (const path of ['/healthz', '/readyz']) expect((await fetch(`${url}${path}`)).status, path).to.equal(200);
    // The operator view lives on the admin port (admin-app.ts), not here.
    expect((await fetch(`${url}/status`)).status).to.equal(404);
    expect((await fetch(`${url}/metrics`)).status).to.equal(404);
  });

  it('answers 503 with a stable code, a fixed message and Retry-After on every route but /healthz when halted; ' +
    'the reason goes to the log only', async function () {
    gate.valid();
    const reason = 'Vault refused the agent\'s token from /vault/secrets/token (403 permission denied)';
    gate.halt('vault_token_invalid', reason);
    for (const path of ['/readyz', '/status', '/anything', '/api/projects']) {
      const response = await fetch(`${url}${path}`, { method: path === '/api/projects' ? 'POST' : 'GET' });
      expect(response.status, path).to.equal(503);
      expect(response.headers.get('retry-after')).to.equal('3');
      const text = await response.text();
      expect(JSON.parse(text)).to.deep.equal({
        error: { code: 'vault_token_invalid', message: 'service halted: the service\'s Vault token was refused' },
      });
      for (const detail of ['/vault/secrets/token', '403', 'permission denied']) expect(text, path).to.not.contain(detail);
    }
    expect((await fetch(`${url}/healthz`)).status).to.equal(200);
    expect(log.lines.filter((l) => l.level === 'fatal')[0]).to.include({ reason });
  });

  for (const code of Object.keys(publicHaltMessages) as HaltCode[]) {
    it(`answers ${code} with its own fixed message, whatever the reason`, async function () {
      gate.valid();
      if (code !== 'vault_token_unverified') gate.halt(code, `secret detail ${code} /some/internal/path`);
      else gate.halt(code, 'internal detail');
      const body = await (await fetch(`${url}/readyz`)).json() as { error: { code: string; message: string } };
      expect(body.error).to.deep.equal({ code, message: `service halted: ${publicHaltMessages[code]}` });
    });
  }

  it('keeps what /readyz proves through the whole app: 503 with no secrets loaded, and 503 draining whatever the gate', async function () {
    gate.valid();
    const drain = new DrainState();
    const empty = new SnapshotHolder();
    const probe = async (deps: { holder: SnapshotHolder; drain?: DrainState }) => {
      const app = createApp({ gate, logger: log.logger, retryAfterSeconds: () => 1, pools, ...routeDependencies(readSettings({})), ...deps });
      const other = app.listen(0);
      await new Promise((r) => other.once('listening', r));
      const response = await fetch(`http://127.0.0.1:${(other.address() as AddressInfo).port}/readyz`);
      await new Promise((r) => other.close(r));
      return [response.status, ((await response.json()) as { error?: { code: string } }).error?.code];
    };
    expect(await probe({ holder: empty }), 'no secrets loaded').to.deep.equal([503, 'not_ready']);
    expect(await probe({ holder, drain }), 'before the drain').to.deep.equal([200, undefined]);
    drain.start();
    expect(await probe({ holder, drain }), 'draining').to.deep.equal([503, 'draining']);
    gate.halt('vault_token_invalid', 'refused');
    expect(await probe({ holder, drain }), 'draining and halted').to.deep.equal([503, 'draining']);
  });

  it('takes no pool hold for a probe, and one for a route that queries', async function () {
    gate.valid();
    const hold = sinon.spy(pools, 'hold');
    expect((await fetch(`${url}/readyz`)).status).to.equal(200);
    expect((await fetch(`${url}/healthz`)).status).to.equal(200);
    expect(hold.callCount, 'the probes').to.equal(0);
    // Refused at the session check, which runs behind the hold: the spy sees a route that queries.
    expect((await fetch(`${url}/api/projects`)).status).to.equal(401);
    expect(hold.callCount, 'GET /api/projects').to.equal(1);
  });

  it('parses no body on a route without one: a broken or oversized JSON body reaches the route unread', async function () {
    gate.valid();
    const json = { 'Content-Type': 'application/json' };
    // POST /auth/logout reads a session, never a body: its answer is the session's 401, not the parser's 400.
    const logout = await fetch(`${url}/auth/logout`, { method: 'POST', headers: json, body: '{"broken' });
    expect(logout.status).to.equal(401);
    expect(((await logout.json()) as { error: { code: string } }).error.code).to.equal('unauthenticated');
    // No route takes a POST here: the router's 405, not the parser's 413.
    const probe = await fetch(`${url}/healthz`, { method: 'POST', headers: json, body: JSON.stringify({ x: 'y'.repeat(20_000) }) });
    expect(probe.status).to.equal(405);
  });

  it('logs one fatal line per halt and one info line when it reopens, never one per request', async function () {
    gate.valid();
    gate.halt('vault_token_expired', 'expired');
    for (let i = 0; i < 5; i++) await fetch(`${url}/readyz`);
    gate.halt('vault_token_expired', 'expired');
    gate.valid();
    gate.valid();
    const fatal = log.lines.filter((l) => l.level === 'fatal');
    expect(fatal).to.have.length(1);
    expect(fatal[0]).to.include({ code: 'vault_token_expired', reason: 'expired' });
    expect(log.lines.filter((l) => l.msg === 'traffic open again: the Vault token is valid')).to.have.length(1);
  });

  it('sends exactly the headers koa-helmet would send, on every route: 200, 401, 404 and the 503s', async function () {
    // What koa-helmet itself sends, run per request: the headers a bare Koa app lacks.
    const reference = async (useHelmet: boolean) => {
      const app = new Koa();
      if (useHelmet) app.use(helmet());
      const server = app.listen(0);
      await new Promise((r) => server.once('listening', r));
      const response = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`);
      await new Promise((r) => server.close(r));
      return response.headers;
    };
    const bare = await reference(false);
    const helmetHeaders = [...(await reference(true)).entries()].filter(([name]) => !bare.has(name));
    expect(helmetHeaders.map(([name]) => name)).to.include.members(['content-security-policy', 'strict-transport-security', 'x-frame-options']);
    const seen: string[] = [];
    for (const open of [false, true]) {
      if (open) gate.valid();
      // /api/session without a cookie: 401 before any database; /auth/login with no issuer set: 503.
      for (const path of ['/healthz', '/readyz', '/api/session', '/auth/login', '/nowhere']) {
        const response = await fetch(`${url}${path}`);
        seen.push(`${path} ${response.status}`);
        for (const [name, value] of helmetHeaders) expect(response.headers.get(name), `${name} on ${path} (${response.status})`).to.equal(value);
        expect(response.headers.has('x-powered-by')).to.be.false;
      }
    }
    expect(seen).to.include.members(['/readyz 503', '/readyz 200', '/api/session 401', '/auth/login 503', '/nowhere 404']);
  });
});
