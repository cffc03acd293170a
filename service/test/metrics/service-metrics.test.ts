import { expect } from 'chai';
import sinon from 'sinon';
import { SnapshotHolder } from '../../src/config/snapshot-holder.js';
import { buildSnapshot } from '../../src/config/snapshot.js';
import type { AgentStatus } from '../../src/report/agent-report.js';
import type { LeaseStatus } from '../../src/report/lease-report.js';
import { TrafficGate } from '../../src/http/traffic-gate.js';
import { instrumentVaultApi, vaultOutcome } from '../../src/metrics/instrumented-vault-api.js';
import { ServiceMetrics } from '../../src/metrics/service-metrics.js';
import type { TokenStatus } from '../../src/report/token-report.js';
import type { VaultApi } from '../../src/vault/vault-api.js';
import { answered, loginResult, refused, tokenInfo, unreachable } from '../support/fake-vault.js';
import { appScope, capturingLogger, renderedDocument } from '../support/rendered-secrets.js';

/** The value of one sample line, e.g. `saas_traffic_gate_open 1`; undefined when absent. */
function sample(text: string, name: string, labels = ''): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${name}${labels} `));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
}

describe('ServiceMetrics (a hand-written fake of Vault behind the instrumented API)', function () {
  let gate: TrafficGate;
  let holder: SnapshotHolder;
  let metrics: ServiceMetrics;
  let token: TokenStatus;
  let reloads: { loaded: number; refused: number; unchanged: number };

  beforeEach(function () {
    gate = new TrafficGate(capturingLogger().logger);
    holder = new SnapshotHolder();
    metrics = new ServiceMetrics();
    token = { mode: 'agent', ttlSeconds: 240, renewable: true, lastCheckAt: null, lastCheckOk: true, nextCheckInSeconds: 10 };
    reloads = { loaded: 1, refused: 0, unchanged: 0 };
    metrics.observe({ gate, holder, token: () => token, reloads: () => reloads, wallClock: () => 50_000 });
  });

  it('exports every name the docs and dashboards rely on, with the process\'s default metrics', async function () {
    const text = await metrics.text();
    for (const name of ['saas_vault_token_ttl_seconds', 'saas_secret_lease_ttl_seconds', 'saas_traffic_gate_open', 'saas_traffic_halts_total',
      'saas_vault_requests_total', 'saas_vault_request_duration_seconds', 'saas_secrets_reloads_total',
      'saas_secrets_snapshot_age_seconds', 'process_resident_memory_bytes', 'nodejs_eventloop_lag_seconds']) {
      expect(text, name).to.match(new RegExp(`^# TYPE ${name} `, 'm'));
    }
  });

  it('reads the gate, the token\'s TTL and the snapshot\'s age at scrape time', async function () {
    let text = await metrics.text();
    expect(sample(text, 'saas_traffic_gate_open')).to.equal(0);
    expect(sample(text, 'saas_vault_token_ttl_seconds')).to.equal(240);
    expect(sample(text, 'saas_secrets_snapshot_age_seconds')).to.equal(0);
    gate.valid();
    holder.swap(buildSnapshot(appScope('dev'), renderedDocument('dev', 1), 'r1', 20_000));
    token = { ...token, ttlSeconds: null };
    text = await metrics.text();
    expect(sample(text, 'saas_traffic_gate_open')).to.equal(1);
    expect(sample(text, 'saas_vault_token_ttl_seconds'), 'no known expiry').to.equal(0);
    expect(sample(text, 'saas_secrets_snapshot_age_seconds')).to.equal(30);
  });

  it('shows the lease\'s remaining TTL per path with dynamic credentials, and no sample with kv ones', async function () {
    const other = new ServiceMetrics();
    let lease: LeaseStatus | null = null;
    other.observe({ gate, holder, token: () => token, lease: () => lease, reloads: () => reloads });
    expect(await other.text()).to.not.match(/^saas_secret_lease_ttl_seconds/m);
    lease = { path: 'database/creds/saas-app-dev', renewedBy: 'agent', ttlSeconds: 1234, renewable: true,
      lastCheckAt: null, lastCheckOk: true, nextCheckInSeconds: 10 };
    expect(sample(await other.text(), 'saas_secret_lease_ttl_seconds', '{path="database/creds/saas-app-dev"}')).to.equal(1234);
    lease = { ...lease, ttlSeconds: null };
    expect(sample(await other.text(), 'saas_secret_lease_ttl_seconds', '{path="database/creds/saas-app-dev"}'), 'none known').to.equal(0);
  });

  it('shows whether Vault Agent is overdue in agent mode (1 or 0), and has no such metric in SDK mode', async function () {
    expect(await metrics.text(), 'SDK mode: no agent').to.not.match(/saas_agent_overdue/);
    const other = new ServiceMetrics();
    let agent: AgentStatus = { state: 'on_time', lastRenewalSecondsAgo: 3, renewalDueInSeconds: 200 };
    other.observe({ gate, holder, token: () => token, agent: () => agent, reloads: () => reloads });
    expect(sample(await other.text(), 'saas_agent_overdue')).to.equal(0);
    agent = { state: 'overdue', lastRenewalSecondsAgo: 230, renewalDueInSeconds: -10 };
    expect(sample(await other.text(), 'saas_agent_overdue')).to.equal(1);
    agent = { state: 'unknown', lastRenewalSecondsAgo: null, renewalDueInSeconds: null };
    expect(sample(await other.text(), 'saas_agent_overdue')).to.equal(0);
  });

  it('counts halts by code, once per halt as the fatal line does, not per refused check', async function () {
    gate.valid();
    gate.halt('vault_token_invalid', 'refused');
    gate.halt('vault_token_invalid', 'refused again');
    gate.halt('vault_token_expired', 'expired');
    gate.valid();
    gate.halt('vault_token_invalid', 'refused');
    const text = await metrics.text();
    expect(sample(text, 'saas_traffic_halts_total', '{code="vault_token_invalid"}')).to.equal(2);
    expect(sample(text, 'saas_traffic_halts_total', '{code="vault_token_expired"}')).to.equal(1);
  });

  it('counts reloads of the rendered file by outcome, catching up with the file source at each scrape', async function () {
    let text = await metrics.text();
    expect(sample(text, 'saas_secrets_reloads_total', '{outcome="loaded"}')).to.equal(1);
    expect(sample(text, 'saas_secrets_reloads_total', '{outcome="refused"}')).to.equal(0);
    reloads = { loaded: 4, refused: 2, unchanged: 3 };
    text = await metrics.text();
    expect(sample(text, 'saas_secrets_reloads_total', '{outcome="loaded"}')).to.equal(4);
    expect(sample(text, 'saas_secrets_reloads_total', '{outcome="refused"}')).to.equal(2);
    expect(sample(text, 'saas_secrets_reloads_total', '{outcome="unchanged"}'), 'identical renders apart').to.equal(3);
  });

  it('counts and times every Vault call by operation and outcome, and passes results and errors through', async function () {
    const fake = {
      addr: 'http://vault', loginAppRole: sinon.stub().resolves(loginResult('t', 60)),
      readKv: sinon.stub().rejects(answered(429, 'rate limit quota exceeded')),
      lookupSelf: sinon.stub().onFirstCall().resolves(tokenInfo(60)).onSecondCall().rejects(refused()),
      renewSelf: sinon.stub().rejects(unreachable()),
      wrappingCreationPath: sinon.stub().rejects(answered(400, 'wrapping token is not valid')),
      unwrapSecretId: sinon.stub().rejects(answered(503, 'Vault is sealed')),
    } as unknown as VaultApi;
    const api = instrumentVaultApi(fake, metrics);
    expect(await api.loginAppRole('role', 'secret')).to.deep.equal(loginResult('t', 60));
    expect(await api.lookupSelf('t')).to.deep.equal(tokenInfo(60));
    for (const call of [() => api.lookupSelf('t'), () => api.readKv('p', 't'), () => api.renewSelf('t'),
      () => api.wrappingCreationPath('w'), () => api.unwrapSecretId('w')]) {
      await call().then(() => { throw new Error('expected a rejection'); }, (error: unknown) => { expect(error).to.be.instanceOf(Error); });
    }
    const text = await metrics.text();
    for (const [operation, outcome] of [['login', 'ok'], ['lookup-self', 'ok'], ['lookup-self', 'refused'], ['read', 'rate_limited'],
      ['renew-self', 'unreachable'], ['wrapping-lookup', 'rejected'], ['unwrap', 'unavailable']]) {
      expect(sample(text, 'saas_vault_requests_total', `{operation="${operation}",outcome="${outcome}"}`), `${operation} ${outcome}`).to.equal(1);
    }
    expect(sample(text, 'saas_vault_request_duration_seconds_count', '{operation="lookup-self"}')).to.equal(2);
    expect(text, 'no argument reaches a label').to.not.match(/secret"|role"|"t"/);
  });

  it('classifies outcomes as the lifecycle does: only 403 is a refusal', function () {
    expect(vaultOutcome(refused())).to.equal('refused');
    expect(vaultOutcome(answered(412, 'x'))).to.equal('unavailable');
    expect(vaultOutcome(answered(404, 'x'))).to.equal('rejected');
  });
});
