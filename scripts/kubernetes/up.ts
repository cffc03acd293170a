import { randomBytes } from 'node:crypto';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { cmdline, readPid, repoRoot } from '../engine/engine.js';
import { deployApp, namespace, shippedRedirectUrl } from './app-deploy.js';
import { exposeToCluster, forwardFromHost, type Exposure, type Forward } from './bridge.js';
import { kubectl, startCluster, stopCluster } from './cluster.js';
import { bridgeAddress } from './node-start.js';
import { ClusterError, clusterPaths, nodePaths } from './paths.js';
import { startUpServers } from './up-servers.js';

/*
 * npm run k8s:up / k8s:down: for the cluster what `npm run stack` does for processes. Up starts
 * the cluster (k8s:start's), its own Vault and PostgreSQL (up-servers.ts), runs the operator's
 * steps and applies the shipped native-sidecar overlay (app-deploy.ts), prints how to reach the
 * app (through its Service) and one pod's operator port, then stays in the foreground: it
 * carries those ports, and the host's servers to the pods, until Ctrl-C or `npm run k8s:down`,
 * which stop everything it started. Its state is .kubernetes-up/ (KUBERNETES_UP_DIR moves it).
 */

const upDir = () => process.env.KUBERNETES_UP_DIR ?? join(repoRoot, '.kubernetes-up');
const pidFile = () => join(upDir(), 'up.pid');

async function runningUp(): Promise<number | undefined> {
  const pid = await readPid(pidFile());
  if (pid === undefined) return undefined;
  return (await cmdline(pid))?.some((arg) => arg.endsWith('cli.ts')) === true ? pid : undefined;
}

export async function up(say: (line: string) => void): Promise<never> {
  const started = Date.now();
  if (await runningUp() !== undefined) throw new ClusterError(`k8s:up is running already (pid file ${pidFile()}): run "npm run k8s:down" first`);
  const dir = upDir();
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  await writeFile(pidFile(), `${process.pid}\n`);
  const paths = clusterPaths();
  const opened: (Forward | Exposure)[] = [];
  let stopServers = async () => { /* nothing started yet */ };
  const stopAll = async () => {
    for (const one of opened) await one.close();
    await stopServers();
    await stopCluster(say, paths);
    await rm(pidFile(), { force: true });
  };
  let stopping: Promise<void> | undefined;
  const onSignal = () => { stopping ??= stopAll().then(() => process.exit(0)); };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    const cluster = await startCluster(say, paths);
    const kube = async (args: readonly string[], input?: string) => {
      const result = await kubectl(cluster, args, input);
      if (result.code !== 0) throw new ClusterError(`kubectl ${args.slice(0, 3).join(' ')}: ${result.stderr.trim()}`);
      return result.stdout;
    };
    const servers = await startUpServers(dir, await shippedRedirectUrl(), say);
    stopServers = () => servers.stop();
    const config = JSON.parse(await readFile(cluster.kubeconfig, 'utf8')) as { clusters: { cluster: { server: string } }[] };
    const adminToken = randomBytes(24).toString('hex');
    await deployApp({
      cluster: {
        kube, images: cluster.images, caFile: join(paths.pki, 'ca.crt'), apiServerUrl: config.clusters[0]?.cluster.server ?? '',
        expose: async (port, target) => { const exposure = await exposeToCluster(paths, port, target); opened.push(exposure); return exposure; },
      },
      vault: servers.vault, postgres: servers.postgres, adminToken, work: dir, replicas: 2, say,
      appEnv: [
        // The demo sign-in's issuer is this Vault, behind the vault-ca Secret's CA; the host's
        // connections reach the pods from the first node's bridge address (node-link.ts).
        { name: 'OIDC_ISSUER_URL', value: 'https://vault.vault.svc:8200/v1/identity/oidc/provider/saas-prod' },
        { name: 'OIDC_CA_FILE', value: '/vault/tls/ca.crt' },
        { name: 'TRUSTED_PROXIES', value: bridgeAddress(nodePaths(paths, 1)) },
      ],
    });
    const service = (await kube(['get', 'service', '-n', namespace, 'saas-app', '-o', 'jsonpath={.spec.clusterIP}:{.spec.ports[0].port}'])).trim();
    const app = await forwardFromHost(paths, service);
    opened.push(app);
    const podIp = (await kube(['get', 'pods', '-n', namespace, '-l', 'app=saas-app', '-o', 'jsonpath={.items[0].status.podIP}'])).trim();
    const admin = await forwardFromHost(paths, `${podIp}:3001`);
    opened.push(admin);
    await writeFile(join(dir, 'admin-token'), adminToken, { mode: 0o600 });
    say(`ready in ${((Date.now() - started) / 1000).toFixed(0)} s`);
    say(`app          http://127.0.0.1:${app.port}  (the Service saas-app, ${service} in the cluster)`);
    say(`operator     http://127.0.0.1:${admin.port}  (pod ${podIp}: GET /status, /metrics with Authorization: Bearer $(cat ${join(dir, 'admin-token')}))`);
    say(`kubectl      export KUBECONFIG=${cluster.kubeconfig}; kubectl is ${cluster.kubectl}`);
    say(`sign-in      demo users acme and globex, passwords in ${servers.demoUsersDir}`);
    say(`running (pid ${process.pid}): Ctrl-C or "npm run k8s:down" stops the app, the cluster, Vault and PostgreSQL`);
  } catch (error) {
    stopping ??= stopAll();
    await stopping;
    throw error;
  }
  // The forwards and exposures live in this process: it waits for a signal.
  for (;;) await sleep(60_000);
}

export async function down(say: (line: string) => void): Promise<void> {
  const pid = await runningUp();
  if (pid === undefined) {
    say('no k8s:up is running; stopping the cluster if one is');
    await stopCluster(say);
    return;
  }
  process.kill(pid, 'SIGTERM');
  const deadline = Date.now() + 120_000;
  while (Date.now() < deadline && await cmdline(pid) !== undefined) await sleep(250);
  say(await cmdline(pid) === undefined ? `k8s:up (pid ${pid}) stopped everything it started` : `k8s:up (pid ${pid}) did not stop within 120 s`);
}
