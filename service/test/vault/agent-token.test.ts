import { expect } from 'chai';
import sinon from 'sinon';
import { TrafficGate } from '../../src/http/traffic-gate.js';
import type { TokenProblem } from '../../src/report/token-report.js';
import { AgentToken } from '../../src/vault/agent-token.js';
import { LifetimeWatcher } from '../../src/vault/lifetime-watcher.js';
import { checkFraction, serviceScheduleRules } from '../../src/vault/token-schedule.js';
import type { VaultApi } from '../../src/vault/vault-api.js';
import { answered, gaps, refused, timed, tokenInfo as info, unreachable } from '../support/fake-vault.js';
import { capturingLogger } from '../support/rendered-secrets.js';

describe('the agent\'s token, watched: timing (fake timers, hand-written fake Vault)', function () {
  let clock: sinon.SinonFakeTimers;
  let log: ReturnType<typeof capturingLogger>;
  let gate: TrafficGate;
  let watchers: LifetimeWatcher<TokenProblem>[];

  beforeEach(function () {
    clock = sinon.useFakeTimers();
    log = capturingLogger();
    gate = new TrafficGate(log.logger);
    watchers = [];
  });
  afterEach(async function () {
    await Promise.all(watchers.map((w) => w.stop()));
    clock.restore();
  });

  function watcher(lookupSelf: VaultApi['lookupSelf'], readToken: () => Promise<string | undefined> = () => Promise.resolve('agent-token'),
    maxCheckIntervalMs = 10_000, random: () => number = Math.random): LifetimeWatcher<TokenProblem> {
    const created = new LifetimeWatcher({
      strategy: new AgentToken({ api: { lookupSelf }, tokenFile: '/vault/secrets/token', readToken, logger: log.logger }),
      report: gate, logger: log.logger, rules: serviceScheduleRules(maxCheckIntervalMs, random),
    });
    watchers.push(created);
    return created;
  }
  const fatal = () => log.lines.filter((l) => l.level === 'fatal');

  it('checks the token every 10 s by default, whatever its TTL', async function () {
    const lookup = timed(() => Promise.resolve(info(3600)));
    await watcher(lookup.stub).start();
    await clock.tickAsync(60_000);
    expect(lookup.times).to.deep.equal([0, 10_000, 20_000, 30_000, 40_000, 50_000, 60_000]);
  });

  it('times its TTL-driven checks from the full TTL the agent renews to, so they do not bunch up as the token ages', async function () {
    // The agent renews its 30 s token 21 s after each renewal: what is left shrinks, then jumps back.
    const ttl = 30;
    const answers: { at: number; left: number }[] = [];
    const lookupSelf = sinon.stub().callsFake(() => {
      const left = ttl - Math.floor((Date.now() % 21_000) / 1000);
      answers.push({ at: Date.now(), left });
      return Promise.resolve({ ...info(left), expires: true, creationTtlSeconds: ttl });
    });
    await watcher(lookupSelf, undefined, 0, () => 0.5).start();
    await clock.tickAsync(10 * ttl * 1000);
    // Each check two thirds of the full TTL after the one before (20 s), or at the known expiry
    // less the 250 ms minimum when that comes first; timed from what is left, they would come
    // two thirds of what is left apart, closer and closer as the token ages.
    const expected = answers.slice(0, -1).map(({ left }) => Math.min((ttl * 2) / 3 * 1000, left * 1000 - 250));
    expect(gaps(answers.map((a) => a.at))).to.deep.equal(expected);
    expect(answers.length).to.be.greaterThan(10);
  });

  it('at the token\'s last second (lookup-self answers a TTL of 0) halts at once with vault_token_expired, before Vault ends it, not never', async function () {
    const lookupSelf = sinon.stub().resolves(info(30));
    const w = watcher(lookupSelf);
    await w.start();
    expect(gate.isOpen).to.be.true;
    lookupSelf.resolves({ ...info(0), expires: true });
    await w.checkNow();
    await clock.tickAsync(0);
    expect(gate.current).to.include({ state: 'halted', code: 'vault_token_expired' });
  });

  it('a refusal after the known expiry passed says the token expired, not that it was revoked (the agent stopped renewing it)', async function () {
    const lookupSelf = sinon.stub().resolves(info(5));
    await watcher(lookupSelf).start();
    lookupSelf.rejects(unreachable());
    await clock.tickAsync(5000);
    expect(gate.current).to.include({ state: 'halted', code: 'vault_token_expired' });
    lookupSelf.rejects(refused());
    await clock.tickAsync(20_000);
    expect(fatal().map((l) => l.code), 'one halt, for the expiry').to.deep.equal(['vault_token_expired']);
  });

  it('a root token (no expire_time) keeps no expiry; it is still checked', async function () {
    const lookupSelf = sinon.stub().resolves({ ...info(0), expires: false });
    const w = watcher(lookupSelf);
    await w.start();
    await clock.tickAsync(60_000);
    expect(gate.isOpen).to.be.true;
    expect(w.status().ttlSeconds).to.equal(null);
    expect(lookupSelf.callCount).to.be.greaterThan(5);
  });

  it('shows failed checks in /status (lastCheckOk false, its time) and says in one line when Vault answers again', async function () {
    const lookupSelf = sinon.stub().resolves(info(300));
    const w = watcher(lookupSelf);
    await w.start();
    expect(w.status().lastCheckOk).to.equal(true);
    lookupSelf.rejects(unreachable());
    await clock.tickAsync(10_000);
    expect(w.status()).to.include({ lastCheckOk: false, lastCheckAt: new Date(10_000).toISOString() });
    await clock.tickAsync(10_000);
    expect(log.lines.filter((l) => String(l.msg).startsWith('Vault answers again'))).to.deep.equal([]);
    lookupSelf.resolves(info(300));
    await clock.tickAsync(10_000);
    expect(w.status().lastCheckOk).to.equal(true);
    const again = log.lines.filter((l) => String(l.msg).startsWith('Vault answers again'));
    expect(again).to.have.length(1);
    expect(Number(again[0]?.failedAttempts), 'the retries it took').to.be.greaterThan(1);
  });

  it('without a maximum interval, checks two thirds into the remaining TTL', async function () {
    const lookup = timed(() => Promise.resolve(info(300)));
    await watcher(lookup.stub, undefined, 0, () => 0.5).start();
    await clock.tickAsync(300_000);
    expect(lookup.times[1]).to.equal(300_000 * checkFraction);
  });

  it('halts exactly when the known expiry passes during an outage, not a millisecond before', async function () {
    const lookupSelf = sinon.stub().resolves(info(30));
    await watcher(lookupSelf).start();
    expect(gate.isOpen).to.be.true;
    lookupSelf.rejects(unreachable());
    await clock.tickAsync(30_000 - 1);
    expect(gate.isOpen).to.be.true;
    expect(lookupSelf.callCount, 'checks went on during the outage').to.be.greaterThan(2);
    await clock.tickAsync(1);
    expect(gate.current).to.include({ state: 'halted', code: 'vault_token_expired' });
    expect(fatal()).to.have.length(1);
  });

  it('halts at once when Vault refuses the token, and reopens when the agent writes a valid one', async function () {
    let token = 'first';
    const lookupSelf = sinon.stub().callsFake((t: string) => (t === 'first' ? Promise.reject(refused()) : Promise.resolve(info(30))));
    const loop = watcher(lookupSelf, () => Promise.resolve(token));
    await loop.start();
    expect(gate.current).to.include({ state: 'halted', code: 'vault_token_invalid' });
    await clock.tickAsync(5000);
    expect(gate.isOpen).to.be.false;
    expect(fatal(), 'one fatal line, not one per check').to.have.length(1);
    expect(fatal()[0]?.reason).to.contain('/vault/secrets/token').and.contain('fresh secret id');
    token = 'second';
    await loop.checkNow();
    expect(gate.isOpen).to.be.true;
    expect(log.lines.filter((l) => l.msg === 'traffic open again: the Vault token is valid')).to.have.length(1);
  });

  it('kill switch: a token revoked between checks halts within 10 s', async function () {
    const lookupSelf = sinon.stub().resolves(info(300));
    await watcher(lookupSelf).start();
    await clock.tickAsync(3000);
    lookupSelf.rejects(refused());
    await clock.tickAsync(7000);
    expect(gate.current).to.include({ state: 'halted', code: 'vault_token_invalid' });
  });

  it('reports a missing token and retries no less often than the maximum interval', async function () {
    const read = timed(() => Promise.resolve(undefined));
    await watcher(sinon.stub(), read.stub, 1000).start();
    expect(gate.current).to.include({ state: 'halted', code: 'vault_token_missing' });
    await clock.tickAsync(30_000);
    expect(Math.max(...gaps(read.times))).to.be.at.most(1000);
  });

  for (const [name, failure] of [
    ['429 from a rate-limit quota', () => answered(429, 'rate limit quota exceeded')],
    ['412 from a standby not caught up', () => answered(412, 'required index state not present')],
    ['502 from a proxy', () => answered(502, 'Status 502')],
    ['404 (any other 4xx)', () => answered(404, 'not found')],
  ] as const) {
    it(`${name}: no halt before the known expiry`, async function () {
      const lookupSelf = sinon.stub().resolves(info(60));
      await watcher(lookupSelf).start();
      lookupSelf.rejects(failure());
      await clock.tickAsync(59_999);
      expect(gate.isOpen).to.be.true;
      expect(fatal()).to.deep.equal([]);
      expect(log.lines.filter((l) => l.level === 'warn').length).to.be.greaterThan(3);
    });
  }

  it('a 768 h token: the gate stays open and the check interval holds (no tight loop)', async function () {
    const lookup = timed(() => Promise.resolve(info(768 * 3600)));
    await watcher(lookup.stub).start();
    await clock.tickAsync(60_000);
    expect(gate.isOpen).to.be.true;
    expect(lookup.times).to.have.length(7);
  });

  it('a 768 h token without a maximum interval: checked about two thirds in, gate open all along', async function () {
    const lookup = timed(() => Promise.resolve(info(768 * 3600)));
    await watcher(lookup.stub, undefined, 0, () => 0.5).start();
    await clock.tickAsync(3_600_000);
    expect(gate.isOpen).to.be.true;
    expect(lookup.times, 'one check at start, none in the first hour').to.have.length(1);
  });

  it('a check asked for while one is under way runs right after it', async function () {
    let release: (() => void) | undefined;
    const lookupSelf = sinon.stub().resolves(info(300));
    let token = 'old';
    const loop = watcher(lookupSelf, () => Promise.resolve(token));
    await loop.start();
    lookupSelf.callsFake(() => new Promise((resolve) => { release = () => { resolve(info(300)); }; }));
    const first = loop.checkNow();
    await clock.tickAsync(0);
    token = 'new';
    const second = loop.checkNow();
    release?.();
    await clock.tickAsync(0);
    release?.();
    await Promise.all([first, second]);
    expect(lookupSelf.lastCall.args[0]).to.equal('new');
  });
});
