import { expect } from 'chai';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import Koa from 'koa';
import { requestLog } from '../../src/http/request-log.js';
import { capturingLogger } from '../support/rendered-secrets.js';

describe('requestLog: a line per request, successful probes counted a minute at a time', function () {
  let server: Server;
  let url: string;
  let log: ReturnType<typeof capturingLogger>;
  let clock: number;

  beforeEach(async function () {
    log = capturingLogger();
    clock = 0;
    const app = new Koa();
    app.use(requestLog(log.logger, () => clock));
    app.use((ctx) => {
      if (ctx.path === '/readyz' && ctx.query.halted !== undefined) ctx.status = 503;
      else if (ctx.path === '/missing') ctx.status = 404;
      else ctx.body = { ok: true };
    });
    server = app.listen(0);
    await new Promise((r) => server.once('listening', r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterEach(async function () {
    await new Promise((r) => server.close(r));
  });

  const requestLines = () => log.lines.filter((l) => l.msg === 'request').map((l) => `${String(l.method)} ${String(l.path)} ${String(l.status)}`);
  const summaries = () => log.lines.filter((l) => l.msg === 'probes answered 2xx');

  it('logs every request that is not a successful probe: API routes, 404s, a probe answering 503, a POST to a probe path', async function () {
    await fetch(`${url}/api/projects`);
    await fetch(`${url}/missing`);
    await fetch(`${url}/readyz?halted`);
    await fetch(`${url}/healthz`, { method: 'POST' });
    expect(requestLines()).to.deep.equal(['GET /api/projects 200', 'GET /missing 404', 'GET /readyz 503', 'POST /healthz 200']);
  });

  it('counts successful GET probes and says how many in one line once a minute has passed', async function () {
    for (let i = 0; i < 3; i++) await fetch(`${url}/healthz`);
    await fetch(`${url}/readyz`);
    expect(requestLines(), 'no line per probe').to.deep.equal([]);
    expect(summaries(), 'not before the minute').to.have.length(0);
    clock = 60_000;
    await fetch(`${url}/readyz`);
    expect(summaries().map((l) => [l.probes, l.seconds])).to.deep.equal([[{ '/healthz': 3, '/readyz': 2 }, 60]]);
    // The count starts again after each summary.
    clock = 125_000;
    await fetch(`${url}/healthz`);
    expect(summaries().map((l) => l.probes)).to.deep.equal([{ '/healthz': 3, '/readyz': 2 }, { '/healthz': 1 }]);
  });
});
