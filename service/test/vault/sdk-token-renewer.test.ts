import { expect } from 'chai';
import sinon from 'sinon';
import { TrafficGate } from '../../src/http/traffic-gate.js';
import { checkFraction, checkSpread } from '../../src/vault/check-schedule.js';
import { TokenLifecycle, type TokenSource } from '../../src/vault/token-lifecycle.js';
import type { LoginResult, TokenInfo, VaultApi } from '../../src/vault/vault-api.js';
import { capturingLogger } from '../support/rendered-secrets.js';

type Api = Pick<VaultApi, 'lookupSelf' | 'renewSelf'>;

const refused = () => Object.assign(new Error('permission denied'), { response: { statusCode: 403 } });
const unreachable = () => Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:8200'), { code: 'ECONNREFUSED' });
const login = (token: string, ttlSeconds: number, renewable = true): LoginResult =>
  ({ token, ttlSeconds, renewable, policies: ['default', 'saas-app-dev'] });
const info = (ttlSeconds: number): TokenInfo => ({ ttlSeconds, renewable: true, policies: ['default'] });

/** A small deterministic generator, so "random" spreads are the same on every run. */
function seeded(seed: number): () => number {
  let state = seed;
  return () => {
    state = (state * 1103515245 + 12345) % 2147483648;
    return state / 2147483648;
  };
}

/**
 * Timing logic only: Vault is a hand-written fake (sinon stubs) and time is sinon's. What
 * these calls do against a real Vault is tested in the lifecycle's real-server tests.
 */
describe('TokenLifecycle timing (fake timers, hand-written fake Vault)', function () {
  let clock: sinon.SinonFakeTimers;
  let log: ReturnType<typeof capturingLogger>;
  let gate: TrafficGate;
  let lifecycles: TokenLifecycle[];

  beforeEach(function () {
    clock = sinon.useFakeTimers();
    log = capturingLogger();
    gate = new TrafficGate(log.logger);
    lifecycles = [];
  });
  afterEach(async function () {
    await Promise.all(lifecycles.map((l) => l.stop()));
    clock.restore();
  });

  function lifecycle(api: Api, source: TokenSource, random: () => number = Math.random, maxCheckIntervalMs = 0) {
    const created = new TokenLifecycle({ api, source, gate, logger: log.logger, random, maxCheckIntervalMs });
    lifecycles.push(created);
    return created;
  }

  function sdkSource(initial: LoginResult, loginStub: sinon.SinonStub = sinon.stub().rejects(new Error('no login expected'))) {
    return { mode: 'sdk' as const, initial, login: loginStub as () => Promise<LoginResult> };
  }

  function agentSource(readToken: () => Promise<string | undefined>) {
    return { mode: 'agent' as const, file: '/vault/secrets/token', readToken };
  }

  /** Advances fake time in small steps and returns when `stub` was first called, relative to now. */
  async function timeOfFirstCall(stub: sinon.SinonStub, limitMs: number, stepMs = 10): Promise<number> {
    const start = Date.now();
    while (stub.callCount === 0 && Date.now() - start < limitMs) await clock.tickAsync(stepMs);
    expect(stub.callCount, 'expected a call').to.be.greaterThan(0);
    return Date.now() - start;
  }

  for (const ttlSeconds of [4, 60, 300, 3600]) {
    it(`renews a ${ttlSeconds} s token two thirds into its TTL, ±1/6 of the TTL`, async function () {
      for (const r of [0, 0.5, 0.999]) {
        const renewSelf = sinon.stub().resolves(login('t', ttlSeconds));
        const api = { renewSelf, lookupSelf: sinon.stub().resolves(info(ttlSeconds)) };
        const loop = lifecycle(api, sdkSource(login('t', ttlSeconds)), () => r);
        await loop.start();
        const at = await timeOfFirstCall(renewSelf, ttlSeconds * 1000, ttlSeconds >= 300 ? 100 : 10);
        const step = ttlSeconds >= 300 ? 100 : 10;
        const expected = ttlSeconds * 1000 * (checkFraction + checkSpread * (r - 0.5));
        expect(at).to.be.within(expected, expected + step);
        expect(at).to.be.within(ttlSeconds * 1000 / 2, ttlSeconds * 1000 * 5 / 6 + step);
        expect(api.lookupSelf.callCount, 'no check between renewals without a maximum interval').to.equal(0);
        await loop.stop();
      }
    });
  }

  /** A stub answering `result`, remembering the fake time of each call. */
  function timed<T>(result: () => Promise<T>): { stub: sinon.SinonStub; times: number[] } {
    const times: number[] = [];
    const stub = sinon.stub().callsFake(() => { times.push(Date.now()); return result(); });
    return { stub, times };
  }

  it('spreads the renewals of 20 instances started together: no second holds more than 3× the mean', async function () {
    const ttlSeconds = 300;
    const instanceTimes: number[][] = [];
    for (let i = 0; i < 20; i++) {
      const renew = timed(() => Promise.resolve(login(`t${i}`, ttlSeconds)));
      await lifecycle({ renewSelf: renew.stub, lookupSelf: sinon.stub() }, sdkSource(login('t', ttlSeconds)), seeded(i + 1)).start();
      instanceTimes.push(renew.times);
    }
    await clock.tickAsync(ttlSeconds * 1000 * 0.84);
    const firsts = instanceTimes.map((times) => times[0] ?? Number.NaN);
    expect(firsts.every((t) => t >= ttlSeconds * 1000 / 2 && t <= ttlSeconds * 1000 * 5 / 6)).to.be.true;
    const perSecond = new Map<number, number>();
    for (const t of firsts) perSecond.set(Math.floor(t / 1000), (perSecond.get(Math.floor(t / 1000)) ?? 0) + 1);
    const windowSeconds = ttlSeconds * checkSpread;
    const mean = 20 / windowSeconds;
    expect(Math.max(...perSecond.values())).to.be.at.most(Math.max(1, 3 * mean));
    expect(perSecond.size).to.be.at.least(15);
  });

  it('retries an unreachable Vault with growing waits, never zero and never over the 10 s cap', async function () {
    const renew = timed(() => Promise.reject(unreachable()));
    await lifecycle({ renewSelf: renew.stub, lookupSelf: sinon.stub() }, sdkSource(login('t', 3600))).start();
    await clock.tickAsync(3600 * 1000 * 0.84 + 120_000);
    const waits = renew.times.slice(1).map((t, i) => t - (renew.times[i] ?? 0));
    expect(waits.length).to.be.at.least(12);
    expect(Math.min(...waits)).to.be.greaterThan(0);
    expect(Math.max(...waits)).to.be.at.most(10_000);
    expect(waits.slice(-5).every((w) => w >= 5000), 'later waits sit near the cap').to.be.true;
    expect(log.lines.filter((l) => l.level === 'warn').length, 'a warning per failed check').to.equal(renew.times.length);
    expect(gate.isOpen, 'still before the known expiry').to.be.true;
  });

  it('logs in again, at once, when a renewal no longer extends the TTL (max TTL reached)', async function () {
    const renewSelf = sinon.stub().resolves(login('t', 2)); // capped: 2 s left of a 6 s token
    const relogin = timed(() => Promise.resolve(login('fresh', 6)));
    await lifecycle({ renewSelf, lookupSelf: sinon.stub() }, sdkSource(login('t', 6), relogin.stub), () => 0.5).start();
    await clock.tickAsync(4000);
    expect(renewSelf.callCount).to.equal(1);
    expect(relogin.times, 'right after the capped renewal, 2/3 into the 6 s TTL').to.deep.equal([4000]);
    expect(gate.isOpen).to.be.true;
    // The next renewal is of the new token, two thirds into its own TTL.
    await clock.tickAsync(4000);
    expect(renewSelf.secondCall.args[0]).to.equal('fresh');
  });

  it('renews when its timer fires a little before the monotonic clock reaches the renewal time', async function () {
    const renewSelf = sinon.stub().resolves(login('t', 60));
    const lookupSelf = sinon.stub().resolves(info(60));
    // A monotonic clock a hair slower than the timers (4 ms over 40 s), as real ones can be.
    const loop = new TokenLifecycle({
      api: { renewSelf, lookupSelf }, source: sdkSource(login('t', 60)), gate, logger: log.logger, random: () => 0.5,
      now: () => performance.now() * 0.9999,
    });
    lifecycles.push(loop);
    await loop.start();
    await clock.tickAsync(40_000);
    expect(renewSelf.callCount).to.equal(1);
    expect(lookupSelf.callCount, 'no lookup in place of the due renewal').to.equal(0);
  });

  it('logs in again when the token is not renewable', async function () {
    const renewSelf = sinon.stub();
    const relogin = sinon.stub().resolves(login('fresh', 6, false));
    await lifecycle({ renewSelf, lookupSelf: sinon.stub() }, sdkSource(login('t', 6, false), relogin), () => 0.5).start();
    await clock.tickAsync(4000);
    expect(renewSelf.callCount).to.equal(0);
    expect(relogin.callCount).to.equal(1);
  });

  it('halts exactly when the known expiry passes during an outage, not a millisecond before', async function () {
    const lookupSelf = sinon.stub().resolves(info(30));
    await lifecycle({ lookupSelf, renewSelf: sinon.stub() }, agentSource(() => Promise.resolve('agent-token'))).start();
    expect(gate.isOpen).to.be.true;
    lookupSelf.rejects(unreachable());
    await clock.tickAsync(30_000 - 1);
    expect(gate.isOpen).to.be.true;
    expect(lookupSelf.callCount, 'checks went on during the outage').to.be.greaterThan(2);
    await clock.tickAsync(1);
    expect(gate.current).to.include({ state: 'halted', code: 'vault_token_expired' });
    expect(log.lines.filter((l) => l.level === 'fatal')).to.have.length(1);
  });

  it('halts at once when Vault refuses the agent\'s token, and reopens when the agent writes a valid one', async function () {
    let token = 'first';
    const lookupSelf = sinon.stub().callsFake((t: string) => (t === 'first' ? Promise.reject(refused()) : Promise.resolve(info(30))));
    const loop = lifecycle({ lookupSelf, renewSelf: sinon.stub() }, agentSource(() => Promise.resolve(token)));
    await loop.start();
    expect(gate.current).to.include({ state: 'halted', code: 'vault_token_invalid' });
    await clock.tickAsync(5000);
    expect(gate.isOpen).to.be.false;
    expect(log.lines.filter((l) => l.level === 'fatal'), 'one fatal line, not one per check').to.have.length(1);
    token = 'second';
    await loop.checkNow();
    expect(gate.isOpen).to.be.true;
    expect(log.lines.filter((l) => l.msg === 'traffic open again: the Vault token is valid')).to.have.length(1);
  });

  it('SDK: a refused token and a refused login halt; a later successful login reopens', async function () {
    const renewSelf = sinon.stub().rejects(refused());
    const relogin = sinon.stub().rejects(Object.assign(new Error('invalid role or secret ID'), { response: { statusCode: 400 } }));
    await lifecycle({ renewSelf, lookupSelf: sinon.stub() }, sdkSource(login('t', 6), relogin), () => 0.5).start();
    await clock.tickAsync(4000);
    expect(gate.current).to.include({ state: 'halted', code: 'vault_login_failed' });
    expect((gate.current as { reason: string }).reason).to.contain('invalid role or secret ID');
    const attempts = relogin.callCount;
    await clock.tickAsync(3000);
    expect(relogin.callCount, 'keeps trying: a fresh secret id may arrive').to.be.greaterThan(attempts);
    relogin.resolves(login('fresh', 6));
    await clock.tickAsync(11_000);
    expect(gate.isOpen).to.be.true;
  });

  it('SDK: when the max TTL is reached and login is refused, serves until the token expires, then halts', async function () {
    // As Vault does at max TTL: each renewal returns what is left, never more.
    const renewSelf = sinon.stub().callsFake(() => Promise.resolve(login('t', (6000 - Date.now()) / 1000)));
    const relogin = sinon.stub().rejects(Object.assign(new Error('invalid role or secret ID'), { response: { statusCode: 400 } }));
    await lifecycle({ renewSelf, lookupSelf: sinon.stub() }, sdkSource(login('t', 6), relogin), () => 0.5).start();
    await clock.tickAsync(4000);
    expect(relogin.callCount).to.equal(1);
    expect(gate.isOpen, 'the old token still works for 2 s').to.be.true;
    await clock.tickAsync(1000);
    expect(renewSelf.callCount, 'no renewal once it stopped extending the TTL; only logins').to.equal(1);
    expect(relogin.callCount).to.be.greaterThan(1);
    expect(gate.isOpen).to.be.true;
    await clock.tickAsync(999);
    expect(gate.isOpen).to.be.true;
    await clock.tickAsync(1);
    expect(gate.current).to.include({ state: 'halted', code: 'vault_login_failed' });
    expect((gate.current as { reason: string }).reason).to.match(/^the token expired: renewal no longer extends the TTL/);
  });

  it('retries no less often than the maximum check interval when one is set', async function () {
    const lookup = timed(() => Promise.reject(unreachable()));
    await lifecycle({ lookupSelf: lookup.stub, renewSelf: sinon.stub() }, agentSource(() => Promise.resolve('t')),
      Math.random, 1000).start();
    await clock.tickAsync(30_000);
    const waits = lookup.times.slice(1).map((t, i) => t - (lookup.times[i] ?? 0));
    expect(waits.length).to.be.at.least(25);
    expect(Math.max(...waits)).to.be.at.most(1000);
  });

  it('checks at least every maximum interval when one is set', async function () {
    const lookupSelf = timed(() => Promise.resolve(info(3600)));
    await lifecycle({ lookupSelf: lookupSelf.stub, renewSelf: sinon.stub() }, agentSource(() => Promise.resolve('t')), Math.random, 1000).start();
    await clock.tickAsync(10_000);
    expect(lookupSelf.times.length).to.equal(11);
  });
});
