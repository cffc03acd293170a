import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { processesIn } from '../../../scripts/kubernetes/netns.js';
import { ensureServerInstalled, repoRoot } from '../support/bao.js';
import { cliAs, runScript } from '../support/bao-server.js';
import { startTestCluster, type TestCluster } from '../support/kubernetes.js';
import { recordOutput, registerSecret } from '../support/leak-scan.js';
import { scaledAgentFile, startScaledVault, type ScaledVault } from '../support/scaled-production.js';
import { asDuration } from '../support/shipped-durations.js';
import { tempDir } from '../support/temp-dirs.js';

/**
 * deploy/kubernetes/overlays/native-sidecar on a real one-node cluster (npm run k8s:start's),
 * against a production bao (Raft, TLS, initialised, first-bootstrap.sh, the database engine
 * on a real PostgreSQL) configured by scripts/kubernetes-auth.sh: the agent logs in with the
 * pod's service account token, which Vault checks with a real TokenReview.
 *
 * What the test changes in the shipped manifests, in an overlay of its own: the images (the
 * project's stand-ins), 2 replicas, host aliases sending vault.vault.svc and postgres.saas.svc
 * to the node (where the host's bao and PostgreSQL are exposed, at 8200 and 5432), and every
 * Vault duration divided by one factor, 30 as in the soak test, whose comment says why not 60
 * (env/prod.hcl's and kubernetes.hcl's backoff and render interval, the role's TTLs, the lease
 * TTLs, the service's check interval). The pod's own timings (readiness period, DRAIN_DELAY_MS,
 * grace period) are Kubernetes' whole seconds and stay as shipped.
 */
const factor = 30;
const namespace = 'saas';

interface Pod {
  metadata: { name: string; uid: string; deletionTimestamp?: string };
  status: {
    podIP?: string; phase: string;
    conditions?: { type: string; status: string }[];
    containerStatuses?: { name: string; ready: boolean; restartCount?: number; state: Record<string, unknown> }[];
    initContainerStatuses?: { name: string; started?: boolean; restartCount?: number; state: Record<string, unknown> }[];
  };
}
interface EndpointSlice { endpoints?: { addresses: string[]; conditions: { ready?: boolean } }[] }
interface Status {
  secrets: { paths: { path: string; version: number | null }[] };
  lease: { path: string } | null;
  agent: { state: 'on_time' | 'overdue' | 'unknown' } | null;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function until<T>(what: string, ms: number, check: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + ms;
  let last = '';
  while (Date.now() < deadline) {
    try {
      const found = await check();
      if (found !== undefined) return found;
    } catch (error) { last = error instanceof Error ? error.message : String(error); }
    await sleep(100);
  }
  throw new Error(`${what} within ${ms} ms${last === '' ? '' : ` (last: ${last})`}`);
}

describe('Kubernetes: the agent as a native sidecar, with kubernetes auth, on a real kubelet', function () {
  this.timeout(120_000);
  let cluster: TestCluster;
  let vault: ScaledVault;
  let overlay: string;
  let cookie = '';

  const pods = async (): Promise<Pod[]> =>
    (await cluster.api<{ items: Pod[] }>(`/api/v1/namespaces/${namespace}/pods?labelSelector=app%3Dsaas-app`)).items;
  const runningPods = async () => (await pods()).filter((p) => p.metadata.deletionTimestamp === undefined && p.status.podIP !== undefined);
  /** A pod's port 3000 (or 3001, the operator's) at a loopback port of the host. */
  const podUrl = async (pod: Pod, port = 3000) => `http://127.0.0.1:${(await cluster.forward(`${pod.status.podIP ?? ''}:${port}`)).port}`;
  const podStatus = async (pod: Pod): Promise<Status> => (await (await fetch(`${await podUrl(pod, 3001)}/status`)).json()) as Status;
  const agentToken = (pod: Pod) => cluster.kube(['exec', '-n', namespace, pod.metadata.name, '-c', 'vault-agent', '--', 'cat', '/vault/secrets/token']);

  before(async function () {
    // Cold, the first run builds Kubernetes (about 14 minutes on 2 cores), printing its progress.
    this.timeout(30 * 60_000);
    await ensureServerInstalled();
    // Both, even when one fails: the after hook stops whichever started.
    const [startedCluster, startedVault] = await Promise.allSettled([startTestCluster(), startScaledVault(factor, ['vault.vault.svc'])]);
    if (startedCluster.status === 'fulfilled') cluster = startedCluster.value;
    if (startedVault.status === 'fulfilled') vault = startedVault.value;
    for (const outcome of [startedCluster, startedVault]) if (outcome.status === 'rejected') throw outcome.reason;
    const d = vault.durations;
    await cluster.expose(8200, { host: '127.0.0.1', port: Number(new URL(vault.node.addr).port) });
    await cluster.expose(5432, { host: '127.0.0.1', port: vault.pg.layout.port });

    // The operator's steps, as the README gives them: the namespace, Vault's CA, the reviewer.
    await cluster.kube(['create', 'namespace', namespace]);
    await cluster.kube(['create', 'secret', 'generic', 'vault-ca', '-n', namespace, `--from-file=ca.crt=${vault.tls.ca}`]);
    await cluster.kube(['apply', '-k', join(repoRoot, 'deploy/kubernetes/token-reviewer')]);
    const reviewer = await until('the reviewer token', 30_000, async () => {
      const encoded = await cluster.kube(['get', 'secret', '-n', 'vault', 'vault-token-reviewer', '-o', 'jsonpath={.data.token}']);
      return encoded === '' ? undefined : Buffer.from(encoded, 'base64').toString();
    });
    registerSecret('token reviewer jwt', reviewer);
    const work = await tempDir('kubernetes');
    await writeFile(join(work, 'reviewer.jwt'), reviewer, { mode: 0o600 });
    const configured = await runScript('scripts/kubernetes-auth.sh', ['prod'], vault.node.cliEnv({
      VAULT_TOKEN: vault.harnessToken, KUBERNETES_HOST: cluster.apiServerUrl, KUBERNETES_CA_FILE: cluster.caFile,
      TOKEN_REVIEWER_JWT_FILE: join(work, 'reviewer.jwt'),
      ROLE_TOKEN_TTL: asDuration(d.tokenTtl), ROLE_TOKEN_MAX_TTL: asDuration(d.tokenMaxTtl),
    }));
    expect(configured.code, configured.stderr).to.equal(0);

    // The shipped overlay, with only what a test cluster needs changed (see the comment above).
    overlay = join(work, 'overlay');
    await mkdir(overlay);
    await writeFile(join(overlay, 'prod.hcl'), await scaledAgentFile('env/prod.hcl', d, ['min_backoff', 'max_backoff', 'static_secret_render_interval']));
    await writeFile(join(overlay, 'kubernetes.hcl'), await scaledAgentFile('kubernetes.hcl', d, ['min_backoff', 'max_backoff']));
    const [vaultImage = '', vaultTag = ''] = cluster.images.vault.split(':');
    const [appImage = '', appTag = ''] = cluster.images.app.split(':');
    await writeFile(join(overlay, 'kustomization.yaml'), JSON.stringify({
      apiVersion: 'kustomize.config.k8s.io/v1beta1', kind: 'Kustomization',
      // kustomize takes a base's path relative to the kustomization only.
      resources: [relative(overlay, join(repoRoot, 'deploy/kubernetes/overlays/native-sidecar'))],
      images: [
        { name: 'hashicorp/vault', newName: vaultImage, newTag: vaultTag },
        { name: 'registry.example.com/saas-app', newName: appImage, newTag: appTag },
      ],
      configMapGenerator: [{ name: 'saas-vault-agent', namespace, behavior: 'merge', files: ['prod.hcl', 'kubernetes.hcl'] }],
      patches: [{ patch: JSON.stringify({
        apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'saas-app', namespace },
        spec: { replicas: 2, template: { spec: {
          hostAliases: [{ ip: '10.250.0.2', hostnames: ['vault.vault.svc', 'postgres.saas.svc'] }],
          containers: [{ name: 'app', env: [{ name: 'TOKEN_CHECK_MAX_INTERVAL_MS', value: String(d.checkInterval) }] }],
        } } },
      }) }],
    }));
    await cluster.kube(['apply', '-f', '-'], await cluster.kube(['kustomize', '--load-restrictor', 'LoadRestrictionsNone', overlay]));
    await cluster.kube(['rollout', 'status', '-n', namespace, 'deployment/saas-app', '--timeout=180s']);
  });

  after(async function () {
    this.timeout(120_000);
    // Undefined when the before hook failed early.
    const started = cluster as TestCluster | undefined;
    if (started !== undefined) {
      for (const pod of await pods().catch(() => [])) {
        for (const container of ['app', 'vault-agent']) {
          const log = await started.kube(['logs', '-n', namespace, pod.metadata.name, '-c', container]).catch(() => '');
          recordOutput(`${pod.metadata.name}/${container} log`, log);
        }
      }
      await started.stop();
    }
    await (vault as ScaledVault | undefined)?.stop();
  });

  it('admits both overlays as shipped (injector and native sidecar) in a server-side dry run', async function () {
    for (const variant of ['injector', 'native-sidecar']) {
      const rendered = await cluster.kube(['kustomize', '--load-restrictor', 'LoadRestrictionsNone', join(repoRoot, 'deploy/kubernetes/overlays', variant)]);
      // The API server's own validation and admission, nothing stored: every object is named.
      const admitted = await cluster.kube(['apply', '--dry-run=server', '-f', '-'], rendered);
      const kinds = variant === 'injector'
        ? ['serviceaccount/saas-app', 'service/saas-app', 'deployment.apps/saas-app', 'poddisruptionbudget.policy/saas-app']
        : ['serviceaccount/saas-app', 'configmap/saas-vault-agent-', 'service/saas-app', 'deployment.apps/saas-app', 'poddisruptionbudget.policy/saas-app'];
      for (const kind of kinds) expect(admitted, variant).to.match(new RegExp(`^${kind.replace('.', '\\.')}\\S* (created|configured|unchanged) \\(server dry run\\)$`, 'm'));
    }
    // A field the schemas do not know is refused, not dropped: the dry run checks for real.
    const broken = (await cluster.kube(['kustomize', join(repoRoot, 'deploy/kubernetes/overlays/injector')]))
      .replace('readinessProbe:', 'readinesProbe:');
    const refused = await cluster.kube(['apply', '--dry-run=server', '--validate=strict', '-f', '-'], broken).then(() => '', (error: unknown) => (error instanceof Error ? error.message : String(error)));
    expect(refused).to.match(/unknown field "spec\.template\.spec\.containers\[0\]\.readinesProbe"/);
  });

  it('becomes ready from the manifests as shipped: the agent sidecar first, then the app, 2 of 2', async function () {
    const ready = await runningPods();
    expect(ready).to.have.length(2);
    for (const pod of ready) {
      expect(pod.status.conditions?.find((c) => c.type === 'Ready')?.status, pod.metadata.name).to.equal('True');
      const agent = pod.status.initContainerStatuses?.find((c) => c.name === 'vault-agent');
      // A native sidecar: an init container still running beside the app.
      expect(agent?.started, 'vault-agent started').to.equal(true);
      expect(Object.keys(agent?.state ?? {})).to.deep.equal(['running']);
      expect((await fetch(`${await podUrl(pod)}/readyz`)).status).to.equal(200);
    }
  });

  it('serves a tenant round trip as a database user Vault issued to this pod', async function () {
    const [pod] = await runningPods();
    if (pod === undefined) throw new Error('no pod');
    const url = await podUrl(pod);
    const signIn = await fetch(`${url}/api/session`, {
      method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ tenant: 'acme' }),
    });
    expect(signIn.ok, `sign-in answered ${signIn.status}`).to.equal(true);
    cookie = signIn.headers.getSetCookie().map((c) => c.split(';')[0]).join('; ');
    const created = await fetch(`${url}/api/projects`, {
      method: 'POST', headers: { 'Content-Type': 'application/json', Cookie: cookie }, body: JSON.stringify({ name: 'kube' }),
    });
    expect(created.status).to.equal(201);
    const listed = (await (await fetch(`${url}/api/projects`, { headers: { Cookie: cookie } })).json()) as { projects: { name: string }[] };
    expect(listed.projects.map((p) => p.name)).to.include('kube');
    expect((await podStatus(pod)).lease?.path).to.equal('database/creds/saas-app-prod');
    const users = await vault.pg.query("SELECT DISTINCT usename FROM pg_stat_activity WHERE datname = 'saas' AND usename LIKE 'v-%'");
    // Vault's PostgreSQL plugin names its users v-<display name, 8 characters>-<role, 8>-...:
    // the token that read them came from the kubernetes auth method (display name kubernetes-...).
    expect(users.split('\n').some((u) => u.startsWith('v-kubernet-saas-app-')), users).to.equal(true);
  });

  it('takes a KV rotation to the pod within the render interval + 1 s', async function () {
    const [pod] = await runningPods();
    if (pod === undefined) throw new Error('no pod');
    const path = 'secret/data/saas-project/prod/api-keys';
    const before = (await podStatus(pod)).secrets.paths.find((p) => p.path === path)?.version ?? 0;
    const key = `rotated-${Date.now()}-webhook-signing-key-0123456789`;
    registerSecret('rotated webhook key', key);
    const written = await cliAs(vault.node, vault.harnessToken, ['kv', 'put', '-mount=secret', 'saas-project/prod/api-keys', `webhook_signing_key=${key}`]);
    expect(written.code, written.stderr).to.equal(0);
    const at = Date.now();
    const bound = vault.durations.renderInterval + 1000;
    await until(`version ${before + 1} of ${path} in the pod`, bound + 5000, async () =>
      ((await podStatus(pod)).secrets.paths.find((p) => p.path === path)?.version ?? 0) > before ? true : undefined);
    expect(Date.now() - at, `rendered and loaded after ${Date.now() - at} ms`).to.be.at.most(bound);
  });

  it('answers 503 within the check interval + 1 s once the agent\'s token is revoked, then recovers', async function () {
    const [pod] = await runningPods();
    if (pod === undefined) throw new Error('no pod');
    const url = await podUrl(pod);
    const token = await agentToken(pod);
    registerSecret('agent token', token);
    const revoked = await cliAs(vault.node, token, ['token', 'revoke', '-self']);
    expect(revoked.code, revoked.stderr).to.equal(0);
    const at = Date.now();
    const bound = vault.durations.checkInterval + 1000;
    await until('a 503', bound + 5000, async () => ((await fetch(`${url}/readyz`)).status === 503 ? true : undefined));
    const halted = Date.now() - at;
    // The app halts everything, not only /readyz.
    expect((await fetch(`${url}/api/projects`, { headers: { Cookie: cookie } })).status).to.equal(503);
    expect(halted, `halted after ${halted} ms`).to.be.at.most(bound);
    // The agent logs in again with the pod's token (its backoff is at most max_backoff).
    await until('200 again', vault.durations.maxBackoff + 30_000, async () => ((await fetch(`${url}/readyz`)).status === 200 ? true : undefined));
    expect(await agentToken(pod)).to.not.equal(token);
  });

  it('a crashed agent sidecar is started again by the kubelet, logs in with the pod\'s token, and the app sees it on time', async function () {
    const [pod] = await runningPods();
    if (pod === undefined) throw new Error('no pod');
    const restarts = async () => (await cluster.api<Pod>(`/api/v1/namespaces/${namespace}/pods/${pod.metadata.name}`))
      .status.initContainerStatuses?.find((c) => c.name === 'vault-agent')?.restartCount ?? 0;
    const before = await restarts();
    const token = await agentToken(pod);
    registerSecret('agent token', token);
    // SIGQUIT: the Go runtime dumps its stacks and exits 2, a crash (PID 1 of its container ignores SIGKILL sent from inside).
    await cluster.kube(['exec', '-n', namespace, pod.metadata.name, '-c', 'vault-agent', '--', 'sh', '-c', 'kill -QUIT 1']).catch(() => '');
    // The kubelet's restart (its back-off starts at 10 s), the agent's login, its first render.
    await until('the sidecar restarted', 60_000, async () => (await restarts() > before ? true : undefined));
    const fresh = await until('a new token in the sink', vault.durations.maxBackoff + 30_000, async () => {
      const now = await agentToken(pod).catch(() => token);
      return now !== token && now !== '' ? now : undefined;
    });
    registerSecret('agent token', fresh);
    // The app's sink watch and one lookup, + 1 s: on time, with no step by hand.
    await until('the agent on time in /status', 25 + 1000 + 1000, async () => ((await podStatus(pod)).agent?.state === 'on_time' ? true : undefined));
    expect((await fetch(`${await podUrl(pod)}/readyz`)).status).to.equal(200);
  });

  it('kill-switch.sh locks the kubernetes role: both replicas halt, stay halted through two login backoffs, and --reopen brings the same pods back', async function () {
    const d = vault.durations;
    const before = await runningPods();
    expect(before).to.have.length(2);
    const restarts = (pod: Pod, container: string) =>
      [...pod.status.containerStatuses ?? [], ...pod.status.initContainerStatuses ?? []].find((c) => c.name === container)?.restartCount ?? 0;
    const urls = await Promise.all(before.map((pod) => podUrl(pod)));
    const kill = (args: string[]) => runScript('scripts/prod/kill-switch.sh', args, vault.node.cliEnv({ VAULT_TOKEN: vault.adminToken }));
    // The admin may set the role's bound names to the lock or to the manifests' account only.
    for (const names of ['*', 'saas-app,default', 'other']) {
      const widened = await cliAs(vault.node, vault.adminToken, ['write', 'auth/kubernetes/role/saas-app-prod', `bound_service_account_names=${names}`]);
      expect(widened.code, names).to.not.equal(0);
      expect(widened.stderr, names).to.contain('permission denied');
    }

    const killed = await kill(['prod']);
    const at = Date.now();
    let open = false;
    try {
      expect(killed.code, killed.stderr).to.equal(0);
      expect(killed.stdout).to.contain("locked auth/kubernetes/role/saas-app-prod (bound_service_account_names kill-switch:locked; was 'saas-app'");
      expect(killed.stdout).to.contain('locked auth/approle/role/saas-app-prod');
      expect(killed.stdout).to.match(/revoked [1-9]\d* token\(s\) with the policy saas-app-prod/);
      const haltBound = d.checkInterval + 1000;
      const halted = await Promise.all(urls.map(async (url) => {
        await until(`a 503 from ${url}`, haltBound + 5000, async () => ((await fetch(`${url}/readyz`)).status === 503 ? true : undefined));
        return Date.now() - at;
      }));
      for (const ms of halted) expect(ms, `halted after ${halted.join(' and ')} ms`).to.be.at.most(haltBound);

      // Each agent finds its token gone at its next renewal or render and logs in again with its
      // pod's token, which the cluster vouches for and the locked role refuses. Then two login
      // backoffs, every answer a 503, each agent trying again (or restarted by the kubelet).
      const state = async (pod: Pod) => {
        const now = await cluster.api<Pod>(`/api/v1/namespaces/${namespace}/pods/${pod.metadata.name}`);
        const log = await cluster.kube(['logs', '-n', namespace, pod.metadata.name, '-c', 'vault-agent']).catch(() => '');
        return { refused: log.split('service account name not authorized').length - 1, restarts: restarts(now, 'vault-agent') };
      };
      const first = await Promise.all(before.map((pod) => until(`${pod.metadata.name}'s agent refused`, d.tokenTtl + d.maxBackoff + 30_000,
        async () => { const seen = await state(pod); return seen.refused > 0 ? seen : undefined; })));
      const answers: number[] = [];
      for (const end = Date.now() + 2 * d.maxBackoff; Date.now() < end;) {
        answers.push(...await Promise.all(urls.map(async (url) => (await fetch(`${url}/readyz`)).status)));
        await sleep(100);
      }
      expect(answers.filter((status) => status !== 503), 'every /readyz answer during the lock').to.deep.equal([]);
      const later = await Promise.all(before.map(state));
      later.forEach((seen, i) => {
        const was = first[i] ?? { refused: 0, restarts: 0 };
        expect(seen.refused > was.refused || seen.restarts > was.restarts, `${before[i]?.metadata.name ?? ''}'s agent kept trying`).to.equal(true);
      });
      const reopened = await kill(['--reopen', 'prod']);
      open = true;
      const reopenedAt = Date.now();
      expect(reopened.code, reopened.stderr).to.equal(0);
      expect(reopened.stdout).to.contain("restored bound_service_account_names of auth/kubernetes/role/saas-app-prod to 'saas-app'");
      // The agent's next login (at most max_backoff away), its render, the app's check, + 1 s.
      const readyBound = d.checkInterval + d.maxBackoff + 1000;
      const ready = await Promise.all(urls.map(async (url) => {
        await until(`a 200 from ${url}`, readyBound + 30_000, async () => ((await fetch(`${url}/readyz`)).status === 200 ? true : undefined));
        return Date.now() - reopenedAt;
      }));
      const after = await runningPods();
      expect(after.map((pod) => pod.metadata.uid).sort(), 'the same pods').to.deep.equal(before.map((pod) => pod.metadata.uid).sort());
      for (const pod of after) {
        const was = before.find((p) => p.metadata.uid === pod.metadata.uid);
        expect(restarts(pod, 'app'), 'the same app container').to.equal(was === undefined ? -1 : restarts(was, 'app'));
        console.log(`      ${pod.metadata.name}: agent restarts ${was === undefined ? '?' : restarts(was, 'vault-agent')} -> ${restarts(pod, 'vault-agent')}; halted ${halted.join(', ')} ms; ready ${ready.join(', ')} ms after the reopen`);
      }
      for (const ms of ready) expect(ms, `ready ${ready.join(' and ')} ms after the reopen`).to.be.at.most(readyBound);
    } finally {
      // A failure above leaves the role reopened for the tests after this one.
      if (!open) await kill(['--reopen', 'prod']);
    }
  });

  it('drains the app before the agent stops when a pod is deleted', async function () {
    const [pod] = await runningPods();
    if (pod === undefined) throw new Error('no pod');
    const url = await podUrl(pod);
    const name = pod.metadata.name;
    // Each container's log, followed, with the runtime's own timestamps (nanoseconds).
    const follow = (container: string) => new Promise<string>((resolve) => {
      const child = spawn(cluster.kubectl, ['--kubeconfig', cluster.kubeconfig, 'logs', '-f', '--timestamps', '--since=1s', '-n', namespace, name, '-c', container]);
      let out = '';
      child.stdout.on('data', (chunk: Buffer) => { out += chunk.toString(); });
      child.on('close', () => { resolve(out); });
    });
    const appLog = follow('app');
    const agentLog = follow('vault-agent');
    await sleep(1000);
    await cluster.kube(['delete', 'pod', '-n', namespace, name, '--wait=false']);
    // Draining: not ready, still serving, its agent still running.
    await until('/readyz 503 (draining)', 5000, async () => ((await fetch(`${url}/readyz`)).status === 503 ? true : undefined));
    expect((await fetch(`${url}/api/projects`, { headers: { Cookie: cookie } })).status).to.equal(200);
    const during = await cluster.api<Pod>(`/api/v1/namespaces/${namespace}/pods/${name}`);
    expect(Object.keys(during.status.initContainerStatuses?.find((c) => c.name === 'vault-agent')?.state ?? {})).to.deep.equal(['running']);
    const [app, agent] = await Promise.all([appLog, agentLog]);
    recordOutput(`${name} app log (deletion)`, app);
    recordOutput(`${name} agent log (deletion)`, agent);
    const stamp = (line: string) => Date.parse(line.slice(0, line.indexOf(' ')));
    const appLines = app.split('\n').filter((l) => l !== '');
    const stopped = appLines.at(-1) ?? '';
    expect(appLines.some((l) => l.includes('draining')), app).to.equal(true);
    expect(stopped, 'the app\'s last line').to.contain('stopped');
    const agentShutdown = agent.split('\n').find((l) => /shutdown triggered/i.test(l));
    expect(agentShutdown, agent).to.not.equal(undefined);
    expect(stamp(agentShutdown ?? ''), 'the agent is told to stop after the app has stopped').to.be.at.least(stamp(stopped));
    await until('the replacement pod', 60_000, async () => {
      const now = await runningPods();
      return now.length === 2 && now.every((p) => p.status.conditions?.some((c) => c.type === 'Ready' && c.status === 'True')) ? true : undefined;
    });
  });

  it('answers no error through a steady client during a rolling restart of 2 replicas', async function () {
    this.timeout(240_000);
    // The client follows the Service's EndpointSlices as kube-proxy does (no kube-proxy runs
    // here): ready endpoints only, refreshed every 200 ms, requests spread across them.
    let ready: string[] = [];
    const refresh = async () => {
      const slices = await cluster.api<{ items: EndpointSlice[] }>(
        `/apis/discovery.k8s.io/v1/namespaces/${namespace}/endpointslices?labelSelector=kubernetes.io%2Fservice-name%3Dsaas-app`);
      ready = slices.items.flatMap((s) => s.endpoints ?? []).filter((e) => e.conditions.ready === true).flatMap((e) => e.addresses);
    };
    await refresh();
    const outcomes: { ip: string; status: number; error?: string }[] = [];
    const load = { running: true };
    const refresher = (async () => { while (load.running) { await refresh().catch(() => undefined); await sleep(200); } })();
    const client = (async () => {
      for (let i = 0; load.running; i++) {
        const ip = ready[i % ready.length];
        if (ip !== undefined) {
          const port = (await cluster.forward(`${ip}:3000`)).port;
          try {
            const answer = await fetch(`http://127.0.0.1:${port}/api/projects`, { headers: { Cookie: cookie }, signal: AbortSignal.timeout(5000) });
            outcomes.push({ ip, status: answer.status });
            await answer.arrayBuffer();
          } catch (error) {
            outcomes.push({ ip, status: 0, error: String((error as Error).cause ?? error) });
          }
        }
        await sleep(50);
      }
    })();
    const before = new Set((await runningPods()).map((p) => p.metadata.name));
    await cluster.kube(['rollout', 'restart', '-n', namespace, 'deployment/saas-app']);
    await cluster.kube(['rollout', 'status', '-n', namespace, 'deployment/saas-app', '--timeout=200s']);
    await sleep(1000);
    load.running = false;
    await Promise.all([refresher, client]);
    const after = new Set((await runningPods()).map((p) => p.metadata.name));
    expect([...after].filter((n) => before.has(n)), 'every pod replaced').to.deep.equal([]);
    expect(new Set(outcomes.map((o) => o.ip)).size, 'requests reached old and new pods').to.be.at.least(3);
    // The client ran through the whole restart: its requests are not a handful.
    expect(outcomes.length).to.be.greaterThan(20);
    expect(outcomes.filter((o) => o.status !== 200).map((o) => `${o.ip} ${o.status} ${o.error ?? ''}`)).to.deep.equal([]);
  });

  it('refuses, in Vault, a token of another service account or of another namespace', async function () {
    await cluster.kube(['create', 'serviceaccount', 'other', '-n', namespace]);
    await cluster.kube(['create', 'namespace', 'elsewhere']);
    await cluster.kube(['create', 'serviceaccount', 'saas-app', '-n', 'elsewhere']);
    const login = async (ns: string, account: string) => {
      const jwt = (await cluster.kube(['create', 'token', account, '-n', ns])).trim();
      registerSecret(`${ns}/${account} token`, jwt);
      return cliAs(vault.node, '', ['write', 'auth/kubernetes/login', 'role=saas-app-prod', `jwt=${jwt}`]);
    };
    const other = await login(namespace, 'other');
    expect(other.code).to.not.equal(0);
    expect(other.stderr).to.match(/service account name not authorized/);
    const elsewhere = await login('elsewhere', 'saas-app');
    expect(elsewhere.code).to.not.equal(0);
    expect(elsewhere.stderr).to.match(/namespace not authorized/);
    // The same call with the app's own account succeeds: the refusals are about the identity.
    const own = await login(namespace, 'saas-app');
    expect(own.code, own.stderr).to.equal(0);
    expect(own.stdout).to.contain('saas-app-prod');
  });

  it('k8s:stop leaves no process in the cluster\'s namespace and none of its cgroups', async function () {
    const netns = (await readFile(join(cluster.paths.run, 'netns'), 'utf8')).trim();
    const inNamespace = () => processesIn(netns);
    // The pods' containers: each in a network namespace of its own, all under the kubelet's
    // cgroup root (pids.current counts every task below a cgroup; none once it is gone).
    const inPods = async () => Number(await readFile(join('/sys/fs/cgroup/pids', cluster.paths.cgroupRoot, 'kubepods/pids.current'), 'utf8').catch(() => '0'));
    // The kubelet, containerd, its shims and the control plane; the pods' sandboxes and apps.
    expect((await inNamespace()).length).to.be.greaterThan(5);
    expect(await inPods()).to.be.at.least(4);
    const cgroups = () => readdir(join('/sys/fs/cgroup/memory', cluster.paths.cgroupRoot)).then(() => true, () => false);
    expect(await cgroups()).to.equal(true);
    await cluster.stop();
    expect(await inNamespace()).to.deep.equal([]);
    expect(await inPods()).to.equal(0);
    expect(await cgroups()).to.equal(false);
  });
});
