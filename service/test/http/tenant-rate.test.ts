import { expect } from 'chai';
import sinon from 'sinon';
import { TenantRate } from '../../src/http/tenant-rate.js';

describe('TenantRate: a token bucket per tenant (fake timers)', function () {
  let clock: sinon.SinonFakeTimers;
  beforeEach(function () {
    clock = sinon.useFakeTimers({ now: 1_000_000 });
  });
  afterEach(function () {
    clock.restore();
  });

  const takeMany = (rate: TenantRate, tenant: string, n: number) => Array.from({ length: n }, () => rate.take(tenant));

  it('allows a burst of twice the rate, then refuses with the seconds to wait', function () {
    const rate = new TenantRate({ perSecond: 5 });
    expect(takeMany(rate, 'acme', 10)).to.deep.equal(Array(10).fill(0));
    expect(rate.take('acme'), 'the 11th at once').to.equal(1);
  });

  it('refills at the rate: one request per 1/rate seconds once the burst is spent', async function () {
    const rate = new TenantRate({ perSecond: 5 });
    takeMany(rate, 'acme', 10);
    await clock.tickAsync(199);
    expect(rate.take('acme'), '199 ms later: not yet a whole request').to.equal(1);
    await clock.tickAsync(1);
    expect(rate.take('acme'), '200 ms after the burst').to.equal(0);
    expect(rate.take('acme')).to.equal(1);
    // A minute of quiet fills the bucket to the burst, no further.
    await clock.tickAsync(60_000);
    expect(takeMany(rate, 'acme', 10)).to.deep.equal(Array(10).fill(0));
    expect(rate.take('acme')).to.equal(1);
  });

  it('says how long to wait when the rate is below one a second', function () {
    const rate = new TenantRate({ perSecond: 0.25, burst: 1 });
    expect(rate.take('acme')).to.equal(0);
    expect(rate.take('acme'), 'a request every 4 s').to.equal(4);
  });

  it('holds each tenant to its own bucket', function () {
    const rate = new TenantRate({ perSecond: 1 });
    takeMany(rate, 'acme', 2);
    expect(rate.take('acme')).to.equal(1);
    expect(rate.take('globex'), 'another tenant').to.equal(0);
  });

  it('keeps at most maxTenants buckets, dropping the least recently seen', function () {
    const rate = new TenantRate({ perSecond: 1, maxTenants: 3 });
    takeMany(rate, 'a', 2);
    takeMany(rate, 'b', 2);
    takeMany(rate, 'c', 2);
    expect(rate.take('a'), 'a seen again: now the most recent').to.equal(1);
    rate.take('d');
    expect(rate.size).to.equal(3);
    expect(rate.take('a'), 'a kept, still empty').to.equal(1);
    expect(rate.take('b'), 'b dropped: a full bucket again').to.equal(0);
  });
});
