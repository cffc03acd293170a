import { expect } from 'chai';
import { coalesce } from '../../src/async/coalesce.js';

/** Resolves after `depth` turns of the microtask queue. */
async function microtasks(depth: number): Promise<void> {
  for (let i = 0; i < depth; i++) await Promise.resolve();
}

describe('coalesce', function () {
  it('runs the task once per call when calls do not overlap', async function () {
    let runs = 0;
    const reader = coalesce(() => { runs++; return Promise.resolve(); });
    await reader.run();
    await reader.run();
    expect(runs).to.equal(2);
  });

  it('serves every call made during a run with one more run after it, not one per call', async function () {
    let runs = 0;
    let finish: () => void = () => undefined;
    const reader = coalesce(() => {
      runs++;
      return runs === 1 ? new Promise<void>((resolve) => { finish = resolve; }) : Promise.resolve();
    });
    const first = reader.run();
    const during = [reader.run(), reader.run(), reader.run()];
    finish();
    await Promise.all([first, ...during]);
    expect(runs).to.equal(2);
  });

  it('never overlaps two runs', async function () {
    let running = 0;
    let most = 0;
    const reader = coalesce(async () => {
      running++;
      most = Math.max(most, running);
      await microtasks(3);
      running--;
    });
    await Promise.all(Array.from({ length: 10 }, (_, i) => microtasks(i).then(() => reader.run())));
    expect(most).to.equal(1);
  });

  // A call lands anywhere from inside the run to after the run has been cleared up; each must
  // be served by a run that starts after it, including the one that lands between the last
  // check for more requests and the clean-up (it used to get the finished run's promise).
  for (let depth = 0; depth <= 6; depth++) {
    it(`serves a call made ${depth} microtask(s) after the run's task resolved with a run of its own`, async function () {
      let runs = 0;
      let second: Promise<void> | undefined;
      const reader = coalesce(() => {
        runs++;
        if (runs === 1) {
          // The task's own promise resolves now; the second call comes `depth` turns later.
          void microtasks(depth).then(() => { second = reader.run(); });
        }
        return Promise.resolve();
      });
      await reader.run();
      await microtasks(depth + 1);
      expect(second, 'the second call was made').to.not.equal(undefined);
      await second;
      expect(runs).to.equal(2);
    });
  }

  it('settles idle() only once no run is under way', async function () {
    let finish: () => void = () => undefined;
    const reader = coalesce(() => new Promise<void>((resolve) => { finish = resolve; }));
    await reader.idle();
    void reader.run();
    let idle = false;
    const waiting = reader.idle().then(() => { idle = true; });
    await microtasks(5);
    expect(idle, 'idle while the run is under way').to.equal(false);
    finish();
    await waiting;
    expect(idle).to.equal(true);
  });

  it('rejects the callers of a failed run, and runs again at the next call', async function () {
    let runs = 0;
    const reader = coalesce(() => {
      runs++;
      return runs === 1 ? Promise.reject(new Error('read failed')) : Promise.resolve();
    });
    const failed = await reader.run().then(() => undefined, (error: unknown) => error as Error);
    expect(failed?.message).to.equal('read failed');
    await reader.run();
    expect(runs).to.equal(2);
  });

  it('recovers from a task that throws before returning its promise', async function () {
    let runs = 0;
    const reader = coalesce(() => {
      runs++;
      if (runs === 1) throw new Error('thrown at once');
      return Promise.resolve();
    });
    const failed = await reader.run().then(() => undefined, (error: unknown) => error as Error);
    expect(failed?.message).to.equal('thrown at once');
    await reader.run();
    expect(runs).to.equal(2);
  });
});
