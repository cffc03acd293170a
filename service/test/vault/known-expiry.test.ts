import { expect } from 'chai';
import sinon from 'sinon';
import { maxTimerDelayMs, setLongTimeout } from '../../src/vault/long-timeout.js';
import { KnownExpiry } from '../../src/vault/known-expiry.js';

const ttl768hMs = 768 * 3600 * 1000;

describe('setLongTimeout on Node\'s own timers', function () {
  it('outlasts a plain 768 h setTimeout armed after it, which Node fires after 1 ms, and asks Node for no delay above 2^31-1 ms',
    async function () {
      // Node reports a delay it cannot wait with a TimeoutOverflowWarning, from the timer's
      // constructor: recorded here instead of printed.
      const overflow = sinon.stub(process, 'emitWarning');
      const fired = sinon.spy();
      let cancel: (() => void) | undefined;
      let bound: NodeJS.Timeout | undefined;
      try {
        cancel = setLongTimeout(fired, ttl768hMs);
        expect(overflow.callCount, 'setLongTimeout armed a timer Node cannot wait').to.equal(0);
        // Node clamps the plain timer to 1 ms and fires timers of one delay in the order they
        // were armed: a setLongTimeout that armed 768 h as it stands would fire first.
        const plainFired = new Promise<void>((resolve) => { setTimeout(resolve, ttl768hMs); });
        expect(overflow.callCount, 'Node warns of the plain 768 h timer').to.equal(1);
        expect(overflow.firstCall.args[1]).to.equal('TimeoutOverflowWarning');
        const late = new Promise<never>((_, reject) => {
          bound = setTimeout(() => { reject(new Error('Node did not fire a plain 768 h timer within its 1 ms + 1 s: ' +
            'the defect setLongTimeout works around is gone')); }, 1 + 1000);
        });
        await Promise.race([plainFired, late]);
      } finally {
        clearTimeout(bound);
        cancel?.();
        overflow.restore();
      }
      expect(fired.callCount, 'setLongTimeout fired with the plain timer').to.equal(0);
    });
});

describe('setLongTimeout and KnownExpiry (fake timers)', function () {
  let clock: sinon.SinonFakeTimers;
  beforeEach(function () {
    clock = sinon.useFakeTimers();
  });
  afterEach(function () {
    clock.restore();
  });

  it('the fake clock fires a plain 768 h setTimeout after 1 ms, as Node does: the tests below would see a setLongTimeout that does not chunk',
    async function () {
      const fired = sinon.spy();
      const timer = setTimeout(fired, ttl768hMs);
      await clock.tickAsync(1);
      clearTimeout(timer);
      expect(ttl768hMs).to.be.greaterThan(maxTimerDelayMs);
      expect(fired.callCount).to.equal(1);
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

  it('KnownExpiry: a new verification moves the alarm; clear() leaves none; a TTL of 0 is under a second, so it passes at once, not never', async function () {
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
    // The agent's token at its last second: lookup-self answers a TTL of 0. Taken at the low
    // end of what may be left, so traffic halts before Vault ends the token, never after.
    expiry.set(0);
    expect(expiry.remainingMs()).to.equal(0);
    await clock.tickAsync(0);
    expect(expired.callCount).to.equal(1);
    // 5 s read: expires 5 s from now, not 6.
    expiry.set(5);
    await clock.tickAsync(4999);
    expect(expired.callCount).to.equal(1);
    await clock.tickAsync(1);
    expect(expired.callCount).to.equal(2);
  });
});
