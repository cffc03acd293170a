import { expect } from 'chai';
import { createServer } from 'node:net';
import { cliAs } from '../support/bao-server.js';
import { watchReadyEndpoints } from '../support/ready-endpoints.js';
import { startServiceClient, type ServiceRequest } from '../support/service-client.js';
import { recordOutput, registerSecret } from '../support/leak-scan.js';
import { namespace, sleep, until, type NativeSidecar, type Pod } from '../support/native-sidecar.js';
import { retryBudgetMs } from '../support/shipped-durations.js';
import { auditEntriesSince, auditHash, auditOffset, lookupLease, type AuditEntry } from '../support/vault-audit.js';

/**
 * What a pod leaves behind and how its agent's state counts (issue 34: items 3, 4, 6 and 7),
 * on native-sidecar.test.ts's cluster and Vault: each function adds one test to that file's
 * describe, at the place it is called (the tests share its pods, its signed-in session and
 * its Vault, as the other tests there do).
 */
export interface Context {
  readonly deployed: () => NativeSidecar;
  /** The signed-in user's headers (set by the sign-in test). */
  readonly session: () => Record<string, string>;
}

interface Admitted {
  spec: {
    terminationGracePeriodSeconds: number;
    containers: { name: string; env: { name: string; value: string }[] }[];
    initContainers: { name: string; livenessProbe?: { exec: { command: string[] }; periodSeconds: number; timeoutSeconds: number } }[];
  };
}

/** The deployment, its first running pod, and that pod as the API server admitted it. */
async function firstPod(context: Context) {
  const deployed = context.deployed();
  const [pod] = await deployed.runningPods();
  if (pod === undefined) throw new Error('no pod');
  const admitted = await deployed.cluster.api<Admitted>(`/api/v1/namespaces/${namespace}/pods/${pod.metadata.name}`);
  return { deployed, cluster: deployed.cluster, vault: deployed.vault, pod, admitted };
}

/** The agent's render, as the pod holds it: the database lease and user (the password registered as a secret). */
async function renderedDatabase(deployed: NativeSidecar, pod: Pod): Promise<{ leaseId: string; username: string }> {
  const text = await deployed.cluster.kube(['exec', '-n', namespace, pod.metadata.name, '-c', 'vault-agent', '--', 'cat', '/vault/secrets/app.json']);
  const database = (JSON.parse(text) as { database: { lease: { id: string }; data: { username: string; password: string } } }).database;
  registerSecret('pod database password', database.data.password);
  return { leaseId: database.lease.id, username: database.data.username };
}

/** The issued users PostgreSQL knows (pg_roles), and those with a session (pg_stat_activity). */
async function databaseUsers(deployed: NativeSidecar): Promise<{ roles: string[]; sessions: string[] }> {
  const list = async (sql: string) => (await deployed.vault.pg.query(sql)).split('\n').filter((l) => l !== '').sort();
  return {
    roles: await list("SELECT rolname FROM pg_roles WHERE rolname LIKE 'v-%'"),
    sessions: await list("SELECT DISTINCT usename FROM pg_stat_activity WHERE usename LIKE 'v-%'"),
  };
}

/** The successful revoke-self of the token whose HMAC is `tokenHash`, if the audit log holds one. */
const revokedSelf = (entries: AuditEntry[], tokenHash: string) => entries.find((e) =>
  e.type === 'response' && e.request?.path === 'auth/token/revoke-self' && e.auth?.client_token === tokenHash && (e.error ?? '') === '');

const restartsOf = (pod: Pod, container: string) =>
  [...pod.status.containerStatuses ?? [], ...pod.status.initContainerStatuses ?? []].find((c) => c.name === container)?.restartCount ?? 0;

/** Item 3: the schema Job completes, its agent beside it, and what it was issued ends with it. */
export function schemaJobTest(context: Context): void {
  it('runs the schema Job to completion as a database user Vault issued it, and leaves no valid token or lease', async function () {
    this.timeout(180_000);
    const deployed = context.deployed();
    const { cluster, vault } = deployed;
    const appLeases = await Promise.all((await deployed.runningPods()).map(async (pod) => (await renderedDatabase(deployed, pod)).leaseId));
    const before = await databaseUsers(deployed);
    const offset = await auditOffset(vault);
    const started = Date.now();
    await deployed.applySchemaJob();
    await cluster.kube(['wait', '--for=condition=complete', '-n', namespace, 'job/saas-schema', '--timeout=150s']);
    const completed = Date.now();
    const [pod] = (await cluster.api<{ items: Pod[] }>(`/api/v1/namespaces/${namespace}/pods?labelSelector=job-name%3Dsaas-schema`)).items;
    if (pod === undefined) throw new Error('no pod of the Job');
    const logs = await Promise.all(['app', 'vault-agent'].map(async (container) => {
      const log = await cluster.kube(['logs', '-n', namespace, pod.metadata.name, '-c', container]);
      recordOutput(`${pod.metadata.name}/${container} log`, log);
      return log;
    }));
    // The schema container ran once, to its end; the agent beside it was stopped, not left running.
    const app = pod.status.containerStatuses?.find((c) => c.name === 'app')?.state as { terminated?: { exitCode: number } } | undefined;
    expect(app?.terminated?.exitCode, logs[0]).to.equal(0);
    expect(Object.keys(pod.status.initContainerStatuses?.find((c) => c.name === 'vault-agent')?.state ?? {})).to.deep.equal(['terminated']);
    const ready = logs[0]?.split('\n').find((line) => line.includes('"msg":"schema ready"'));
    expect(ready, logs[0]).to.contain('"tables":["projects","sessions","webhook_outbox"]');

    // The Job's lease: the one database/creds read since the Job started that no app pod holds.
    const entries = await auditEntriesSince(vault, offset);
    const issued = entries.filter((e) => e.type === 'response' && e.request?.path === 'database/creds/saas-app-prod' && (e.error ?? '') === '');
    const jobs = issued.filter((e) => !appLeases.includes(e.response?.secret?.lease_id ?? ''));
    expect(jobs.map((e) => e.response?.secret?.lease_id), 'the leases read since the Job started, but the app pods\'').to.have.length(1);
    const [job] = jobs;
    const leaseId = job?.response?.secret?.lease_id ?? '';
    // Revoked by the token that read it, its own stop hook's revoke-self, before the Job completed.
    const revoked = revokedSelf(entries, job?.auth?.client_token ?? '');
    expect(revoked, 'a revoke-self by the token that read the Job\'s lease').to.not.equal(undefined);
    expect(Date.parse(revoked?.time ?? '')).to.be.at.most(completed);
    const lease = await lookupLease(vault, leaseId);
    expect(lease.valid, 'the Job\'s lease in Vault').to.equal(false);
    // PostgreSQL: the Job's user is gone, and nobody but the app pods' users is connected.
    const after = await databaseUsers(deployed);
    expect(after.roles, 'pg_roles: the users Vault issued').to.deep.equal(before.roles);
    expect(after.sessions.filter((user) => !before.roles.includes(user)), 'pg_stat_activity').to.deep.equal([]);
    // What it created belongs to the group role every issued user acts as.
    const tables = await vault.pg.query("SELECT tablename || ' ' || tableowner FROM pg_tables WHERE tablename IN ('projects', 'sessions', 'webhook_outbox') ORDER BY 1", 'saas');
    expect(tables.split('\n').filter((l) => l !== '')).to.deep.equal(['projects saas_app_owner', 'sessions saas_app_owner', 'webhook_outbox saas_app_owner']);
    console.log(`      the Job completed ${completed - started} ms after it was applied; its token revoked ${completed - Date.parse(revoked?.time ?? '')} ms before that`);
  });
}

/** Item 6: the agent's liveness probe, as the kubelet runs it, on each state of Vault and the token. */
export function agentProbeTest(context: Context): void {
  it('fails the agent\'s liveness probe on a token Vault refuses, and passes it while Vault refuses connections or never answers', async function () {
    this.timeout(120_000);
    const { deployed, cluster, vault, pod, admitted } = await firstPod(context);
    const probe = admitted.spec.initContainers.find((c) => c.name === 'vault-agent')?.livenessProbe;
    if (probe === undefined) throw new Error('the agent has no liveness probe');
    // The probe's command, run where the kubelet runs it: its exit code, and how long it took.
    const run = async () => {
      const at = Date.now();
      const code = await cluster.kube(['exec', '-n', namespace, pod.metadata.name, '-c', 'vault-agent', '--', ...probe.exec.command])
        .then(() => 0, (error: unknown) => Number(/exit code (\d+)/.exec(String(error))?.[1] ?? -1));
      return { code, ms: Date.now() - at };
    };
    expect((await run()).code, 'a valid token').to.equal(0);
    const outcomes: string[] = [];
    // A refused token: the role locked first, so that the agent cannot log in again before the
    // kubelet has probed.
    const role = 'auth/kubernetes/role/saas-app-prod';
    const locked = await cliAs(vault.node, vault.harnessToken, ['write', role, 'bound_service_account_names=probe-test-locked']);
    expect(locked.code, locked.stderr).to.equal(0);
    // The kubelet's failures of this probe, as events: each one's count (an event repeats with a higher count).
    const failures = async () => {
      const events = await cluster.api<{ items: { metadata: { name: string }; reason: string; message: string; count?: number }[] }>(
        `/api/v1/namespaces/${namespace}/events?fieldSelector=involvedObject.name%3D${pod.metadata.name}`);
      return new Map(events.items.filter((e) => e.reason === 'Unhealthy' && e.message.includes('Liveness probe failed') &&
        e.message.includes('Vault refuses the agent\'s token')).map((e) => [e.metadata.name, e.count ?? 1]));
    };
    try {
      const earlier = await failures();
      const token = await deployed.agentToken(pod);
      registerSecret('agent token', token);
      const revoked = await cliAs(vault.node, token, ['token', 'revoke', '-self']);
      expect(revoked.code, revoked.stderr).to.equal(0);
      const at = Date.now();
      expect((await run()).code, 'a revoked token').to.equal(1);
      // The kubelet's own probe: a new failure within one period + its timeout + 1 s.
      const bound = (probe.periodSeconds + probe.timeoutSeconds + 1) * 1000;
      await until('the kubelet\'s liveness probe failure', bound, async () =>
        ([...(await failures())].some(([name, count]) => count > (earlier.get(name) ?? 0)) ? true : undefined));
      outcomes.push(`failures before the revocation ${[...earlier.values()].reduce((a, b) => a + b, 0)}`);
      outcomes.push(`kubelet failure ${Date.now() - at} ms after the revocation`);
    } finally {
      const reopened = await deployed.configureAuth();
      expect(reopened.code, reopened.stderr).to.equal(0);
    }
    const url = await deployed.podUrl(pod);
    const ready = () => until('200 again', 60_000, async () => ((await fetch(`${url}/readyz`)).status === 200 ? true : undefined));
    await ready();
    // Vault unreachable: the probe passes (the token may expire meanwhile: the agent logs in again after).
    const silent = createServer(() => undefined);
    await new Promise<void>((resolve) => { silent.listen(0, '127.0.0.1', resolve); });
    try {
      await deployed.routeVault(null);
      const refused = await run();
      await deployed.routeVault({ host: '127.0.0.1', port: (silent.address() as { port: number }).port });
      const hanging = await run();
      outcomes.push(`refused ${refused.ms} ms`, `never answers ${hanging.ms} ms`);
      expect([refused.code, hanging.code], 'Vault refusing connections, then never answering').to.deep.equal([0, 0]);
      // Within the kubelet's timeout, which would count as a failure (kubectl exec's own start included).
      expect(hanging.ms, 'the probe on a silent Vault').to.be.below(probe.timeoutSeconds * 1000);
    } finally {
      await deployed.routeVault();
      silent.close();
    }
    await ready();
    console.log(`      probe: ${outcomes.join('; ')}`);
  });
}

/**
 * Item 7: every replica's agent failing its reads past its retries at once (a secret deleted in
 * Vault: every agent reads it). The agents restart their template runner in-process
 * (agent-config/kubernetes.hcl), their containers stay Running, and the pods stay in the
 * Service, their readiness the apps' /readyz: a steady client through the Service's name sees
 * no error, and its EndpointSlices list both pods ready all along.
 */
export function agentRestartReadinessTest(context: Context): void {
  it('keeps every pod in the Service, 0 errors through its name, while every agent\'s reads fail past its retries: the agents restart in-process', async function () {
    this.timeout(120_000);
    const deployed = context.deployed();
    const { cluster, vault } = deployed;
    const d = vault.durations;
    const path = 'secret/data/saas-project/prod/api-keys';
    const pods = await deployed.runningPods();
    expect(pods).to.have.length(2);
    const agentLog = (pod: Pod) => cluster.kube(['logs', '-n', namespace, pod.metadata.name, '-c', 'vault-agent']).catch(() => '');
    const runnerRestarts = async (pod: Pod) => (await agentLog(pod)).split('template server restart').length - 1;
    const earlier = await Promise.all(pods.map(runnerRestarts));
    // Both pods Ready as the kubelet sees them (an earlier test restarted an agent): the client
    // starts with both endpoints.
    await until('both pods ready', 30_000, async () => {
      const now = await deployed.runningPods();
      return now.filter((p) => p.status.conditions?.some((c) => c.type === 'Ready' && c.status === 'True')).length === 2 ? true : undefined;
    });
    const version = (await deployed.podStatus(pods[0] as Pod)).secrets.paths.find((p) => p.path === path)?.version ?? 0;
    const client = await startServiceClient(cluster, '/api/projects', context.session());
    const endpoints = watchReadyEndpoints(cluster);
    const at = Date.now();
    const seen: number[] = [];
    let outcomes: ServiceRequest[];
    let fewestReady: number;
    try {
      const deleted = await cliAs(vault.node, vault.harnessToken, ['kv', 'delete', '-mount=secret', 'saas-project/prod/api-keys']);
      expect(deleted.code, deleted.stderr).to.equal(0);
      // Each agent reads it again at its next render, retries for env/prod.hcl's budget, and
      // then, where compose's agent exits 1, starts its template runner again.
      const bound = d.renderInterval + retryBudgetMs(d, vault.counts) + 1000;
      seen.push(...await Promise.all(pods.map((pod, i) => until(`${pod.metadata.name}'s agent restarting its templates`, bound + 5000, async () =>
        (await runnerRestarts(pod) > (earlier[i] ?? 0) ? Date.now() - at : undefined)))));
      for (const ms of seen) expect(ms, `in-process restarts ${seen.join(', ')} ms after the deletion`).to.be.at.most(bound);
      // A container that had exited would take its pod out for about a second (the kubelet's
      // first restart is immediate): the client runs on for that second and one more.
      await sleep(2000);
    } finally {
      const key = `restored-${Date.now()}-webhook-signing-key-0123456789`;
      registerSecret('restored webhook key', key);
      const restored = await cliAs(vault.node, vault.harnessToken, ['kv', 'put', '-mount=secret', 'saas-project/prod/api-keys', `webhook_signing_key=${key}`]);
      // Stopped whatever happened: a client left running would keep the test process alive.
      outcomes = await client.stop();
      fewestReady = await endpoints.stop();
      expect(restored.code, restored.stderr).to.equal(0);
    }
    const now = await deployed.runningPods();
    expect(now.map((p) => p.metadata.uid).sort(), 'the same pods').to.deep.equal(pods.map((p) => p.metadata.uid).sort());
    for (const pod of now) {
      const was = pods.find((p) => p.metadata.uid === pod.metadata.uid) as Pod;
      expect([restartsOf(pod, 'vault-agent'), restartsOf(pod, 'app')], `${pod.metadata.name}: agent and app restarts`)
        .to.deep.equal([restartsOf(was, 'vault-agent'), restartsOf(was, 'app')]);
    }
    // Through the Service one pod would do: the EndpointSlices say that both stayed in.
    expect(fewestReady, 'ready endpoints at every read of the EndpointSlices').to.equal(2);
    expect(outcomes.length).to.be.greaterThan(20);
    expect(outcomes.filter((o) => o.status !== 200).map((o) => `${new Date(o.at).toISOString()} ${o.status} ${o.error ?? ''}`)).to.deep.equal([]);
    // Restored, the secret reaches every pod again by the agents' own retries.
    await Promise.all(now.map((pod) => until(`${pod.metadata.name} rendering ${path} again`, d.renderInterval + retryBudgetMs(d, vault.counts) + 30_000,
      async () => (((await deployed.podStatus(pod)).secrets.paths.find((p) => p.path === path)?.version ?? 0) > version ? true : undefined))));
    console.log(`      ${outcomes.length} requests, 0 errors; in-process restarts ${seen.join(', ')} ms after the deletion`);
  });
}

/** Item 4: a deleted pod's stop hook revokes its agent's token, and with it the database lease. */
export function deletedPodRevocationTest(context: Context): void {
  it('revokes a deleted pod\'s agent token and database lease within its grace period: Vault, PostgreSQL and the audit log agree', async function () {
    this.timeout(120_000);
    const { deployed, cluster, vault, pod, admitted } = await firstPod(context);
    const token = await deployed.agentToken(pod);
    registerSecret('agent token', token);
    const { leaseId, username } = await renderedDatabase(deployed, pod);
    // Valid before: the token, the lease, the user.
    expect((await cliAs(vault.node, token, ['token', 'lookup'])).code, 'the token before').to.equal(0);
    const lease = await lookupLease(vault, leaseId);
    if (!lease.valid) throw new Error(`the pod's lease before the deletion: ${lease.reason}`);
    expect((await databaseUsers(deployed)).roles).to.include(username);
    const tokenHash = await auditHash(vault, token);
    const offset = await auditOffset(vault);
    const deletedAt = Date.now();
    await cluster.kube(['delete', 'pod', '-n', namespace, pod.metadata.name, '--wait=true', '--timeout=90s']);
    const goneAt = Date.now();
    // Vault: neither the token nor the lease; PostgreSQL: neither the user nor a session of it.
    const lookup = await cliAs(vault.node, token, ['token', 'lookup']);
    expect(lookup.code, 'the token after').to.not.equal(0);
    expect(lookup.stderr).to.match(/permission denied|bad token/);
    const after = await lookupLease(vault, leaseId);
    expect(after.valid, 'the lease after').to.equal(false);
    const users = await databaseUsers(deployed);
    expect(users.roles, 'pg_roles').to.not.include(username);
    expect(users.sessions, 'pg_stat_activity').to.not.include(username);
    // The audit log: the pod's own revoke-self, within the grace period, before the lease's end.
    const revoked = revokedSelf(await auditEntriesSince(vault, offset), tokenHash);
    expect(revoked, 'a revoke-self by the pod\'s token in the audit log').to.not.equal(undefined);
    const at = Date.parse(revoked?.time ?? '');
    // Not before the app has drained (it serves for DRAIN_DELAY_MS after SIGTERM, with these credentials), within the grace period.
    const drain = Number(admitted.spec.containers.find((c) => c.name === 'app')?.env.find((e) => e.name === 'DRAIN_DELAY_MS')?.value);
    expect(at - deletedAt, 'revoked after the app\'s drain, within the grace period').to.be.within(drain, admitted.spec.terminationGracePeriodSeconds * 1000);
    expect(at, 'before the lease would have ended').to.be.below(lease.expireTime);
    console.log(`      revoked ${at - deletedAt} ms after the deletion (the pod gone after ${goneAt - deletedAt} ms); the lease had ${lease.expireTime - at} ms left`);
    await until('the replacement pod', 60_000, async () => {
      const now = await deployed.runningPods();
      return now.length === 2 && now.every((p) => p.status.conditions?.some((c) => c.type === 'Ready' && c.status === 'True')) ? true : undefined;
    });
  });
}
