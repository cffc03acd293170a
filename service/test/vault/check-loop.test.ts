import { expect } from 'chai';
import sinon from 'sinon';
import { CheckLoop } from '../../src/vault/check-loop.js';

describe('CheckLoop (fake timers)', function () {
  let clock: sinon.SinonFakeTimers;
  beforeEach(function () {
    clock = sinon.useFakeTimers();
  });
  afterEach(function () {
    clock.restore();
  });

  it('runs the step now, then after each delay it returns', async function () {
    const times: number[] = [];
    const loop = new CheckLoop(() => { times.push(Date.now()); return Promise.resolve(1000); }, () => Date.now());
    await loop.start();
    await clock.tickAsync(3500);
    await loop.stop();
    expect(times).to.deep.equal([0, 1000, 2000, 3000]);
  });

  it('start(delay) waits before the first run', async function () {
    const step = sinon.stub().resolves(1000);
    const loop = new CheckLoop(step, () => Date.now());
    await loop.start(5000);
    expect(loop.nextInMs()).to.equal(5000);
    await clock.tickAsync(4999);
    expect(step.callCount).to.equal(0);
    await clock.tickAsync(1);
    expect(step.callCount).to.equal(1);
    await loop.stop();
  });

  it('a wake during a run is served by one more run, at whatever moment of the run it comes', async function () {
    // Each wake lands at a different point of a run: before its await, during it, and in the
    // turn right after the step resolved (where a promise-based drain used to lose it).
    for (const wakeAfterTicks of [0, 1, 2, 3, 4, 5]) {
      let runs = 0;
      let release: (() => void) | undefined;
      const loop = new CheckLoop(async () => {
        runs++;
        await new Promise<void>((resolve) => { release = resolve; });
        return 60_000;
      }, () => Date.now());
      const first = loop.start();
      release?.();
      for (let i = 0; i < wakeAfterTicks; i++) await Promise.resolve();
      const before = runs;
      const woken = loop.wake();
      // Release whatever run is under way now, and the one the wake asked for.
      for (let i = 0; i < 20 && runs <= before + 1; i++) {
        release?.();
        await Promise.resolve();
      }
      release?.();
      await Promise.all([first, woken]);
      expect(runs, `a wake ${wakeAfterTicks} microtasks after the first run ended`).to.be.at.least(before + 1);
      await loop.stop();
    }
  });

  it('stop() waits for the run under way and arms nothing after it', async function () {
    let release: (() => void) | undefined;
    const loop = new CheckLoop(() => new Promise<number>((resolve) => { release = () => { resolve(1000); }; }), () => Date.now());
    const started = loop.start();
    const stopped = loop.stop();
    release?.();
    await Promise.all([started, stopped]);
    expect(clock.countTimers()).to.equal(0);
    expect(loop.nextInMs()).to.equal(null);
  });
});
