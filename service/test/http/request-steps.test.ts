import { expect } from 'chai';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import Koa, { type Middleware } from 'koa';
import { errorStep } from '../../src/http/errors.js';
import { runSteps, type RequestStep } from '../../src/http/request-steps.js';
import { currentLogContext, withLogContext } from '../../src/log/log-context.js';
import { capturingLogger } from '../support/rendered-secrets.js';

/** A step that records its enter and leave in `seen`, answering when `answers` is its name in the query. */
function recording(name: string, seen: string[]): RequestStep {
  return {
    name,
    enter: (ctx) => {
      seen.push(`enter ${name}`);
      if (ctx.query.throws === name) throw new Error(`${name} broke`);
      if (ctx.query.answers !== name) return false;
      ctx.status = 503;
      ctx.body = { answeredBy: name };
      return true;
    },
    leave: () => { seen.push(`leave ${name}`); },
  };
}

describe('runSteps: the steps every request passes, in one middleware (Koa, no server of its own)', function () {
  let server: Server;
  let url: string;
  let seen: string[];
  let log: ReturnType<typeof capturingLogger>;

  async function serve(steps: readonly RequestStep[], route: Middleware): Promise<void> {
    const app = new Koa();
    app.use(runSteps(steps));
    app.use(route);
    server = app.listen(0);
    await new Promise((r) => server.once('listening', r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  }

  beforeEach(function () {
    seen = [];
    log = capturingLogger();
  });
  afterEach(async function () {
    await new Promise((r) => server.close(r));
  });

  const route: Middleware = (ctx) => {
    seen.push('route');
    if (ctx.query.throws === 'route') throw new Error('the route broke');
    ctx.body = { ok: true };
  };

  it('runs each step\'s enter in order, then the route, then each leave last step first', async function () {
    await serve([recording('a', seen), recording('b', seen), recording('c', seen)], route);
    const response = await fetch(`${url}/`);
    expect(response.status).to.equal(200);
    expect(seen).to.deep.equal(['enter a', 'enter b', 'enter c', 'route', 'leave c', 'leave b', 'leave a']);
  });

  it('stops at a step that answers: no later step, no route; the leaves of the steps that entered still run', async function () {
    await serve([recording('a', seen), recording('b', seen), recording('c', seen)], route);
    const response = await fetch(`${url}/?answers=b`);
    expect(response.status).to.equal(503);
    expect(await response.json()).to.deep.equal({ answeredBy: 'b' });
    expect(seen).to.deep.equal(['enter a', 'enter b', 'leave b', 'leave a']);
  });

  it('hands a later step\'s error to the error step, which answers it; the leaves run after its answer', async function () {
    let statusSeenOnLeave = 0;
    const watcher: RequestStep = { name: 'watcher', enter: () => false, leave: (ctx) => { statusSeenOnLeave = ctx.status; } };
    await serve([watcher, errorStep(log.logger), recording('a', seen)], route);
    const response = await fetch(`${url}/?throws=a`);
    expect(response.status).to.equal(500);
    expect(await response.json()).to.deep.equal({ error: { code: 'internal_error', message: 'internal error' } });
    expect(log.lines.map((l) => [l.msg, l.err])).to.deep.equal([['request failed', 'a broke']]);
    // The step that threw did not finish entering: its leave does not run, nor the route.
    expect(seen).to.deep.equal(['enter a']);
    expect(statusSeenOnLeave, 'a step outside the error step sees the final status').to.equal(500);
  });

  it('hands the route\'s error to the error step too', async function () {
    await serve([errorStep(log.logger), recording('a', seen)], route);
    const response = await fetch(`${url}/?throws=route`);
    expect(response.status).to.equal(500);
    expect(log.lines.map((l) => l.err)).to.deep.equal(['the route broke']);
    expect(seen).to.deep.equal(['enter a', 'route', 'leave a']);
  });

  it('lets an error no step handles reach Koa, the leaves run on the way', async function () {
    await serve([recording('a', seen)], route);
    const response = await fetch(`${url}/?throws=route`);
    expect(response.status).to.equal(500);
    expect(seen).to.deep.equal(['enter a', 'route', 'leave a']);
  });

  it('runs the rest of the request, the later steps and the route included, inside a step\'s around', async function () {
    const contexts: (string | undefined)[] = [];
    const around: RequestStep = { name: 'context', around: (_ctx, rest) => withLogContext({ reqId: 'r-1' }, rest) };
    const probe: RequestStep = { name: 'probe', enter: () => { contexts.push(currentLogContext()?.reqId); return false; } };
    await serve([probe, around, probe], async (ctx) => {
      await new Promise((resolve) => setImmediate(resolve));
      contexts.push(currentLogContext()?.reqId);
      ctx.body = { ok: true };
    });
    expect((await fetch(`${url}/`)).status).to.equal(200);
    expect(contexts).to.deep.equal([undefined, 'r-1', 'r-1']);
  });
});
