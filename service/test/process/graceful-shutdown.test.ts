import { expect } from 'chai';
import { EventEmitter } from 'node:events';
import sinon from 'sinon';
import { exitGracefullyOnSignals, shutdownTimeoutFor, stopInOrder } from '../../src/process/graceful-shutdown.js';
import { capturingLogger } from '../support/rendered-secrets.js';

/** A promise the test settles by hand: a close() that takes as long as the test decides. */
function deferred() {
  let resolve!: () => void;
  let reject!: (error: Error) => void;
  const promise = new Promise<void>((res, rej) => { resolve = res; reject = rej; });
  return { promise, resolve, reject };
}

describe('exitGracefullyOnSignals, with a fake process, a fake exit and sinon fake timers', function () {
  let clock: sinon.SinonFakeTimers;
  let signals: EventEmitter;
  let exit: sinon.SinonSpy<[number], undefined>;
  let log: ReturnType<typeof capturingLogger>;
  let closing: ReturnType<typeof deferred>;
  let close: sinon.SinonSpy<[], Promise<void>>;

  beforeEach(function () {
    clock = sinon.useFakeTimers();
    signals = new EventEmitter();
    exit = sinon.fake<[number], undefined>();
    log = capturingLogger();
    closing = deferred();
    close = sinon.spy(() => closing.promise);
    exitGracefullyOnSignals({ signals, exit, logger: log.logger, close, timeoutMs: 25_000 });
  });
  afterEach(function () {
    clock.restore();
  });

  const messages = () => log.lines.map((l) => String(l.msg));

  it('closes on SIGTERM, waits for close, then logs stopped and exits 0', async function () {
    signals.emit('SIGTERM', 'SIGTERM');
    expect(close.calledOnce).to.be.true;
    await clock.tickAsync(20_000);
    expect(exit.called, 'no exit while close runs').to.be.false;
    closing.resolve();
    await clock.tickAsync(0);
    expect(exit.args).to.deep.equal([[0]]);
    expect(messages()).to.deep.equal(['shutting down', 'stopped']);
    expect(log.lines[0]).to.include({ signal: 'SIGTERM' });
  });

  it('starts the same shutdown on SIGINT', async function () {
    signals.emit('SIGINT', 'SIGINT');
    closing.resolve();
    await clock.tickAsync(0);
    expect(close.calledOnce).to.be.true;
    expect(exit.args).to.deep.equal([[0]]);
  });

  it('exits at once with 130 on SIGINT during the shutdown, with one line saying so, never exit 0', async function () {
    signals.emit('SIGTERM', 'SIGTERM');
    await clock.tickAsync(1000);
    signals.emit('SIGINT', 'SIGINT');
    expect(exit.args).to.deep.equal([[130]]);
    expect(messages()).to.deep.equal([
      'shutting down',
      'second signal during shutdown: exiting now, requests in flight are dropped',
    ]);
    closing.resolve();
    await clock.tickAsync(30_000);
    expect(exit.args, 'the shutdown finishing later changes nothing').to.deep.equal([[130]]);
    expect(close.calledOnce, 'one shutdown per process').to.be.true;
  });

  it('exits with 143 on a second SIGTERM, and logs the forced exit once however many signals follow', function () {
    signals.emit('SIGTERM', 'SIGTERM');
    signals.emit('SIGTERM', 'SIGTERM');
    signals.emit('SIGINT', 'SIGINT');
    signals.emit('SIGTERM', 'SIGTERM');
    expect(exit.args).to.deep.equal([[143]]);
    expect(messages().filter((m) => m.startsWith('second signal'))).to.have.length(1);
  });

  it('logs the failure and exits 1 when close rejects', async function () {
    signals.emit('SIGTERM', 'SIGTERM');
    closing.reject(new Error('shutdown steps failed: database pools'));
    await clock.tickAsync(0);
    expect(exit.args).to.deep.equal([[1]]);
    expect(log.lines.at(-1)).to.include({ level: 'error', msg: 'shutdown failed', err: 'shutdown steps failed: database pools' });
  });

  it('exits 1 with one error line when close has not settled at the deadline', async function () {
    signals.emit('SIGTERM', 'SIGTERM');
    await clock.tickAsync(24_999);
    expect(exit.called).to.be.false;
    await clock.tickAsync(1);
    expect(exit.args).to.deep.equal([[1]]);
    expect(log.lines.at(-1)).to.include({ level: 'error', msg: 'shutdown failed: still not stopped at the deadline' });
    closing.resolve();
    await clock.tickAsync(0);
    expect(exit.args).to.deep.equal([[1]]);
  });

  it('leaves no deadline timer behind once close has finished', async function () {
    signals.emit('SIGTERM', 'SIGTERM');
    closing.resolve();
    await clock.tickAsync(0);
    expect(clock.countTimers()).to.equal(0);
  });
});

describe('shutdownTimeoutFor', function () {
  it('gives the requests in flight and the stops 20 s past the drain delay: 25 s with the default 5 s delay', function () {
    expect(shutdownTimeoutFor(5000)).to.equal(25_000);
    expect(shutdownTimeoutFor(0)).to.equal(20_000);
    expect(shutdownTimeoutFor(30_000)).to.equal(50_000);
  });
});

describe('stopInOrder', function () {
  it('runs the steps one after the other, in order', async function () {
    const order: string[] = [];
    const log = capturingLogger();
    await stopInOrder([
      { name: 'watchers', stop: async () => { await Promise.resolve(); order.push('watchers'); } },
      { name: 'webhook deliveries', stop: () => { order.push('webhooks'); } },
      { name: 'database pools', stop: () => { order.push('pools'); return Promise.resolve(); } },
    ], log.logger);
    expect(order).to.deep.equal(['watchers', 'webhooks', 'pools']);
    expect(log.lines).to.deep.equal([]);
  });

  it('attempts every step after failures, logs each by name (message only), then rejects naming them', async function () {
    const order: string[] = [];
    const log = capturingLogger();
    const error = await stopInOrder([
      { name: 'token loop', stop: () => Promise.reject(new Error('loop stuck')) },
      { name: 'webhook deliveries', stop: () => { order.push('webhooks'); } },
      { name: 'token sink watch', stop: () => { throw new Error('watch gone'); } },
      { name: 'database pools', stop: () => { order.push('pools'); } },
    ], log.logger).then(() => expect.fail('expected a rejection'), (e: unknown) => e);
    expect(order).to.deep.equal(['webhooks', 'pools']);
    expect(error).to.be.instanceOf(AggregateError);
    expect((error as AggregateError).message).to.equal('shutdown steps failed: token loop, token sink watch');
    expect((error as AggregateError).errors.map((e: Error) => e.message)).to.deep.equal(['loop stuck', 'watch gone']);
    expect(log.lines.map(({ level, step, err, msg }) => ({ level, step, err, msg }))).to.deep.equal([
      { level: 'error', step: 'token loop', err: 'loop stuck', msg: 'a shutdown step failed; going on with the next' },
      { level: 'error', step: 'token sink watch', err: 'watch gone', msg: 'a shutdown step failed; going on with the next' },
    ]);
    expect(log.text()).to.not.contain('at '); // no stack trace
  });
});
