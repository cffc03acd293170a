import { expect } from 'chai';
import sinon from 'sinon';
import type { DatabaseLease } from '../../src/config/snapshot.js';
import { TrafficGate } from '../../src/http/traffic-gate.js';
import type { LeaseProblem } from '../../src/report/lease-report.js';
import { DatabaseCredentialsLease, leaseScheduleRules, suspectLookupsMs } from '../../src/vault/database-credentials-lease.js';
import { LifetimeWatcher } from '../../src/vault/lifetime-watcher.js';
import { serviceScheduleRules } from '../../src/vault/token-schedule.js';
import type { LeaseInfo } from '../../src/vault/vault-api.js';
import { answered, timed, unreachable } from '../support/fake-vault.js';
import { capturingLogger } from '../support/rendered-secrets.js';

const path = 'database/creds/saas-app-dev';
const lease = (id: string, durationSeconds: number, renewable = true): DatabaseLease => ({ path, id, durationSeconds, renewable });
const info = (ttlSeconds: number, renewable = true): LeaseInfo => ({ ttlSeconds, renewable });
const gone = () => answered(400, 'invalid lease');
const noReplacement = () => sinon.stub().rejects(new Error('no replacement expected'));
type Api = { lookupLease: sinon.SinonStub; renewLease: sinon.SinonStub };

// Every test runs the lease on production's schedule (leaseScheduleRules over the service's
// token rules with its 10 s check): no maximum check interval, the lease's own TTL times it.
describe('the database credentials\' lease on production\'s schedule (fake timers, hand-written fake Vault)', function () {
  let clock: sinon.SinonFakeTimers;
  let log: ReturnType<typeof capturingLogger>;
  let gate: TrafficGate;
  let watchers: LifetimeWatcher<LeaseProblem>[];
  let current: DatabaseLease | null;

  beforeEach(function () {
    clock = sinon.useFakeTimers();
    log = capturingLogger();
    gate = new TrafficGate(log.logger);
    gate.valid();
    watchers = [];
    current = lease('lease-1', 60);
  });
  afterEach(async function () {
    await Promise.all(watchers.map((w) => w.stop()));
    clock.restore();
  });

  /** The lease and its watcher, made as secrets/database-lease.ts makes them. */
  function watch(api: Api, options: { replace?: sinon.SinonStub; random?: () => number } = {}) {
    const strategy = new DatabaseCredentialsLease({
      api, current: () => current, token: () => Promise.resolve('service-token'), logger: log.logger,
      ...(options.replace === undefined ? {} : { replace: options.replace as (why: string) => Promise<void> }),
    });
    const watcher = new LifetimeWatcher({
      strategy, logger: log.logger, rules: leaseScheduleRules(serviceScheduleRules(10_000, options.random ?? (() => 0.5))), expiryAtLowEnd: false,
      report: { valid: () => { gate.leaseValid(); }, invalid: (code, reason) => { gate.leaseInvalid(code, reason); } },
    });
    watchers.push(watcher);
    /** What PostgreSQL's report does (secrets/database-lease.ts's credentialsGone). */
    const credentialsGone = () => { strategy.suspect(); return watcher.checkNow(); };
    return { strategy, watcher, credentialsGone };
  }

  it('has no maximum check interval, whatever the token\'s', function () {
    expect(leaseScheduleRules(serviceScheduleRules(10_000)).maxCheckIntervalMs).to.equal(0);
  });

  describe('held by the service (SDK mode)', function () {
    it('looks a new lease up once, then renews at two thirds of its TTL asking for its duration, with no lookup between', async function () {
      const lookup = timed(() => Promise.resolve(info(60)));
      const renew = timed(() => Promise.resolve(info(60)));
      await watch({ lookupLease: lookup.stub, renewLease: renew.stub }, { replace: noReplacement() }).watcher.start();
      await clock.tickAsync(100_000);
      expect(lookup.times, 'looked up when first seen, and not again').to.deep.equal([0]);
      expect(renew.times).to.deep.equal([40_000, 80_000]);
      expect(renew.stub.firstCall.args).to.deep.equal(['lease-1', 'service-token', 60]);
      expect(gate.isOpen).to.be.true;
    });

    it('renews a short lease before the expiry its lookup shows, though Vault rounds the TTL down', async function () {
      // Vault answers whole seconds, rounded down: a lookup a moment after a whole second
      // shows up to a second less than is left, and a 4 s lease is renewed as late as 3.3 s.
      let expiresAt = Date.now() + 4000;
      const api = {
        lookupLease: sinon.stub().callsFake(() => Promise.resolve(info(Math.floor((expiresAt - Date.now() - 1) / 1000)))),
        renewLease: sinon.stub().callsFake(() => { expiresAt = Date.now() + 4000; return Promise.resolve(info(4)); }),
      };
      current = lease('lease-1', 4);
      const halts: string[] = [];
      gate.onHalt((code) => halts.push(code));
      await watch(api, { replace: noReplacement(), random: () => 0.999 }).watcher.start();
      await clock.tickAsync(60_000);
      expect(halts, 'traffic never halted').to.deep.equal([]);
      expect(api.renewLease.callCount).to.be.at.least(15);
    });

    it('fetches new credentials when renewal stops extending the lease, before its max TTL, and renews the new lease next', async function () {
      const api = { lookupLease: sinon.stub().resolves(info(60)), renewLease: sinon.stub().resolves(info(12)) };
      const replace = sinon.stub().callsFake(() => { current = lease('lease-2', 60); return Promise.resolve(); });
      const { watcher } = watch(api, { replace });
      await watcher.start();
      await clock.tickAsync(40_100);
      expect(replace.callCount).to.equal(1);
      expect(String(replace.firstCall.args[0])).to.match(/renewal no longer extends the lease \(12 s left/);
      expect(watcher.status().ttlSeconds, 'the new lease\'s full duration').to.be.within(59, 60);
      await clock.tickAsync(40_000);
      expect(api.renewLease.lastCall.args[0], 'the new lease is the one renewed').to.equal('lease-2');
      expect(gate.isOpen).to.be.true;
    });

    it('fetches new credentials at once when Vault refuses a renewal past the max TTL, without halting', async function () {
      // bao granted the full TTL on the renewal before, then refuses this one while the lease still works.
      const api = {
        lookupLease: sinon.stub().resolves(info(60)),
        renewLease: sinon.stub().rejects(answered(400, 'past the max TTL, cannot renew')),
      };
      const replace = sinon.stub().callsFake(() => { current = lease('lease-2', 60); return Promise.resolve(); });
      const halts: string[] = [];
      gate.onHalt((code) => halts.push(code));
      await watch(api, { replace }).watcher.start();
      await clock.tickAsync(40_100);
      expect(api.renewLease.callCount).to.equal(1);
      expect(replace.callCount, 'new credentials at the refused renewal').to.equal(1);
      expect(String(replace.firstCall.args[0])).to.include('past the max TTL');
      expect(halts).to.deep.equal([]);
    });

    it('a lease revoked without a report is seen at its renewal: halts at once, is replaced, and reopens', async function () {
      const api = { lookupLease: sinon.stub().resolves(info(60)), renewLease: sinon.stub().rejects(answered(400, 'lease not found')) };
      const replace = sinon.stub().callsFake(() => { current = lease('lease-2', 60); return Promise.resolve(); });
      await watch(api, { replace }).watcher.start();
      await clock.tickAsync(39_900);
      expect(replace.callCount, 'nothing seen before the renewal').to.equal(0);
      await clock.tickAsync(200);
      expect(replace.callCount).to.equal(1);
      expect(gate.isOpen).to.be.true;
      // One rule for every refusal: reported at once (one fatal line), then recovered from.
      expect(log.lines.filter((l) => l.level === 'fatal').map((l) => l.code)).to.deep.equal(['database_lease_revoked']);
      expect(log.lines.some((l) => l.msg === 'traffic open again: the database credentials are valid')).to.be.true;
    });

    it('halts with database_lease_revoked when a revoked lease cannot be replaced, and reopens on new credentials', async function () {
      const api = { lookupLease: sinon.stub().resolves(info(60)), renewLease: sinon.stub().resolves(info(60)) };
      const replace = sinon.stub().rejects(answered(403, 'permission denied'));
      const { watcher, credentialsGone } = watch(api, { replace });
      await watcher.start();
      api.lookupLease.withArgs('lease-1').rejects(gone());
      await credentialsGone();
      expect(gate.current).to.include({ state: 'halted', code: 'database_lease_revoked' });
      expect((gate.current as { reason: string }).reason).to.include(path).and.not.include('lease-1');
      replace.callsFake(() => { current = lease('lease-2', 60); return Promise.resolve(); });
      await clock.tickAsync(1_000); // the first retry: at most the backoff's 0.5 s base
      expect(gate.isOpen).to.be.true;
    });

    it('keeps serving while Vault is unreachable, and halts with database_lease_expired at the known expiry (the high end of Vault\'s rounding)', async function () {
      const api = { lookupLease: sinon.stub().resolves(info(60)), renewLease: sinon.stub().rejects(unreachable()) };
      await watch(api, { replace: sinon.stub().rejects(unreachable()) }).watcher.start();
      await clock.tickAsync(60_900);
      expect(gate.isOpen, 'a TTL read as 60 s may be 60.9 s').to.be.true;
      await clock.tickAsync(200);
      expect(gate.current).to.include({ state: 'halted', code: 'database_lease_expired' });
    });
  });

  describe('when PostgreSQL reports the credentials gone', function () {
    it(`looks the lease up at once and ${suspectLookupsMs.join(' and ')} ms later, then on its TTL again`, async function () {
      const lookup = timed(() => Promise.resolve(info(3600)));
      current = lease('lease-1', 3600);
      const { watcher, credentialsGone } = watch({ lookupLease: lookup.stub, renewLease: sinon.stub().resolves(info(3600)) }, { replace: noReplacement() });
      await watcher.start();
      await clock.tickAsync(5_000);
      expect(lookup.times, 'no lookup between without a report').to.deep.equal([0]);
      await credentialsGone();
      await clock.tickAsync(60_000);
      expect(lookup.times).to.deep.equal([0, 5_000, 5_000 + suspectLookupsMs[0], 5_000 + suspectLookupsMs[1]]);
    });

    it('halts at the later lookup when Vault still knew the lease at the first (it ends the sessions first)', async function () {
      const api = { lookupLease: sinon.stub().resolves(info(3000)), renewLease: sinon.stub() };
      current = lease('lease-1', 3600);
      const { watcher, credentialsGone } = watch(api);
      await watcher.start();
      await credentialsGone();
      expect(gate.isOpen, 'Vault still knows the lease').to.be.true;
      api.lookupLease.rejects(gone());
      await clock.tickAsync(suspectLookupsMs[0]);
      expect(gate.current).to.include({ state: 'halted', code: 'database_lease_revoked' });
    });
  });

  describe('when PostgreSQL reports the credentials gone and Vault refuses the token (it expired or was revoked)', function () {
    it('the lease is gone with its token: reported revoked, no known expiry left in the status', async function () {
      const api = { lookupLease: sinon.stub().resolves(info(3000)), renewLease: sinon.stub() };
      current = lease('lease-1', 3600);
      const { watcher, credentialsGone } = watch(api);
      await watcher.start();
      expect(watcher.status().ttlSeconds).to.be.greaterThan(2900);
      api.lookupLease.rejects(answered(403, 'permission denied'));
      await credentialsGone();
      expect(gate.current).to.include({ state: 'halted', code: 'database_lease_revoked' });
      expect((gate.current as { reason: string }).reason).to.include('a lease ends with its token');
      expect(watcher.status()).to.include({ ttlSeconds: null, lastCheckOk: false });
    });

    it('without PostgreSQL\'s report a refused token says nothing of the lease (the token\'s watcher reports it)', async function () {
      const api = { lookupLease: sinon.stub().resolves(info(3000)), renewLease: sinon.stub() };
      current = lease('lease-1', 3600);
      const { watcher } = watch(api);
      await watcher.start();
      api.lookupLease.rejects(answered(403, 'permission denied'));
      await watcher.checkNow();
      expect(gate.isOpen).to.be.true;
      expect(watcher.status().ttlSeconds).to.be.greaterThan(2900);
    });
  });

  describe('held by Vault Agent (agent mode)', function () {
    it('only looks the lease up, two thirds into the full duration the agent renews it to; never renews it nor fetches credentials', async function () {
      const lookup = timed(() => Promise.resolve(info(3000)));
      const api = { lookupLease: lookup.stub, renewLease: sinon.stub().resolves(info(3600)) };
      current = lease('lease-1', 3600);
      const { strategy, watcher } = watch(api);
      await watcher.start();
      await clock.tickAsync(3_600_000);
      expect(api.renewLease.callCount).to.equal(0);
      expect(lookup.times).to.deep.equal([0, 2_400_000]);
      expect(strategy.renewedBy).to.equal('agent');
    });

    it('halts with database_lease_revoked on PostgreSQL\'s report, and reopens when the agent renders a new lease', async function () {
      const api = { lookupLease: sinon.stub().resolves(info(3000)), renewLease: sinon.stub() };
      const { watcher, credentialsGone } = watch(api);
      await watcher.start();
      api.lookupLease.withArgs('lease-1').rejects(gone());
      await credentialsGone();
      expect(gate.current).to.include({ state: 'halted', code: 'database_lease_revoked' });
      expect((gate.current as { reason: string }).reason).to.include('Vault Agent renders new credentials');
      current = lease('lease-2', 3600);
      await watcher.checkNow();
      expect(gate.isOpen).to.be.true;
    });

    it('a valid token does not reopen traffic halted for the lease', async function () {
      const api = { lookupLease: sinon.stub().rejects(gone()), renewLease: sinon.stub() };
      await watch(api).watcher.start();
      expect(gate.current).to.include({ code: 'database_lease_revoked' });
      gate.valid();
      expect(gate.isOpen).to.be.false;
    });

    it('does nothing and holds no lease with kv credentials', async function () {
      current = null;
      const api = { lookupLease: sinon.stub(), renewLease: sinon.stub() };
      const { strategy, watcher } = watch(api);
      await watcher.start();
      await clock.tickAsync(120_000);
      expect(api.lookupLease.callCount).to.equal(0);
      expect(strategy.lease).to.equal(undefined);
    });
  });
});
