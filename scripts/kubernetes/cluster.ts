import { spawn } from 'node:child_process';
import { mkdir, open, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { cmdline, EngineError, ensurePackages, privilege, readPid, repoRoot, run } from '../engine/engine.js';
import { freePort } from '../stack/ports.js';
import { killCgroups, removeCgroups } from './cgroups.js';
import { writeConfigs } from './config.js';
import { importImages, type ClusterImages } from './images.js';
import { killNetworkNamespace } from './netns.js';
import { dnsObjects, dnsReady } from './dns.js';
import { ClusterError, clusterPaths, nodeIp, nodePaths, nodes, type ClusterPaths } from './paths.js';
import { writePki } from './pki.js';

/*
 * npm run k8s:start / k8s:stop: a two-node Kubernetes of this clone (.kubernetes/), its control
 * plane and first node in a network and mount namespace of its own, its second node in
 * another (scripts/kubernetes/inside.ts). The pinned binaries come from
 * scripts/install-kubernetes.sh and scripts/install-coredns.sh (built once into a cache outside
 * the clone); etcd, containerd, runc, iptables and the CNI plugins from Debian's packages. Each failure is one line naming the cause,
 * and a failed start leaves nothing running.
 */

export interface StartedCluster {
  readonly paths: ClusterPaths;
  /** The host's kubeconfig (the admin identity). */
  readonly kubeconfig: string;
  readonly kubectl: string;
  readonly images: ClusterImages;
  /** false when a cluster of this clone was running already. */
  readonly startedNow: boolean;
}

const packages = [
  ['etcd', 'etcd-server'], ['containerd', 'containerd'], ['ctr', 'containerd'], ['runc', 'runc'],
  ['/usr/lib/cni/bridge', 'containernetworking-plugins'], ['openssl', 'openssl'], ['ip', 'iproute2'], ['unshare', 'util-linux'],
  ['iptables', 'iptables'],
] as const;

/** Runs an install script of scripts/ (a build the first time), its progress to say; its stdout. */
function installed(script: string, what: string, say: (line: string) => void): Promise<string> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn('sh', [join(repoRoot, 'scripts', script)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let lastLine = '';
    child.stdout.on('data', (chunk: Buffer) => { out += chunk.toString(); });
    child.stderr.on('data', (chunk: Buffer) => {
      for (const line of chunk.toString().split('\n').filter((l) => l !== '')) { lastLine = line; say(line.replace(/^install-[a-z]+: /, '')); }
    });
    child.on('close', (code) => {
      if (code === 0) resolvePromise(out.trim());
      else reject(new ClusterError(`${what} could not be built: ${lastLine}`));
    });
  });
}

/** The pinned binaries' folder, built first if needed; the build's progress goes to say. */
export const kubernetesBinaries = (say: (line: string) => void) => installed('install-kubernetes.sh', 'the Kubernetes binaries', say);

/** The pinned CoreDNS binary, built first if needed (after Kubernetes: it shares its Go caches). */
export const corednsBinary = (say: (line: string) => void) => installed('install-coredns.sh', 'CoreDNS', say);

/** The supervisor's pid when a cluster of this clone runs. */
export async function runningCluster(paths = clusterPaths()): Promise<number | undefined> {
  const pid = await readPid(paths.supervisorPid);
  if (pid === undefined) return undefined;
  return (await cmdline(pid))?.some((arg) => arg.endsWith('supervisor.ts')) === true ? pid : undefined;
}

export async function kubectl(cluster: { kubeconfig: string; kubectl: string }, args: readonly string[], input?: string) {
  return run(cluster.kubectl, ['--kubeconfig', cluster.kubeconfig, ...args], input === undefined ? {} : { input });
}

async function waitFor(paths: ClusterPaths, what: string, seconds: number, check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + seconds * 1000;
  while (Date.now() < deadline) {
    const failure = await readFile(paths.failure, 'utf8').catch(() => '');
    if (failure !== '') throw new ClusterError(failure.trim());
    if (await runningCluster(paths) === undefined) {
      throw new ClusterError(`the cluster's supervisor exited (log: ${join(paths.logs, 'supervisor.log')})`);
    }
    if (await check().catch(() => false)) return;
    await sleep(500);
  }
  throw new ClusterError(`${what} within ${seconds} s (logs: ${paths.logs})`);
}

export async function startCluster(say: (line: string) => void = () => undefined, paths = clusterPaths()): Promise<StartedCluster> {
  let prefix: readonly string[];
  try {
    prefix = await privilege();
  } catch (error) {
    throw new ClusterError(`no cluster can run here: ${error instanceof EngineError ? error.message.replace(/^no Docker engine can run here: /, '') : String(error)}`);
  }
  if (prefix.length > 0) throw new ClusterError('the cluster needs root (it makes namespaces, mounts and cgroups): run as root');
  await mkdir(paths.logs, { recursive: true, mode: 0o700 });
  try {
    await ensurePackages(prefix, say, join(paths.logs, 'apt.log'), packages);
  } catch (error) {
    throw new ClusterError(error instanceof Error ? error.message : String(error));
  }
  const binDir = await kubernetesBinaries(say);
  const coredns = await corednsBinary(say);
  const kubectlBin = join(binDir, 'kubectl');
  if (await runningCluster(paths) !== undefined) {
    const images = JSON.parse(await readFile(join(paths.run, 'images.json'), 'utf8')) as ClusterImages;
    return { paths, kubeconfig: paths.kubeconfig, kubectl: kubectlBin, images, startedNow: false };
  }
  if (Buffer.byteLength(paths.containerdSocket) > 100) {
    throw new ClusterError(`the socket path ${paths.containerdSocket} is longer than a unix socket allows: clone the repository to a shorter path`);
  }
  // A fresh cluster every start; only containerd's images (containerd/) are kept.
  const allNodes = nodes.map((_, i) => nodePaths(paths, i + 1));
  for (const dir of [paths.run, paths.pki, paths.config, join(paths.dir, 'etcd'), ...allNodes.flatMap((n) => [n.kubeletRoot, n.cniIpam])]) {
    await rm(dir, { recursive: true, force: true });
  }
  await mkdir(paths.run, { recursive: true, mode: 0o700 });
  await writePki(paths.pki, {
    ips: ['127.0.0.1', nodeIp, '10.96.0.1'],
    dns: ['localhost', 'kubernetes', 'kubernetes.default', 'kubernetes.default.svc', 'kubernetes.default.svc.cluster.local'],
  });
  const hostPort = await freePort();
  await writeConfigs(paths, hostPort);
  const started = Date.now();
  const log = await open(join(paths.logs, 'supervisor.log'), 'w');
  const supervisor = spawn(process.execPath, ['--import', 'tsx', join(import.meta.dirname, 'supervisor.ts'), binDir, String(hostPort), coredns], {
    cwd: repoRoot, detached: true, stdio: ['ignore', log.fd, log.fd],
    env: { ...process.env, KUBERNETES_DIR: paths.dir },
  });
  supervisor.unref();
  await log.close();
  await writeFile(paths.supervisorPid, `${supervisor.pid ?? ''}\n`);
  const cluster = { paths, kubeconfig: paths.kubeconfig, kubectl: kubectlBin };
  try {
    say(`starting etcd, the API server, the controller manager, the scheduler, CoreDNS and ${allNodes.length} nodes' containerd`);
    for (const node of allNodes) {
      await waitFor(paths, `${node.node.name}'s containerd did not answer`, 180,
        async () => (await run('ctr', ['--address', node.containerdSocket, 'version'])).code === 0);
    }
    const applied = await kubectl(cluster, ['apply', '-f', '-'], JSON.stringify(dnsObjects()));
    if (applied.code !== 0) throw new ClusterError(`the cluster DNS's objects were refused: ${applied.stderr.trim()}`);
    const images = await importImages(allNodes.map((n) => n.containerdSocket), paths, say);
    await writeFile(join(paths.run, 'images.json'), JSON.stringify(images));
    await writeFile(join(paths.run, 'kubelet-go'), 'go\n');
    say('starting the kubelets and kube-proxies');
    for (const { node } of allNodes) {
      await waitFor(paths, `node ${node.name} was not Ready`, 120, async () => {
        const ready = await kubectl(cluster, ['get', 'node', node.name, '-o', 'jsonpath={.status.conditions[?(@.type=="Ready")].status}']);
        return ready.stdout === 'True';
      });
    }
    await waitFor(paths, 'the default service account was not created', 60,
      async () => (await kubectl(cluster, ['get', 'serviceaccount', 'default', '-n', 'default'])).code === 0);
    await waitFor(paths, 'CoreDNS was not ready', 60, () => dnsReady(paths));
    say(`ready in ${((Date.now() - started) / 1000).toFixed(1)} s: export KUBECONFIG=${paths.kubeconfig}; kubectl is ${kubectlBin}`);
    return { ...cluster, images, startedNow: true };
  } catch (error) {
    await stopCluster(() => undefined, paths);
    throw error;
  }
}

export async function stopCluster(say: (line: string) => void = () => undefined, paths = clusterPaths()): Promise<void> {
  const pid = await runningCluster(paths);
  const netns = await readFile(join(paths.run, 'netns'), 'utf8').catch(() => '');
  if (pid !== undefined) {
    process.kill(pid, 'SIGTERM');
    const deadline = Date.now() + 60_000;
    while (Date.now() < deadline && await cmdline(pid) !== undefined) await sleep(200);
    if (await cmdline(pid) !== undefined) process.kill(pid, 'SIGKILL');
  }
  if (netns !== '') await killNetworkNamespace(netns.trim());
  // The other nodes' namespaces: their supervisors stop with the first's, unless it crashed.
  for (const node of nodes.map((_, i) => nodePaths(paths, i + 1)).slice(1)) {
    const own = await readFile(node.netnsFile, 'utf8').catch(() => '');
    if (own !== '') await killNetworkNamespace(own.trim());
  }
  await killCgroups(paths.cgroupRoot);
  await removeCgroups(paths.cgroupRoot);
  await rm(paths.supervisorPid, { force: true });
  say(pid === undefined ? 'no cluster of this clone is running' : `cluster stopped (supervisor pid ${pid})`);
}
