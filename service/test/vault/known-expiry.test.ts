import { expect } from 'chai';
import sinon from 'sinon';
import { maxTimerDelayMs, setLongTimeout } from '../../src/vault/long-timeout.js';
import { KnownExpiry } from '../../src/vault/known-expiry.js';

describe('setLongTimeout and KnownExpiry (fake timers)', function () {
  let clock: sinon.SinonFakeTimers;
  beforeEach(function () {
    clock = sinon.useFakeTimers();
  });
  afterEach(function () {
    clock.restore();
  });

  const ttl768hMs = 768 * 3600 * 1000;

  it('a plain setTimeout of 768 h fires after 1 ms: the defect setLongTimeout exists for', async function () {
    // If this ever stops holding, setLongTimeout can go.
    const fired = sinon.spy();
    const timer = setTimeout(fired, ttl768hMs);
    await clock.tickAsync(1);
    clearTimeout(timer);
    expect(ttl768hMs).to.be.greaterThan(maxTimerDelayMs);
    expect(fired.callCount, 'sinon imitates Node here').to.equal(1);
  });

  for (const delay of [1000, maxTimerDelayMs, maxTimerDelayMs + 1, ttl768hMs, 3 * maxTimerDelayMs + 5]) {
    it(`setLongTimeout(${delay}) fires once, at exactly ${delay} ms`, async function () {
      const fired = sinon.spy();
      setLongTimeout(fired, delay);
      await clock.tickAsync(delay - 1);
      expect(fired.callCount).to.equal(0);
      await clock.tickAsync(1);
      expect(fired.callCount).to.equal(1);
      await clock.tickAsync(delay);
      expect(fired.callCount).to.equal(1);
    });
  }

  it('setLongTimeout can be cancelled in any of its steps', async function () {
    const fired = sinon.spy();
    const cancel = setLongTimeout(fired, ttl768hMs);
    await clock.tickAsync(maxTimerDelayMs + 10);
    cancel();
    await clock.tickAsync(ttl768hMs);
    expect(fired.callCount).to.equal(0);
  });

  it('KnownExpiry fires at the known expiry of a 768 h token, not a millisecond before', async function () {
    const expired = sinon.spy();
    const expiry = new KnownExpiry(expired, () => Date.now());
    expiry.set(768 * 3600);
    await clock.tickAsync(ttl768hMs - 1);
    expect(expired.callCount).to.equal(0);
    expect(expiry.remainingMs()).to.equal(1);
    await clock.tickAsync(1);
    expect(expired.callCount).to.equal(1);
    expect(expiry.remainingMs()).to.equal(undefined);
  });

  it('KnownExpiry: a new verification moves the alarm; clear() leaves none; a TTL of 0 is under a second, not forever', async function () {
    const expired = sinon.spy();
    const expiry = new KnownExpiry(expired, () => Date.now());
    expiry.set(10);
    await clock.tickAsync(9000);
    expiry.set(10);
    await clock.tickAsync(9000);
    expect(expired.callCount).to.equal(0);
    expiry.clear();
    await clock.tickAsync(60_000);
    expect(expired.callCount).to.equal(0);
    expect(clock.countTimers()).to.equal(0);
    // The agent's token at its last second: lookup-self answers a TTL of 0.
    expiry.set(0);
    expect(expiry.remainingMs()).to.equal(1000);
    await clock.tickAsync(1000);
    expect(expired.callCount).to.equal(1);
  });
});
