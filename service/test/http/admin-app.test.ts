import { expect } from 'chai';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createAdminApp } from '../../src/http/admin-app.js';
import { ServiceMetrics } from '../../src/metrics/service-metrics.js';

describe('createAdminApp: the operator\'s port', function () {
  let server: Server | undefined;
  afterEach(async function () {
    await new Promise((r) => server?.close(r));
    server = undefined;
  });

  async function start(token: string | undefined): Promise<string> {
    const listening = createAdminApp({ status: () => ({ gate: { state: 'halted' } }), metrics: new ServiceMetrics(), token })
      .listen(0, '127.0.0.1');
    server = listening;
    await new Promise((r) => listening.once('listening', r));
    return `http://127.0.0.1:${(listening.address() as AddressInfo).port}`;
  }

  it('serves /status as JSON and /metrics in the Prometheus text format; anything else is a JSON 404', async function () {
    const url = await start(undefined);
    const status = await fetch(`${url}/status`);
    expect(status.status).to.equal(200);
    expect(await status.json()).to.deep.equal({ gate: { state: 'halted' } });
    const metrics = await fetch(`${url}/metrics`);
    expect(metrics.headers.get('content-type')).to.match(/^text\/plain; version=0\.0\.4/);
    expect(await metrics.text()).to.match(/^# TYPE process_cpu_user_seconds_total counter$/m);
    const other = await fetch(`${url}/api/projects`);
    expect(other.status).to.equal(404);
    expect(await other.json()).to.nested.include({ 'error.code': 'not_found' });
    expect((await fetch(`${url}/metrics`, { method: 'POST' })).status).to.equal(405);
  });

  it('asks for the bearer token when ADMIN_TOKEN_FILE gives one: 401 without it or with another, 200 with it', async function () {
    const token = 'op-token-0123456789';
    const url = await start(token);
    for (const path of ['/status', '/metrics', '/nope']) {
      for (const header of [undefined, 'Bearer wrong', `Bearer ${token}x`, `Bearer ${token.slice(0, -1)}`, `Basic ${token}`, token]) {
        const response = await fetch(`${url}${path}`, header === undefined ? {} : { headers: { Authorization: header } });
        expect(response.status, `${path} with ${String(header)}`).to.equal(401);
        expect(response.headers.get('www-authenticate')).to.equal('Bearer');
        expect(await response.text()).to.not.contain(token);
      }
    }
    const ok = await fetch(`${url}/status`, { headers: { Authorization: `Bearer ${token}` } });
    expect(ok.status).to.equal(200);
    expect((await fetch(`${url}/metrics`, { headers: { Authorization: `Bearer ${token}` } })).status).to.equal(200);
  });
});
