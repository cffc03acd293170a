import { expect } from 'chai';
import sinon from 'sinon';
import { backoffDelay, retryUntil } from '../../src/vault/backoff.js';

const policy = { baseMs: 250, capMs: 5000 };

describe('backoffDelay', function () {
  it('doubles from the base up to the cap, with jitter in the upper half', function () {
    const low = [0, 1, 2, 3, 4, 5, 10, 50].map((n) => backoffDelay(n, policy, () => 0));
    const high = [0, 1, 2, 3, 4, 5, 10, 50].map((n) => backoffDelay(n, policy, () => 1));
    expect(low).to.deep.equal([125, 250, 500, 1000, 2000, 2500, 2500, 2500]);
    expect(high).to.deep.equal([250, 500, 1000, 2000, 4000, 5000, 5000, 5000]);
  });

  it('is never zero, whatever the policy or the random draw', function () {
    expect(backoffDelay(0, { baseMs: 0, capMs: 0 }, () => 0)).to.equal(1);
    expect(backoffDelay(-3, policy, () => 0)).to.equal(125);
  });

  it('spreads retries of many callers over the upper half of the window', function () {
    const delays = Array.from({ length: 1000 }, () => backoffDelay(3, policy));
    expect(Math.min(...delays)).to.be.at.least(1000);
    expect(Math.max(...delays)).to.be.at.most(2000);
    expect(new Set(delays).size).to.be.greaterThan(100);
  });
});

describe('retryUntil (fake timers)', function () {
  let clock: sinon.SinonFakeTimers;
  beforeEach(function () {
    clock = sinon.useFakeTimers();
  });
  afterEach(function () {
    clock.restore();
  });

  it('retries a retryable failure with growing waits and returns the first success', async function () {
    const calls: number[] = [];
    const attempt = () => {
      calls.push(Date.now());
      return calls.length < 4 ? Promise.reject(new Error('ECONNREFUSED')) : Promise.resolve('ok');
    };
    const result = retryUntil(attempt, {
      policy: { baseMs: 100, capMs: 250 }, deadlineMs: 10_000, isRetryable: () => true,
    });
    await clock.tickAsync(10_000);
    expect(await result).to.equal('ok');
    const waits = calls.slice(1).map((t, i) => t - (calls[i] ?? 0));
    expect(waits).to.have.length(3);
    expect(waits[0]).to.be.within(50, 100);
    expect(waits[1]).to.be.within(100, 200);
    expect(waits[2]).to.be.within(125, 250);
  });

  it('gives up with the last error when the next wait would pass the deadline', async function () {
    let calls = 0;
    const result = retryUntil(() => { calls++; return Promise.reject(new Error(`failure ${calls}`)); }, {
      policy: { baseMs: 1000, capMs: 1000 }, deadlineMs: 3500, isRetryable: () => true,
    }).catch((error: unknown) => error as Error);
    await clock.tickAsync(5000);
    const error = await result;
    expect(error.message).to.equal(`failure ${calls}`);
    expect(Date.now()).to.equal(5000);
    expect(calls).to.be.within(3, 7);
  });

  it('does not retry an error that is not retryable', async function () {
    let calls = 0;
    const result = retryUntil(() => { calls++; return Promise.reject(new Error('400 invalid role or secret ID')); }, {
      policy, deadlineMs: 60_000, isRetryable: () => false,
    }).catch((error: unknown) => error as Error);
    await clock.tickAsync(0);
    expect((await result).message).to.contain('400');
    expect(calls).to.equal(1);
  });
});
