import { expect } from 'chai';
import sinon from 'sinon';
import { TrafficGate } from '../../src/http/traffic-gate.js';
import type { TokenProblem } from '../../src/report/token-report.js';
import { LifetimeWatcher } from '../../src/vault/lifetime-watcher.js';
import { loginVouched, ServiceToken } from '../../src/vault/service-token.js';
import { checkFraction, checkSpread, serviceScheduleRules } from '../../src/vault/token-schedule.js';
import type { LoginResult, VaultApi } from '../../src/vault/vault-api.js';
import { retryAfterKey } from '../../src/vault/vault-transport.js';
import { answered, gaps, loginResult as login, refused, seeded, timed, tokenInfo as info, unreachable } from '../support/fake-vault.js';
import { capturingLogger } from '../support/rendered-secrets.js';

type Api = Pick<VaultApi, 'lookupSelf' | 'renewSelf'>;

/** The service's token and its watcher, started as sdk-mode.ts starts them. */
interface Renewer { token: ServiceToken; watcher: LifetimeWatcher<TokenProblem>; initial: LoginResult; start(): Promise<void>; stop(): Promise<void> }
const invalidSecretId = () => answered(400, 'invalid role or secret ID');

describe('the service\'s token, watched and renewed: timing (fake timers, hand-written fake Vault)', function () {
  let clock: sinon.SinonFakeTimers;
  let log: ReturnType<typeof capturingLogger>;
  let gate: TrafficGate;
  let renewers: Renewer[];

  beforeEach(function () {
    clock = sinon.useFakeTimers();
    log = capturingLogger();
    gate = new TrafficGate(log.logger);
    renewers = [];
  });
  afterEach(async function () {
    await Promise.all(renewers.map((r) => r.stop()));
    clock.restore();
  });

  function renewer(api: Api, initial: LoginResult, options: {
    relogin?: sinon.SinonStub; random?: () => number; maxCheckIntervalMs?: number; now?: () => number;
  } = {}): Renewer {
    const token = new ServiceToken({
      api: { ...api, revokeSelf: sinon.stub().resolves() }, initial,
      login: (options.relogin ?? sinon.stub().rejects(new Error('no login expected'))) as () => Promise<LoginResult>, logger: log.logger,
    });
    const watcher = new LifetimeWatcher({
      strategy: token, report: gate, logger: log.logger, rules: serviceScheduleRules(options.maxCheckIntervalMs ?? 0, options.random ?? Math.random),
      ...(options.now === undefined ? {} : { now: options.now }),
    });
    const created: Renewer = { token, watcher, initial, start: () => watcher.start(loginVouched(initial)), stop: () => watcher.stop() };
    renewers.push(created);
    return created;
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
        const loop = renewer(api, login('t', ttlSeconds), { random: () => r });
        await loop.start();
        const step = ttlSeconds >= 300 ? 100 : 10;
        const at = await timeOfFirstCall(renewSelf, ttlSeconds * 1000, step);
        const expected = ttlSeconds * 1000 * (checkFraction + checkSpread * (r - 0.5));
        expect(at).to.be.within(expected, expected + step);
        expect(at).to.be.within(ttlSeconds * 1000 / 2, ttlSeconds * 1000 * 5 / 6 + step);
        expect(api.lookupSelf.callCount, 'no check between renewals without a maximum interval').to.equal(0);
        await loop.stop();
      }
    });
  }

  it('spreads the renewals of 20 instances started together: no second holds more than 3× the mean', async function () {
    const ttlSeconds = 300;
    const instanceTimes: number[][] = [];
    for (let i = 0; i < 20; i++) {
      const renew = timed(() => Promise.resolve(login(`t${i}`, ttlSeconds)));
      await renewer({ renewSelf: renew.stub, lookupSelf: sinon.stub() }, login('t', ttlSeconds), { random: seeded(i + 1) }).start();
      instanceTimes.push(renew.times);
    }
    await clock.tickAsync(ttlSeconds * 1000 * 0.84);
    const firsts = instanceTimes.map((times) => times[0] ?? Number.NaN);
    expect(firsts.every((t) => t >= ttlSeconds * 1000 / 2 && t <= ttlSeconds * 1000 * 5 / 6)).to.be.true;
    const perSecond = new Map<number, number>();
    for (const t of firsts) perSecond.set(Math.floor(t / 1000), (perSecond.get(Math.floor(t / 1000)) ?? 0) + 1);
    const mean = 20 / (ttlSeconds * checkSpread);
    expect(Math.max(...perSecond.values())).to.be.at.most(Math.max(1, 3 * mean));
    expect(perSecond.size).to.be.at.least(15);
  });

  it('retries an unreachable Vault with growing waits, never zero and never over the 10 s cap', async function () {
    const renew = timed(() => Promise.reject(unreachable()));
    await renewer({ renewSelf: renew.stub, lookupSelf: sinon.stub() }, login('t', 3600)).start();
    await clock.tickAsync(3600 * 1000 * 0.84 + 120_000);
    const waits = gaps(renew.times);
    expect(waits.length).to.be.at.least(12);
    expect(Math.min(...waits)).to.be.greaterThan(0);
    expect(Math.max(...waits)).to.be.at.most(10_000);
    expect(waits.slice(-5).every((w) => w >= 5000), 'later waits sit near the cap').to.be.true;
    expect(log.lines.filter((l) => l.level === 'warn').length, 'a warning per failed call').to.equal(renew.times.length);
    expect(gate.isOpen, 'still before the known expiry').to.be.true;
  });

  it('logs in again, at once, when a renewal no longer extends the TTL (max TTL reached)', async function () {
    const renewSelf = sinon.stub().resolves(login('t', 2)); // capped: 2 s left of a 6 s token
    const relogin = timed(() => Promise.resolve(login('fresh', 6)));
    await renewer({ renewSelf, lookupSelf: sinon.stub() }, login('t', 6), { relogin: relogin.stub, random: () => 0.5 }).start();
    await clock.tickAsync(4000);
    expect(renewSelf.callCount).to.equal(1);
    expect(relogin.times, 'right after the capped renewal, 2/3 into the 6 s TTL').to.deep.equal([4000]);
    expect(gate.isOpen).to.be.true;
    // The next renewal is of the new token, two thirds into its own TTL.
    await clock.tickAsync(4000);
    expect(renewSelf.secondCall.args[0]).to.equal('fresh');
  });

  it('logs in again at once when a renewal answers a single second short of the login TTL: that is the max TTL, not rounding', async function () {
    // 8.5 s into a 4 s token with a 12 s max TTL, bao answers 3; the next renewal would leave 1 s.
    const renewSelf = sinon.stub().resolves(login('t', 3));
    const relogin = timed(() => Promise.resolve(login('fresh', 4)));
    await renewer({ renewSelf, lookupSelf: sinon.stub() }, login('t', 4), { relogin: relogin.stub, random: () => 0.5 }).start();
    await clock.tickAsync(2667);
    expect(renewSelf.callCount).to.equal(1);
    expect(relogin.times, 'right after the renewal that came back short').to.have.length(1);
  });

  it('renews when its timer fires a little before the monotonic clock reaches the renewal time', async function () {
    const renewSelf = sinon.stub().resolves(login('t', 60));
    const lookupSelf = sinon.stub().resolves(info(60));
    // A monotonic clock a hair slower than the timers (4 ms over 40 s), as real ones can be.
    await renewer({ renewSelf, lookupSelf }, login('t', 60), { random: () => 0.5, now: () => performance.now() * 0.9999 }).start();
    await clock.tickAsync(40_000);
    expect(renewSelf.callCount).to.equal(1);
    expect(lookupSelf.callCount, 'no lookup in place of the due renewal').to.equal(0);
  });

  it('logs in again when the token is not renewable, at the renewal time and not before', async function () {
    const renewSelf = sinon.stub();
    const lookupSelf = sinon.stub().resolves(info(6, false));
    const relogin = timed(() => Promise.resolve(login('fresh', 6, false)));
    await renewer({ renewSelf, lookupSelf }, login('t', 6, false), { relogin: relogin.stub, random: () => 0.5, maxCheckIntervalMs: 1000 }).start();
    await clock.tickAsync(4000);
    expect(renewSelf.callCount).to.equal(0);
    expect(relogin.times).to.deep.equal([4000]);
    expect(lookupSelf.callCount, 'checks every second before it').to.equal(3);
  });

  it('SDK: a refused token and a refused login halt; a later successful login reopens', async function () {
    const renewSelf = sinon.stub().rejects(refused());
    const relogin = sinon.stub().rejects(invalidSecretId());
    await renewer({ renewSelf, lookupSelf: sinon.stub() }, login('t', 6), { relogin, random: () => 0.5 }).start();
    await clock.tickAsync(4000);
    expect(gate.current).to.include({ state: 'halted', code: 'vault_login_failed' });
    const reason = (gate.current as { reason: string }).reason;
    expect(reason).to.contain('invalid role or secret ID').and.contain('fresh secret id');
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
    const relogin = sinon.stub().rejects(invalidSecretId());
    await renewer({ renewSelf, lookupSelf: sinon.stub() }, login('t', 6), { relogin, random: () => 0.5 }).start();
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

  describe('the kill switch: a check at least every maximum interval', function () {
    it('rotate: a revoked token halts at once and a new login within the interval reopens', async function () {
      const lookupSelf = sinon.stub().resolves(info(300));
      const relogin = timed(() => Promise.resolve(login('fresh', 300)));
      await renewer({ lookupSelf, renewSelf: sinon.stub() }, login('t', 300), { relogin: relogin.stub, maxCheckIntervalMs: 10_000 }).start();
      await clock.tickAsync(25_000);
      lookupSelf.withArgs('t').rejects(refused());
      await clock.tickAsync(10_000);
      expect(relogin.times).to.have.length(1);
      expect(relogin.times[0]).to.be.at.most(35_000);
      expect(gate.isOpen).to.be.true;
      // One rule for every refusal: reported at once, then recovered from.
      const fatal = log.lines.filter((l) => l.level === 'fatal');
      expect(fatal.map((l) => l.code)).to.deep.equal(['vault_token_invalid']);
      expect(log.lines.some((l) => l.msg === 'traffic open again: the Vault token is valid')).to.be.true;
    });

    it('a refused token halts within the interval even when the new login fails transiently (5xx, 429, timeouts), until a login succeeds', async function () {
      const lookupSelf = sinon.stub().resolves(info(300));
      const relogin = sinon.stub().rejects(answered(503, 'Vault is sealed'));
      await renewer({ lookupSelf, renewSelf: sinon.stub() }, login('t', 300), { relogin, maxCheckIntervalMs: 10_000 }).start();
      await clock.tickAsync(25_000);
      lookupSelf.withArgs('t').rejects(refused());
      await clock.tickAsync(10_000);
      expect(gate.current).to.include({ state: 'halted', code: 'vault_token_invalid' });
      relogin.rejects(answered(429, 'rate limit quota exceeded'));
      await clock.tickAsync(30_000);
      expect(relogin.callCount, 'keeps trying to log in').to.be.greaterThan(2);
      expect(gate.current, 'never reopened on a revoked token').to.include({ state: 'halted', code: 'vault_token_invalid' });
      relogin.resolves(login('fresh', 300));
      await clock.tickAsync(10_000);
      expect(gate.isOpen).to.be.true;
    });

    it('kill: a revoked token and secret id halt within the interval, naming what the operator must deliver', async function () {
      const lookupSelf = sinon.stub().resolves(info(300));
      await renewer({ lookupSelf, renewSelf: sinon.stub() }, login('t', 300),
        { relogin: sinon.stub().rejects(invalidSecretId()), maxCheckIntervalMs: 10_000 }).start();
      await clock.tickAsync(25_000);
      lookupSelf.rejects(refused());
      await clock.tickAsync(9_999);
      expect(gate.current).to.include({ state: 'halted', code: 'vault_login_failed' });
      await clock.tickAsync(60_000);
      const fatal = log.lines.filter((l) => l.level === 'fatal');
      expect(fatal.map((l) => l.code), 'one fatal line per cause: the refused token, then the refused login')
        .to.deep.equal(['vault_token_invalid', 'vault_login_failed']);
      expect(fatal[1]?.reason).to.contain('until an operator delivers a fresh secret id');
    });
  });

  describe('answers that say nothing about the token do not halt', function () {
    for (const [name, failure] of [
      ['429 from a rate-limit quota', () => answered(429, 'request path "auth/token/renew-self": rate limit quota exceeded')],
      ['412 from a standby not caught up', () => answered(412, 'required index state not present')],
      ['500', () => answered(500, 'internal error')],
      ['503 (sealed)', () => answered(503, 'Vault is sealed')],
      ['400 (any other 4xx)', () => answered(400, 'bad request')],
      ['a timeout', () => Object.assign(new Error('no answer within 5000 ms'), { code: 'ETIMEDOUT' })],
    ] as const) {
      it(`${name} on renewal: retried with backoff, no login, open until the known expiry`, async function () {
        const renew = timed(() => Promise.reject(failure()));
        const relogin = sinon.stub().rejects(new Error('no login expected'));
        await renewer({ renewSelf: renew.stub, lookupSelf: sinon.stub() }, login('t', 60), { relogin, random: () => 0.5 }).start();
        await clock.tickAsync(59_999);
        expect(renew.times.length).to.be.at.least(4);
        expect(relogin.callCount).to.equal(0);
        expect(gate.isOpen).to.be.true;
        await clock.tickAsync(1);
        expect(gate.current).to.include({ state: 'halted', code: 'vault_token_expired' });
      });
    }

    it('honours Retry-After: no call before the time Vault asked for', async function () {
      const limited = () => {
        const body = {};
        Object.defineProperty(body, retryAfterKey, { value: 30_000 });
        return answered(429, 'rate limit quota exceeded', body);
      };
      const lookup = timed(() => Promise.reject(limited()));
      await renewer({ lookupSelf: lookup.stub, renewSelf: sinon.stub().resolves(login('t', 3600)) }, login('t', 3600),
        { maxCheckIntervalMs: 10_000 }).start();
      await clock.tickAsync(100_000);
      expect(lookup.times[0]).to.equal(10_000);
      expect(gaps(lookup.times).every((g) => g >= 30_000), gaps(lookup.times).join(',')).to.be.true;
      expect(gate.isOpen).to.be.true;
    });
  });

  describe('long TTLs (Node fires a timer over 2^31-1 ms after 1 ms)', function () {
    const ttl768h = 768 * 3600;

    it('a 768 h token keeps the gate open and renews two thirds in, with no tight loop', async function () {
      const renew = timed(() => Promise.resolve(login('t', ttl768h)));
      const lookupSelf = sinon.stub().resolves(info(ttl768h));
      await renewer({ renewSelf: renew.stub, lookupSelf }, login('t', ttl768h), { random: () => 0.5 }).start();
      await clock.tickAsync(60_000);
      expect(gate.isOpen).to.be.true;
      expect(renew.times).to.deep.equal([]);
      await clock.tickAsync(ttl768h * 1000 * checkFraction);
      expect(renew.times).to.have.length(1);
      expect(renew.times[0]).to.be.closeTo(ttl768h * 1000 * checkFraction, 1);
      expect(gate.isOpen).to.be.true;
    });
  });
});
