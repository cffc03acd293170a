import { expect } from 'chai';
import { TrafficGate } from '../../src/http/traffic-gate.js';
import { AgentToken } from '../../src/vault/agent-token.js';
import { LifetimeWatcher } from '../../src/vault/lifetime-watcher.js';
import { serviceScheduleRules } from '../../src/vault/token-schedule.js';
import { capturingLogger } from '../support/rendered-secrets.js';

const timers = () => process.getActiveResourcesInfo().filter((type) => type === 'Timeout').length;

describe('reliability: stopping the agent token watcher while a check is in flight (hand-written fake Vault)', function () {
  it('leaves no timer behind (a check that succeeds after stop() must not re-arm the expiry alarm)', async function () {
    const { logger } = capturingLogger();
    let delayMs = 0;
    const api = {
      lookupSelf: async () => {
        if (delayMs > 0) await new Promise((r) => setTimeout(r, delayMs));
        return { ttlSeconds: 300, renewable: true, policies: [] };
      },
    };
    await new Promise((r) => setImmediate(r)); // mocha arms this test's own timeout timer first
    const before = timers();
    const watcher = new LifetimeWatcher({
      strategy: new AgentToken({ api, tokenFile: '/nowhere/token', readToken: () => Promise.resolve('a-token'), logger }),
      report: new TrafficGate(logger), logger, rules: serviceScheduleRules(500),
    });
    await watcher.start();
    delayMs = 100;
    const inFlight = watcher.checkNow();
    await new Promise((r) => setTimeout(r, 10));
    await watcher.stop();
    await inFlight;
    // Before the fix, a 300 s expiry alarm stayed armed here and kept the process alive.
    expect(timers()).to.equal(before);
  });
});
