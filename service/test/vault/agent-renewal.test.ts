import { expect } from 'chai';
import sinon from 'sinon';
import { TrafficGate } from '../../src/http/traffic-gate.js';
import { AgentToken } from '../../src/vault/agent-token.js';
import { readGrant, renewalDueInMs, renewalPeriodMs, requestToleranceMs } from '../../src/vault/agent-renewal.js';
import { LifetimeWatcher } from '../../src/vault/lifetime-watcher.js';
import { serviceScheduleRules } from '../../src/vault/token-schedule.js';
import type { TokenInfo } from '../../src/vault/vault-api.js';
import { seeded } from '../support/fake-vault.js';
import { capturingLogger } from '../support/rendered-secrets.js';

describe('when Vault Agent\'s renewal is due (agent-renewal.ts)', function () {
  it('is two thirds of the granted TTL plus a third of the largest grace (a fifth of the full TTL) after the grant', function () {
    expect(renewalPeriodMs(300, 300)).to.equal(220_000);
    // A capped renewal grants less: two thirds of that, and the grace still from the full TTL.
    expect(renewalPeriodMs(30, 300)).to.equal(40_000);
  });

  it('places the grant within the second Vault\'s rounding leaves, and narrows it with each reading of the same grant', function () {
    // Granted 300 s; 299 s read at 10_000 ms: made between 0 and 1 s before, at 10_000 at the latest.
    const first = readGrant(undefined, { at: 'g1', ttlSeconds: 300 }, 299, 300, 10_000);
    expect(first.latestAt).to.equal(10_000);
    // 298 s read at 10_600 ms: made between 1 and 2 s before, so at 9_600 at the latest, which the first reading did not know.
    expect(readGrant(first, { at: 'g1', ttlSeconds: 300 }, 298, 300, 10_600).latestAt).to.equal(9_600);
    // A reading that knows less changes nothing.
    expect(readGrant(first, { at: 'g1', ttlSeconds: 300 }, 289, 300, 20_400).latestAt).to.equal(10_000);
    // Another grant starts afresh.
    expect(readGrant(first, { at: 'g2', ttlSeconds: 300 }, 300, 300, 30_000).latestAt).to.equal(31_000);
    expect(renewalDueInMs(first, 10_000)).to.equal(220_000 + requestToleranceMs);
  });
});

/** A token an agent keeps on Vault's clock: renewed by `renew()`, read by `lookupSelf`. */
function agentKeptToken(fullTtlSeconds: number) {
  let grantAt = Date.now();
  let grants = 0;
  return {
    renew() { grantAt = Date.now(); grants++; },
    lookupSelf: (): Promise<TokenInfo> => Promise.resolve({
      ttlSeconds: Math.floor((grantAt + fullTtlSeconds * 1000 - Date.now()) / 1000), renewable: true, policies: ['default'], expires: true,
      creationTtlSeconds: fullTtlSeconds, lastGrant: { at: `grant-${grants}`, ttlSeconds: fullTtlSeconds },
    }),
  };
}

describe('the agent\'s token, watched: is the agent overdue? (fake timers, hand-written fake Vault and agent)', function () {
  let clock: sinon.SinonFakeTimers;
  let log: ReturnType<typeof capturingLogger>;
  let watchers: LifetimeWatcher<string>[];

  beforeEach(function () {
    clock = sinon.useFakeTimers();
    log = capturingLogger();
    watchers = [];
  });
  afterEach(async function () {
    await Promise.all(watchers.map((w) => w.stop()));
    clock.restore();
  });

  function watch(token: ReturnType<typeof agentKeptToken>, maxCheckIntervalMs: number) {
    const agent = new AgentToken({ api: { lookupSelf: token.lookupSelf }, tokenFile: '/vault/secrets/token', readToken: () => Promise.resolve('t'), logger: log.logger });
    const watcher = new LifetimeWatcher({ strategy: agent, report: new TrafficGate(log.logger), logger: log.logger, rules: serviceScheduleRules(maxCheckIntervalMs, () => 0.5) });
    watchers.push(watcher);
    return { agent, watcher };
  }
  const overdueLines = () => log.lines.filter((l) => String(l.msg).startsWith('Vault Agent is overdue'));

  for (const maxCheckIntervalMs of [10_000, 0]) {
    it(`an agent renewing on its rule, whatever its grace, is never called overdue (check interval ${maxCheckIntervalMs} ms)`, async function () {
      const token = agentKeptToken(30);
      const random = seeded(7);
      const { agent, watcher } = watch(token, maxCheckIntervalMs);
      await watcher.start();
      // The agent: two thirds of the TTL, plus a third of a grace of 10 to 20 % of it.
      for (let i = 0; i < 20; i++) {
        await clock.tickAsync(Math.floor((2 / 3) * 30_000 + (0.1 + 0.1 * random()) * 30_000 / 3));
        token.renew();
      }
      expect(overdueLines()).to.deep.equal([]);
      expect(agent.status().state).to.equal('on_time');
    });

    it(`an agent that stops renewing is overdue within its renewal period of its last renewal, said once, and cleared by its next renewal (check interval ${maxCheckIntervalMs} ms)`, async function () {
      const token = agentKeptToken(30);
      const { agent, watcher } = watch(token, maxCheckIntervalMs);
      await watcher.start();
      await clock.tickAsync(21_000);
      token.renew();
      const renewedAt = Date.now();
      await watcher.checkNow();
      // Dead from here on. Its renewal is due 22 s after the last one at the latest.
      let overdueAt: number | undefined;
      while (overdueAt === undefined && Date.now() - renewedAt < 40_000) {
        await clock.tickAsync(50);
        if (agent.status().state === 'overdue') overdueAt = Date.now();
      }
      expect(overdueAt, 'called overdue').to.not.equal(undefined);
      const period = renewalPeriodMs(30, 30);
      expect((overdueAt ?? 0) - renewedAt).to.be.within(period, period + 1000 + requestToleranceMs + 50);
      await clock.tickAsync(5_000);
      expect(overdueLines(), 'said once').to.have.length(1);
      expect(overdueLines()[0]).to.include({ level: 'error', file: '/vault/secrets/token' });
      token.renew();
      await watcher.checkNow();
      expect(agent.status().state).to.equal('on_time');
      expect(log.lines.filter((l) => l.msg === 'Vault Agent renewed its token again: no longer overdue')).to.have.length(1);
    });
  }

  it('is unknown while Vault says nothing of the last renewal (a hand-written fake without it)', async function () {
    const { agent, watcher } = watch({ renew() {}, lookupSelf: () => Promise.resolve({ ttlSeconds: 30, renewable: true, policies: [], expires: true }) }, 10_000);
    await watcher.start();
    expect(agent.status()).to.deep.equal({ state: 'unknown', lastRenewalSecondsAgo: null, renewalDueInSeconds: null });
  });
});
