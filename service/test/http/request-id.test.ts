import { expect } from 'chai';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import Koa from 'koa';
import { errorHandler } from '../../src/http/errors.js';
import { requestLog } from '../../src/http/request-log.js';
import { requestId } from '../../src/http/request-id.js';
import { capturingLogger } from '../support/rendered-secrets.js';

const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

describe('requestId, mounted as createApp mounts it (first, before the error handler and the request log)', function () {
  let server: Server;
  let url: string;
  let log: ReturnType<typeof capturingLogger>;

  beforeEach(async function () {
    log = capturingLogger();
    const app = new Koa();
    app.use(requestId());
    app.use(errorHandler(log.logger));
    app.use(requestLog(log.logger));
    app.use(async (ctx) => {
      // A line from elsewhere in the code, after an await: the id follows the async context.
      await new Promise((resolve) => setImmediate(resolve));
      log.logger.info('handler line');
      if (ctx.path === '/fail') throw new Error('broken on purpose');
      ctx.body = { ok: true };
    });
    server = app.listen(0);
    await new Promise((r) => server.once('listening', r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterEach(async function () {
    await new Promise((r) => server.close(r));
  });

  const idsOf = (msg: string) => log.lines.filter((l) => l.msg === msg).map((l) => l.reqId);

  it('keeps a well-formed X-Request-Id, returns it, and puts it on every line of the request', async function () {
    const id = 'edge-7f3a.91:b_c-2';
    const response = await fetch(`${url}/ok`, { headers: { 'X-Request-Id': id } });
    expect(response.status).to.equal(200);
    expect(response.headers.get('x-request-id')).to.equal(id);
    expect(idsOf('handler line')).to.deep.equal([id]);
    expect(idsOf('request')).to.deep.equal([id]);
  });

  it('generates a UUID when there is none, returns it, and logs it', async function () {
    const response = await fetch(`${url}/ok`);
    const id = response.headers.get('x-request-id');
    expect(id).to.match(uuid);
    expect(idsOf('request')).to.deep.equal([id]);
  });

  it('gives each request its own id', async function () {
    const [a, b] = await Promise.all([fetch(`${url}/ok`), fetch(`${url}/ok`)]);
    const ids = [a.headers.get('x-request-id'), b.headers.get('x-request-id')];
    expect(ids[0]).to.not.equal(ids[1]);
    expect(idsOf('request')).to.have.members(ids);
  });

  for (const [what, offered] of [
    ['too long (129 characters)', 'a'.repeat(129)],
    ['with a space', 'abc def'],
    ['with characters that could forge a log field', 'x","level":"fatal'],
    ['with a character outside ASCII', 'idé'],
  ] as const) {
    it(`replaces one ${what} by a generated UUID, and never logs it`, async function () {
      const response = await fetch(`${url}/ok`, { headers: { 'X-Request-Id': offered } });
      const id = response.headers.get('x-request-id');
      expect(id).to.match(uuid);
      expect(idsOf('request')).to.deep.equal([id]);
      expect(log.text()).to.not.contain(offered);
    });
  }

  it('keeps one of exactly 128 characters', async function () {
    const id = 'b'.repeat(128);
    const response = await fetch(`${url}/ok`, { headers: { 'X-Request-Id': id } });
    expect(response.headers.get('x-request-id')).to.equal(id);
  });

  it('puts the id on the error handler\'s line and the request line of a failed request, and returns it', async function () {
    const response = await fetch(`${url}/fail`, { headers: { 'X-Request-Id': 'failing-1' } });
    expect(response.status).to.equal(500);
    expect(response.headers.get('x-request-id')).to.equal('failing-1');
    expect(log.lines.find((l) => l.msg === 'request failed')).to.include({ reqId: 'failing-1', err: 'broken on purpose' });
    expect(idsOf('request')).to.deep.equal(['failing-1']);
  });

  it('leaves lines written outside a request without an id', async function () {
    await fetch(`${url}/ok`);
    log.logger.info('outside');
    expect(log.lines.find((l) => l.msg === 'outside')).to.not.have.property('reqId');
  });
});
