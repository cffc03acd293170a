import { expect } from 'chai';
import sinon from 'sinon';
import type { DatabaseLease } from '../../src/config/snapshot.js';
import { TrafficGate } from '../../src/http/traffic-gate.js';
import { LeaseKeeper } from '../../src/vault/lease-keeper.js';
import { serviceScheduleRules } from '../../src/vault/token-schedule.js';
import type { LeaseInfo } from '../../src/vault/vault-api.js';
import { answered, unreachable } from '../support/fake-vault.js';
import { capturingLogger } from '../support/rendered-secrets.js';

const path = 'database/creds/saas-app-dev';
const lease = (id: string, durationSeconds: number, renewable = true): DatabaseLease => ({ path, id, durationSeconds, renewable });
const info = (ttlSeconds: number, renewable = true): LeaseInfo => ({ ttlSeconds, renewable });
const gone = () => answered(400, 'invalid lease');

describe('LeaseKeeper timing (fake timers, hand-written fake Vault)', function () {
  let clock: sinon.SinonFakeTimers;
  let log: ReturnType<typeof capturingLogger>;
  let gate: TrafficGate;
  let keepers: LeaseKeeper[];
  let current: DatabaseLease | null;

  beforeEach(function () {
    clock = sinon.useFakeTimers();
    log = capturingLogger();
    gate = new TrafficGate(log.logger);
    gate.valid();
    keepers = [];
    current = lease('lease-1', 60);
  });
  afterEach(async function () {
    await Promise.all(keepers.map((k) => k.stop()));
    clock.restore();
  });

  function keeper(api: { lookupLease: sinon.SinonStub; renewLease: sinon.SinonStub }, options: {
    replace?: sinon.SinonStub; maxCheckIntervalMs?: number;
  } = {}): LeaseKeeper {
    const created = new LeaseKeeper({
      api, current: () => current, token: () => Promise.resolve('service-token'), report: gate, logger: log.logger,
      rules: serviceScheduleRules(options.maxCheckIntervalMs ?? 10_000, () => 0.5),
      ...(options.replace === undefined ? {} : { replace: options.replace as () => Promise<void> }),
    });
    keepers.push(created);
    return created;
  }

  describe('held by the service (SDK mode)', function () {
    it('renews at two thirds of the TTL, asking for the lease\'s duration, and looks it up in between', async function () {
      const api = { lookupLease: sinon.stub().resolves(info(50)), renewLease: sinon.stub().resolves(info(60)) };
      await keeper(api, { replace: sinon.stub().rejects(new Error('no replacement expected')) }).start();
      await clock.tickAsync(39_000);
      expect(api.renewLease.callCount, 'not before two thirds of 60 s').to.equal(0);
      expect(api.lookupLease.callCount, 'looked up every 10 s in between').to.be.at.least(3);
      await clock.tickAsync(1_100);
      expect(api.renewLease.callCount).to.equal(1);
      expect(api.renewLease.firstCall.args).to.deep.equal(['lease-1', 'service-token', 60]);
      await clock.tickAsync(40_000);
      expect(api.renewLease.callCount, 'renewed again 40 s after the first renewal').to.equal(2);
      expect(gate.isOpen).to.be.true;
    });

    it('renews a short lease before the expiry its lookups show, though Vault rounds the TTL down', async function () {
      // Vault answers whole seconds, rounded down: a lookup a moment after a whole second
      // shows up to a second less than is left, and a 4 s lease is renewed as late as 3.3 s.
      let expiresAt = Date.now() + 4000;
      const api = {
        lookupLease: sinon.stub().callsFake(() => Promise.resolve(info(Math.floor((expiresAt - Date.now() - 1) / 1000)))),
        renewLease: sinon.stub().callsFake(() => { expiresAt = Date.now() + 4000; return Promise.resolve(info(4)); }),
      };
      current = lease('lease-1', 4);
      const created = new LeaseKeeper({
        api, current: () => current, token: () => Promise.resolve('service-token'), report: gate, logger: log.logger,
        rules: serviceScheduleRules(1000, () => 0.999), replace: sinon.stub().rejects(new Error('no replacement expected')),
      });
      keepers.push(created);
      const halts: string[] = [];
      gate.onHalt((code) => halts.push(code));
      await created.start();
      await clock.tickAsync(60_000);
      expect(halts, 'traffic never halted').to.deep.equal([]);
      expect(api.renewLease.callCount).to.be.at.least(15);
    });

    it('fetches new credentials when renewal stops extending the lease, before its max TTL', async function () {
      const api = { lookupLease: sinon.stub().resolves(info(50)), renewLease: sinon.stub().resolves(info(12)) };
      const replace = sinon.stub().callsFake(() => { current = lease('lease-2', 60); return Promise.resolve(); });
      const k = keeper(api, { replace });
      await k.start();
      await clock.tickAsync(40_100);
      expect(replace.callCount).to.equal(1);
      expect(String(replace.firstCall.args[0])).to.match(/renewal no longer extends the lease \(12 s left/);
      expect(k.status()?.ttlSeconds, 'the new lease\'s full duration').to.be.within(59, 60);
      await clock.tickAsync(10_000);
      expect(api.lookupLease.lastCall.args[0], 'the new lease is the one looked up').to.equal('lease-2');
      expect(gate.isOpen).to.be.true;
    });

    it('fetches new credentials at once when Vault refuses a renewal past the max TTL, without halting', async function () {
      // bao granted the full TTL on the renewal before, then refuses this one while the lease still works.
      const api = {
        lookupLease: sinon.stub().resolves(info(50)),
        renewLease: sinon.stub().rejects(answered(400, 'past the max TTL, cannot renew')),
      };
      const replace = sinon.stub().callsFake(() => { current = lease('lease-2', 60); return Promise.resolve(); });
      const halts: string[] = [];
      gate.onHalt((code) => halts.push(code));
      await keeper(api, { replace }).start();
      await clock.tickAsync(40_100);
      expect(api.renewLease.callCount).to.equal(1);
      expect(replace.callCount, 'new credentials at the refused renewal').to.equal(1);
      expect(String(replace.firstCall.args[0])).to.include('past the max TTL');
      expect(halts).to.deep.equal([]);
    });

    it('a revoked lease halts at once and is replaced within one check interval, which reopens', async function () {
      const api = { lookupLease: sinon.stub().resolves(info(50)), renewLease: sinon.stub().resolves(info(60)) };
      const replace = sinon.stub().callsFake(() => { current = lease('lease-2', 60); return Promise.resolve(); });
      await keeper(api, { replace, maxCheckIntervalMs: 2000 }).start();
      api.lookupLease.withArgs('lease-1').rejects(gone());
      await clock.tickAsync(2_000);
      expect(replace.callCount).to.equal(1);
      expect(gate.isOpen).to.be.true;
      // One rule for every refusal: reported at once (one fatal line), then recovered from.
      expect(log.lines.filter((l) => l.level === 'fatal').map((l) => l.code)).to.deep.equal(['database_lease_revoked']);
      expect(log.lines.some((l) => l.msg === 'traffic open again: the database credentials are valid')).to.be.true;
    });

    it('halts with database_lease_revoked when a revoked lease cannot be replaced, and reopens on new credentials', async function () {
      const api = { lookupLease: sinon.stub().resolves(info(50)), renewLease: sinon.stub().resolves(info(60)) };
      const replace = sinon.stub().rejects(answered(403, 'permission denied'));
      await keeper(api, { replace, maxCheckIntervalMs: 2000 }).start();
      api.lookupLease.withArgs('lease-1').rejects(gone());
      await clock.tickAsync(2_000);
      expect(gate.current).to.include({ state: 'halted', code: 'database_lease_revoked' });
      expect((gate.current as { reason: string }).reason).to.include(path).and.not.include('lease-1');
      replace.callsFake(() => { current = lease('lease-2', 60); return Promise.resolve(); });
      await clock.tickAsync(3_000);
      expect(gate.isOpen).to.be.true;
    });

    it('keeps serving while Vault is unreachable, and halts with database_lease_expired at the known expiry', async function () {
      const api = { lookupLease: sinon.stub().rejects(unreachable()), renewLease: sinon.stub().rejects(unreachable()) };
      await keeper(api, { replace: sinon.stub().rejects(unreachable()) }).start();
      await clock.tickAsync(59_000);
      expect(gate.isOpen, 'the lease still has a second').to.be.true;
      await clock.tickAsync(1_100);
      expect(gate.current).to.include({ state: 'halted', code: 'database_lease_expired' });
    });
  });

  describe('held by Vault Agent (agent mode)', function () {
    it('only looks the lease up, never renews it nor fetches credentials', async function () {
      const api = { lookupLease: sinon.stub().resolves(info(3000)), renewLease: sinon.stub().resolves(info(3600)) };
      const k = keeper(api);
      await k.start();
      await clock.tickAsync(3_600_000);
      expect(api.renewLease.callCount).to.equal(0);
      expect(api.lookupLease.callCount, 'at least every maximum check interval').to.be.at.least(360);
      expect(k.status()).to.include({ path, renewedBy: 'agent' });
    });

    it('halts with database_lease_revoked within one check interval, and reopens when the agent renders a new lease', async function () {
      const api = { lookupLease: sinon.stub().resolves(info(3000)), renewLease: sinon.stub() };
      const k = keeper(api, { maxCheckIntervalMs: 1000 });
      await k.start();
      api.lookupLease.withArgs('lease-1').rejects(gone());
      await clock.tickAsync(1_000);
      expect(gate.current).to.include({ state: 'halted', code: 'database_lease_revoked' });
      current = lease('lease-2', 3600);
      await k.checkNow();
      expect(gate.isOpen).to.be.true;
    });

    it('a valid token does not reopen traffic halted for the lease', async function () {
      const api = { lookupLease: sinon.stub().rejects(gone()), renewLease: sinon.stub() };
      await keeper(api).start();
      expect(gate.current).to.include({ code: 'database_lease_revoked' });
      gate.valid();
      expect(gate.isOpen).to.be.false;
    });

    it('does nothing and shows no lease with kv credentials', async function () {
      current = null;
      const api = { lookupLease: sinon.stub(), renewLease: sinon.stub() };
      const k = keeper(api);
      await k.start();
      await clock.tickAsync(120_000);
      expect(api.lookupLease.callCount).to.equal(0);
      expect(k.status()).to.equal(null);
    });
  });
});
