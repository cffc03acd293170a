import { expect } from 'chai';
import { EventEmitter } from 'node:events';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import Koa from 'koa';
import sinon from 'sinon';
import { DrainState, drainServer, drainStep } from '../../src/http/drain.js';
import { runSteps } from '../../src/http/request-steps.js';
import { capturingLogger } from '../support/rendered-secrets.js';

describe('drainStep', function () {
  let server: Server;
  let url: string;
  let state: DrainState;
  let release: () => void;
  let reached: Promise<void>;
  let onReached: () => void;

  beforeEach(async function () {
    state = new DrainState();
    reached = new Promise((resolve) => { onReached = resolve; });
    const app = new Koa();
    app.use(runSteps([drainStep(state)]));
    app.use(async (ctx) => {
      if (ctx.path === '/slow') {
        await new Promise<void>((resolve) => { release = resolve; onReached(); });
      }
      ctx.body = { status: 'ready' };
    });
    server = app.listen(0);
    await new Promise((r) => server.once('listening', r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterEach(async function () {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });

  it('passes everything through, keep-alive included, until the drain starts', async function () {
    const response = await fetch(`${url}/readyz`);
    expect(response.status).to.equal(200);
    expect(response.headers.get('connection')).to.equal('keep-alive');
  });

  it('answers /readyz 503 "draining" once the drain starts, and serves other routes with Connection: close', async function () {
    state.start();
    const ready = await fetch(`${url}/readyz`);
    expect(ready.status).to.equal(503);
    expect(await ready.json()).to.deep.equal({ error: { code: 'draining', message: 'the service is shutting down' } });
    const other = await fetch(`${url}/other`);
    expect(other.status).to.equal(200);
    expect(other.headers.get('connection')).to.equal('close');
  });

  it('closes the connection of a request that was in flight when the drain started', async function () {
    const slow = fetch(`${url}/slow`);
    await reached;
    state.start();
    release();
    const response = await slow;
    expect(response.status).to.equal(200);
    expect(response.headers.get('connection')).to.equal('close');
  });
});

/** The part of an http.Server the drain uses, recording what happened when. */
function fakeServer() {
  const events: string[] = [];
  const closed = new EventEmitter();
  return {
    events,
    finishInFlight: () => closed.emit('closed'),
    server: {
      close(callback?: (error?: Error) => void) {
        events.push('close');
        closed.once('closed', () => callback?.());
        return this as unknown as Server;
      },
      closeIdleConnections() { events.push('closeIdleConnections'); },
      closeAllConnections() { events.push('closeAllConnections'); },
    },
  };
}

describe('drainServer, with a fake server and sinon fake timers', function () {
  let clock: sinon.SinonFakeTimers;
  beforeEach(function () {
    clock = sinon.useFakeTimers();
  });
  afterEach(function () {
    clock.restore();
  });

  it('drains at once, keeps accepting for the delay, then closes and waits for requests in flight', async function () {
    const fake = fakeServer();
    const state = new DrainState();
    const log = capturingLogger();
    let done = false;
    void drainServer({ server: fake.server, state, delayMs: 5000, inFlightLimitMs: 10_000, logger: log.logger })
      .then(() => { done = true; });
    expect(state.draining, 'draining at once').to.be.true;
    await clock.tickAsync(4999);
    expect(fake.events, 'still accepting during the delay').to.deep.equal([]);
    await clock.tickAsync(1);
    expect(fake.events).to.deep.equal(['close', 'closeIdleConnections']);
    await clock.tickAsync(5000);
    expect(done, 'waits for the requests in flight').to.be.false;
    fake.finishInFlight();
    await clock.tickAsync(0);
    expect(done).to.be.true;
    expect(clock.countTimers(), 'no timer left behind').to.equal(0);
    expect(log.lines.map((l) => l.msg)).to.deep.equal([
      'draining: /readyz answers 503, still serving until the load balancers let go',
      'not accepting connections: finishing requests in flight',
    ]);
  });

  it('closes at once with a delay of 0', async function () {
    const fake = fakeServer();
    void drainServer({ server: fake.server, state: new DrainState(), delayMs: 0, inFlightLimitMs: 10_000, logger: capturingLogger().logger });
    await clock.tickAsync(0);
    expect(fake.events).to.deep.equal(['close', 'closeIdleConnections']);
  });

  it('cuts the connections still open at the in-flight limit, with a warning', async function () {
    const fake = fakeServer();
    const log = capturingLogger();
    void drainServer({ server: fake.server, state: new DrainState(), delayMs: 1000, inFlightLimitMs: 10_000, logger: log.logger });
    await clock.tickAsync(1000 + 9999);
    expect(fake.events).to.not.include('closeAllConnections');
    await clock.tickAsync(1);
    expect(fake.events.at(-1)).to.equal('closeAllConnections');
    expect(log.lines.at(-1)).to.include({ level: 'warn', msg: 'requests still in flight at the limit: closing their connections' });
  });
});
