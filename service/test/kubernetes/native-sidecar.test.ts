import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { processesIn } from '../../../scripts/kubernetes/netns.js';
import { repoRoot, vaultServer } from '../support/bao.js';
import { cliAs } from '../support/bao-server.js';
import type { TestCluster } from '../support/kubernetes.js';
import { recordOutput, registerSecret } from '../support/leak-scan.js';
import { deployNativeSidecar, namespace, overTls, sleep, until, type NativeSidecar, type Pod } from '../support/native-sidecar.js';
import { startServiceClient, type ServiceRequest } from '../support/service-client.js';
import { killSwitchTest } from './kill-switch.js';
import { nodeLossTest } from './node-loss.js';
import { agentProbeTest, agentRestartReadinessTest, deletedPodRevocationTest, schemaJobTest, type Context } from './pod-lifecycle.js';
import type { ScaledVault } from '../support/scaled-production.js';

/**
 * deploy/kubernetes/overlays/native-sidecar on a real two-node cluster against a production
 * Vault, as support/native-sidecar.ts deploys it (what it changes in the shipped manifests is
 * said there): npm test runs it against OpenBao and against HashiCorp Vault, the kill switch on
 * this deployment (kill-switch.ts) included.
 */

describe(`Kubernetes: the agent as a native sidecar, with kubernetes auth, on a real kubelet (${vaultServer.name})`, function () {
  this.timeout(120_000);
  let deployed: NativeSidecar;
  let cluster: TestCluster;
  let vault: ScaledVault;
  /** A signed-in user's requests, through the TLS proxy the pods trust (the session cookie is __Host-). */
  let session: Record<string, string> = {};

  const runningPods = () => deployed.runningPods();
  const podUrl = (pod: Pod, port?: number) => deployed.podUrl(pod, port);
  const podStatus = (pod: Pod) => deployed.podStatus(pod);
  const agentToken = (pod: Pod) => deployed.agentToken(pod);
  /** A command's output in one of a pod's containers. */
  const exec = (pod: Pod, container: string, command: string) =>
    cluster.kube(['exec', '-n', namespace, pod.metadata.name, '-c', container, '--', 'sh', '-c', command]);
  /** A JSON Web Token's claims (not verified: the API server issued it to the test). */
  const claims = (jwt: string) => JSON.parse(Buffer.from(jwt.split('.')[1] ?? '', 'base64url').toString()) as { aud: string[]; exp: number; iat: number };
  /** For the tests of pod-lifecycle.ts, added below where they run. */
  const context: Context = { deployed: () => deployed, session: () => session };

  before(async function () {
    // Cold, the first run builds Kubernetes (about 14 minutes on 2 cores), printing its progress.
    this.timeout(30 * 60_000);
    deployed = await deployNativeSidecar();
    ({ cluster, vault } = deployed);
  });

  after(async function () {
    this.timeout(120_000);
    // Undefined when the before hook failed (it stopped what it started).
    await (deployed as NativeSidecar | undefined)?.stop();
  });

  it('admits both overlays as shipped (injector and native sidecar) in a server-side dry run', async function () {
    for (const variant of ['injector', 'native-sidecar']) {
      const rendered = await cluster.kube(['kustomize', '--load-restrictor', 'LoadRestrictionsNone', join(repoRoot, 'deploy/kubernetes/overlays', variant)]);
      // The API server's own validation and admission, nothing stored: every object is named.
      const admitted = await cluster.kube(['apply', '--dry-run=server', '-f', '-'], rendered);
      const policies = ['default-deny', 'saas-app-ingress', 'saas-app-egress'].map((name) => `networkpolicy.networking.k8s.io/${name}`);
      const kinds = variant === 'injector'
        ? ['serviceaccount/saas-app', 'service/saas-app', 'deployment.apps/saas-app', 'poddisruptionbudget.policy/saas-app', ...policies]
        : ['serviceaccount/saas-app', 'configmap/saas-vault-agent-', 'service/saas-app', 'deployment.apps/saas-app', 'poddisruptionbudget.policy/saas-app',
          'job.batch/saas-schema', ...policies, 'networkpolicy.networking.k8s.io/saas-schema-egress'];
      for (const kind of kinds) expect(admitted, variant).to.match(new RegExp(`^${kind.replaceAll('.', '\\.')}\\S* (created|configured|unchanged) \\(server dry run\\)$`, 'm'));
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

  schemaJobTest(context);

  it('stores the overlay\'s NetworkPolicies as shipped (this cluster\'s bridge plugin does not enforce them)', async function () {
    const stored = (await cluster.kube(['get', 'networkpolicy', '-n', namespace, '-o', 'name'])).split('\n').filter((l) => l !== '').sort();
    expect(stored).to.deep.equal(['default-deny', 'saas-app-egress', 'saas-app-ingress', 'saas-schema-egress'].map((name) => `networkpolicy.networking.k8s.io/${name}`));
  });

  it('mounts no service account token in the app container; the agent alone holds one, for the audience vault, 10 minutes', async function () {
    const [pod] = await runningPods();
    if (pod === undefined) throw new Error('no pod');
    // The pod as admitted: the ServiceAccount admission plugin adds a token volume to every
    // container unless automountServiceAccountToken is off.
    interface Admitted { spec: {
      automountServiceAccountToken?: boolean;
      volumes: { name: string; projected?: { sources: { serviceAccountToken?: { audience?: string; expirationSeconds?: number } }[] } }[];
      containers: { name: string; volumeMounts?: { name: string; mountPath: string }[] }[];
      initContainers: { name: string; volumeMounts?: { name: string; mountPath: string }[] }[];
    } }
    const admitted = await cluster.api<Admitted>(`/api/v1/namespaces/${namespace}/pods/${pod.metadata.name}`);
    const tokenVolumes = admitted.spec.volumes.filter((v) => v.projected?.sources.some((source) => source.serviceAccountToken !== undefined));
    expect(tokenVolumes.map((v) => [v.name, v.projected?.sources.map((source) => source.serviceAccountToken).filter((t) => t !== undefined)]))
      .to.deep.equal([['vault-token', [{ audience: 'vault', expirationSeconds: 600, path: 'token' }]]]);
    const mounting = [...admitted.spec.containers, ...admitted.spec.initContainers]
      .filter((c) => c.volumeMounts?.some((m) => tokenVolumes.some((v) => v.name === m.name))).map((c) => c.name);
    expect(mounting, 'the containers that mount a token').to.deep.equal(['vault-agent']);
    // What the app's processes see: no mount under /var/run/secrets, no token file there.
    const mounts = await exec(pod, 'app', 'cat /proc/self/mountinfo');
    expect(mounts.split('\n').filter((l) => /\/run\/secrets|serviceaccount/.test(l)), 'mounts in the app container').to.deep.equal([]);
    expect(await exec(pod, 'app', 'ls -A /var/run/secrets /run/secrets 2>&1 || true')).to.not.match(/token|kubernetes\.io/);
    // The agent's token: audience vault, 600 s, read where kubernetes.hcl's token_path says.
    const jwt = (await exec(pod, 'vault-agent', 'cat /var/run/secrets/vault/token')).trim();
    registerSecret('agent projected token', jwt);
    const agentClaims = claims(jwt);
    expect(agentClaims.aud).to.deep.equal(['vault']);
    expect(agentClaims.exp - agentClaims.iat).to.equal(600);
  });

  it('asks for the bearer token of the Secret saas-admin-token on the operator\'s port, which listens on every address', async function () {
    const [pod] = await runningPods();
    if (pod === undefined) throw new Error('no pod');
    const admin = await podUrl(pod, 3001);
    for (const path of ['/status', '/metrics']) {
      const bare = await fetch(`${admin}${path}`);
      await bare.body?.cancel();
      expect(bare.status, `${path} without the token`).to.equal(401);
      const wrong = await fetch(`${admin}${path}`, { headers: { Authorization: 'Bearer not-the-token' } });
      await wrong.body?.cancel();
      expect(wrong.status, `${path} with another token`).to.equal(401);
      const scraped = await fetch(`${admin}${path}`, { headers: deployed.adminHeaders });
      await scraped.body?.cancel();
      expect(scraped.status, `${path} with the Secret's token`).to.equal(200);
    }
  });

  it('runs each container under the runtime\'s seccomp filter, no new privileges, no capabilities, within its memory limit', async function () {
    const [pod] = await runningPods();
    if (pod === undefined) throw new Error('no pod');
    for (const container of ['app', 'vault-agent']) {
      // PID 1 of the container: Seccomp 2 is a filter (RuntimeDefault; 0 when unconfined).
      const status = await exec(pod, container, 'cat /proc/1/status');
      const field = (name: string) => new RegExp(`^${name}:\\s*(\\S+)`, 'm').exec(status)?.[1];
      expect({ seccomp: field('Seccomp'), noNewPrivs: field('NoNewPrivs'), capEff: field('CapEff'), capBnd: field('CapBnd') }, container)
        .to.deep.equal({ seccomp: '2', noNewPrivs: '1', capEff: '0000000000000000', capBnd: '0000000000000000' });
      expect(Number(field('Uid')), `${container} runs as a user other than root`).to.be.greaterThan(0);
      expect(await exec(pod, container, 'touch /tmp/probe 2>&1 || true'), `${container}'s root filesystem`).to.match(/Read-only file system/);
    }
  });

  it('signs in through the issuer behind the TLS proxy the pods trust, and refuses a sign-in over plain HTTP', async function () {
    const [pod, other] = await runningPods();
    if (pod === undefined || other === undefined) throw new Error('two pods expected');
    const url = await podUrl(pod);
    // Without the proxy's word the request is plain HTTP, which production refuses to set a cookie over.
    const plain = await fetch(`${url}/auth/login`, { redirect: 'manual' });
    expect(plain.status).to.equal(400);
    expect(((await plain.json()) as { error: { code: string } }).error.code).to.equal('tls_required');
    // Through the proxy: to the issuer configured in the pod, with the redirect as shipped.
    const login = await fetch(`${url}/auth/login`, { redirect: 'manual', headers: overTls });
    await login.body?.cancel();
    expect(login.status).to.equal(302);
    const authorize = new URL(login.headers.get('location') ?? '');
    expect(authorize.origin).to.equal(new URL(deployed.identity.issuerUrl).origin);
    expect(authorize.pathname).to.match(/\/identity\/oidc\/provider\/saas-prod\/authorize$/);
    // The pod's OIDC_REDIRECT_URL, as shipped, is the redirect the issuer registered for the client.
    expect(authorize.searchParams.get('redirect_uri')).to.equal(deployed.identity.serviceEnv.OIDC_REDIRECT_URL);
    const signInCookie = login.headers.getSetCookie().find((c) => c.startsWith('__Host-saas_sign_in='));
    expect(signInCookie, 'the sign-in cookie, __Host- over TLS').to.match(/;\s*secure(;|$)/i).and.to.match(/;\s*httponly(;|$)/i);

    const signedIn = await deployed.signIn(pod);
    expect(signedIn.tenant).to.equal('acme');
    const sessionCookie = signedIn.cookies.find((c) => c.name === '__Host-saas_session');
    expect(sessionCookie, signedIn.cookies.map((c) => c.name).join(', ')).to.deep.include({ secure: true, httpOnly: true });
    session = { ...overTls, Cookie: signedIn.cookieHeader };
    // The session lives in PostgreSQL: the other replica knows it too.
    for (const one of [pod, other]) {
      const mine = await fetch(`${await podUrl(one)}/api/session`, { headers: session });
      expect(mine.status, one.metadata.name).to.equal(200);
      expect(await mine.json()).to.deep.equal({ tenant: 'acme' });
    }
    // The same cookie over plain HTTP is not read: the __Host- name belongs to TLS.
    expect((await fetch(`${url}/api/session`, { headers: { Cookie: signedIn.cookieHeader } })).status).to.equal(401);
  });

  it('serves a tenant round trip as a database user Vault issued to this pod', async function () {
    const [pod] = await runningPods();
    if (pod === undefined) throw new Error('no pod');
    const url = await podUrl(pod);
    const created = await fetch(`${url}/api/projects`, {
      method: 'POST', headers: { 'Content-Type': 'application/json', ...session }, body: JSON.stringify({ name: 'kube' }),
    });
    expect(created.status).to.equal(201);
    const listed = (await (await fetch(`${url}/api/projects`, { headers: session })).json()) as { projects: { name: string }[] };
    expect(listed.projects.map((p) => p.name)).to.include('kube');
    expect((await podStatus(pod)).lease?.path).to.equal('database/creds/saas-app-prod');
    const users = await vault.pg.query("SELECT DISTINCT usename FROM pg_stat_activity WHERE datname = 'saas' AND usename LIKE 'v-%'");
    // Vault's PostgreSQL plugin names its users v-<display name, 8 characters>-<role, 8>-...:
    // the token that read them came from the kubernetes auth method (display name kubernetes-...).
    expect(users.split('\n').some((u) => u.startsWith('v-kubernet-saas-app-')), users).to.equal(true);
    // Over TLS (DATABASE_SSL_MODE=verify-full as shipped): every connection of the pods' users.
    const ssl = (await vault.pg.query("SELECT DISTINCT a.usename || ' ' || s.ssl FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) WHERE a.datname = 'saas' AND a.usename LIKE 'v-kubernet-%'"))
      .split('\n').filter((l) => l !== '');
    expect(ssl, 'the pods\' users').to.not.deep.equal([]);
    expect(ssl.filter((l) => !/ (t|true)$/.test(l)), 'the pods\' connections in clear').to.deep.equal([]);
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

  agentProbeTest(context);

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
    expect((await fetch(`${url}/api/projects`, { headers: session })).status).to.equal(503);
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

  agentRestartReadinessTest(context);

  it('stays within the containers\' memory limits after rotations, a revocation and a crash (prints the figures)', async function () {
    const pods = await runningPods();
    const figures: string[] = [];
    const within: { what: string; anon: number; limit: number }[] = [];
    for (const pod of pods) {
      for (const container of ['app', 'vault-agent']) {
        // PID 1 (node, or vault): its peak resident set (VmHWM, the binary's mapped pages
        // included, which the kernel can drop) and its anonymous memory now (RssAnon, which it
        // cannot); the container's cgroup (v1, as these machines run): its limit, its peak with
        // the page cache, its CPU time.
        const status = await exec(pod, container, 'cat /proc/1/status');
        const kb = (name: string) => Number(new RegExp(`^${name}:\\s*(\\d+) kB`, 'm').exec(status)?.[1] ?? Number.NaN) * 1024;
        const [limit = Number.NaN, withCache = Number.NaN, cpu = 0] = (await exec(pod, container,
          'cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/memory/memory.max_usage_in_bytes; cat /sys/fs/cgroup/cpuacct/cpuacct.usage 2>/dev/null || echo 0'))
          .trim().split('\n').map(Number);
        const now = await cluster.api<Pod>(`/api/v1/namespaces/${namespace}/pods/${pod.metadata.name}`);
        const state = [...now.status.containerStatuses ?? [], ...now.status.initContainerStatuses ?? []].find((c) => c.name === container)?.state as { running?: { startedAt: string } } | undefined;
        const seconds = (Date.now() - Date.parse(state?.running?.startedAt ?? new Date().toISOString())) / 1000;
        const mib = (bytes: number) => (bytes / 2 ** 20).toFixed(1);
        figures.push(`${pod.metadata.name}/${container}: RssAnon ${mib(kb('RssAnon'))} MiB, peak RSS ${mib(kb('VmHWM'))} MiB, cgroup peak with page cache ${mib(withCache)} MiB, limit ${mib(limit)} MiB; cpu ${(cpu / 1e9).toFixed(1)} s in ${seconds.toFixed(0)} s`);
        within.push({ what: `${pod.metadata.name}/${container}`, anon: kb('RssAnon'), limit });
      }
    }
    console.log(figures.map((f) => `      ${f}`).join('\n'));
    for (const { what, anon, limit } of within) {
      expect(limit, `${what}: a memory limit`).to.be.below(2 ** 40);
      expect(anon, `${what}: anonymous memory within 75 % of the limit`).to.be.below(limit * 0.75);
    }
  });

  killSwitchTest(context);

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
    expect((await fetch(`${url}/api/projects`, { headers: session })).status).to.equal(200);
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

  deletedPodRevocationTest(context);

  it('answers no error through the Service\'s name (kube-proxy, the cluster DNS) during a rolling restart of 2 replicas', async function () {
    this.timeout(240_000);
    const before = new Set((await runningPods()).map((p) => p.metadata.name));
    const client = await startServiceClient(cluster, '/api/projects', session);
    const restartAt = Date.now();
    let oldGoneAt = 0;
    let requests: ServiceRequest[];
    try {
      await cluster.kube(['rollout', 'restart', '-n', namespace, 'deployment/saas-app']);
      await cluster.kube(['rollout', 'status', '-n', namespace, 'deployment/saas-app', '--timeout=200s']);
      // The old pods gone, not only terminating: whatever answers after this is a new pod.
      oldGoneAt = await until('the old pods gone', 60_000, async () =>
        ((await deployed.pods()).some((p) => before.has(p.metadata.name)) ? undefined : Date.now()));
      // A few requests answered by the new pods alone: counted, not timed (on a loaded machine
      // the client's 50 ms between requests stretches).
      await until('six requests after the old pods went', 30_000, () =>
        Promise.resolve(client.requests().filter((r) => r.at > oldGoneAt).length > 5 ? true : undefined));
    } finally {
      // Stopped whatever happened: a client left running would keep the test process alive.
      requests = await client.stop();
    }
    const after = new Set((await runningPods()).map((p) => p.metadata.name));
    expect([...after].filter((n) => before.has(n)), 'every pod replaced').to.deep.equal([]);
    // The client ran through the whole restart: old pods answered it, then new ones alone.
    expect(requests.filter((r) => r.at < restartAt).length, 'requests before the restart').to.be.greaterThan(0);
    expect(requests.filter((r) => r.at > oldGoneAt).length, 'requests once the old pods were gone').to.be.greaterThan(5);
    expect(requests.filter((r) => r.status !== 200).map((r) => `${new Date(r.at).toISOString()} ${r.status} ${r.error ?? ''}`)).to.deep.equal([]);
    console.log(`      ${requests.length} requests through saas-app.saas.svc in ${((Date.now() - restartAt) / 1000).toFixed(1)} s, 0 errors; `
      + `the old pods gone ${((oldGoneAt - restartAt) / 1000).toFixed(1)} s after the restart began`);
  });

  it('refuses, in Vault, a token of another service account, of another namespace, or of the app\'s own for another audience', async function () {
    await cluster.kube(['create', 'serviceaccount', 'other', '-n', namespace]);
    await cluster.kube(['create', 'namespace', 'elsewhere']);
    await cluster.kube(['create', 'serviceaccount', 'saas-app', '-n', 'elsewhere']);
    const login = async (ns: string, account: string, audience: string[] = ['--audience', 'vault']) => {
      const jwt = (await cluster.kube(['create', 'token', account, '-n', ns, ...audience])).trim();
      registerSecret(`${ns}/${account} token`, jwt);
      return cliAs(vault.node, '', ['write', 'auth/kubernetes/login', 'role=saas-app-prod', `jwt=${jwt}`]);
    };
    const other = await login(namespace, 'other');
    expect(other.code).to.not.equal(0);
    expect(other.stderr).to.match(/service account name not authorized/);
    const elsewhere = await login('elsewhere', 'saas-app');
    expect(elsewhere.code).to.not.equal(0);
    expect(elsewhere.stderr).to.match(/namespace not authorized/);
    // The app's own account with the API server's default audience: what code in the app
    // container would hold if the pod mounted its token.
    const apiAudience = await login(namespace, 'saas-app', []);
    expect(apiAudience.code).to.not.equal(0);
    expect(apiAudience.stderr).to.match(/audience/i);
    // The same call with the app's own account succeeds: the refusals are about the identity.
    const own = await login(namespace, 'saas-app');
    expect(own.code, own.stderr).to.equal(0);
    expect(own.stdout).to.contain('saas-app-prod');
  });

  nodeLossTest(context);

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
