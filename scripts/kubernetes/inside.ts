import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, open, readFile, readdir, readlink, writeFile } from 'node:fs/promises';
import { request } from 'node:https';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { run } from '../engine/engine.js';
import { serveClusterHalf } from './bridge.js';
import { killNetworkNamespace } from './netns.js';
import { configFile } from './config.js';
import { apiServerPort, clusterPaths, nodeIp, nodeName, serviceSubnet } from './paths.js';

/*
 * The cluster's supervisor, run by `unshare --mount --net` (scripts/kubernetes/cluster.ts):
 * everything here happens in a network and mount namespace of the cluster's own, so the
 * kubelet's sysctls, iptables chains and mounts, containerd's shim sockets and the pods'
 * bridge never touch the host. It starts etcd, the API server, the controller manager, the
 * scheduler, containerd and the kubelet in that order, each waiting for the one before, and
 * serves the bridge's cluster half. A component that exits stops the whole cluster, with one
 * line in run/failure naming it. SIGTERM stops the kubelet first (its pods with it), then the
 * rest in reverse order, then every process left in the namespace (containerd's shims).
 *
 *   argv: the Kubernetes binaries' folder
 */

const paths = clusterPaths();
const [binDir = ''] = process.argv.slice(2);
const children: { name: string; child: ChildProcess }[] = [];
let stopping = false;

async function fail(line: string): Promise<never> {
  await writeFile(paths.failure, `${line}\n`);
  await stopAll();
  process.exit(1);
}

async function lastError(name: string): Promise<string> {
  const log = await readFile(join(paths.logs, `${name}.log`), 'utf8').catch(() => '');
  const lines = log.split('\n').filter((l) => /^E\d{4}|^F\d{4}|level=(fatal|error)|"level":"(fatal|error)"|error:|Error:/i.test(l));
  return (lines.at(-1) ?? log.trim().split('\n').at(-1) ?? 'no log').slice(0, 400);
}

async function start(name: string, command: string, args: readonly string[]): Promise<void> {
  const log = await open(join(paths.logs, `${name}.log`), 'a');
  const child = spawn(command, args, { stdio: ['ignore', log.fd, log.fd] });
  await log.close();
  children.push({ name, child });
  child.on('error', (error) => { void fail(`${name} could not start: ${error.message}`); });
  child.on('exit', (code, signal) => {
    if (stopping) return;
    void lastError(name).then((why) => fail(`${name} exited (${signal ?? `code ${code}`}): ${why} (log: ${join(paths.logs, `${name}.log`)})`));
  });
}

async function until(what: string, seconds: number, check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + seconds * 1000;
  while (Date.now() < deadline) {
    if (await check().catch(() => false)) return;
    await sleep(250);
  }
  await fail(`${what} within ${seconds} s`);
}

/** The admin's TLS files, read once: the readiness loop asks every 250 ms. */
let adminTls: Promise<{ ca: Buffer; cert: Buffer; key: Buffer }> | undefined;

function apiGet(path: string): Promise<number> {
  adminTls ??= Promise.all(['ca.crt', 'admin.crt', 'admin.key'].map((name) => readFile(join(paths.pki, name))))
    .then(([ca, cert, key]) => ({ ca: ca as Buffer, cert: cert as Buffer, key: key as Buffer }));
  return adminTls.then((tls) => new Promise((resolvePromise, reject) => {
    const req = request({ host: '127.0.0.1', port: apiServerPort, path, method: 'GET', ...tls }, (res) => {
      res.resume();
      resolvePromise(res.statusCode ?? 0);
    });
    req.on('error', reject);
    req.end();
  }));
}

async function must(command: string, args: readonly string[]): Promise<void> {
  const result = await run(command, args);
  if (result.code !== 0) await fail(`${command} ${args.join(' ')}: ${result.stderr.trim()}`);
}

async function stopChild(entry: { name: string; child: ChildProcess }, graceMs: number): Promise<void> {
  const { child } = entry;
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolvePromise) => { child.once('exit', () => { resolvePromise(); }); });
  child.kill('SIGTERM');
  if (await Promise.race([exited.then(() => true), sleep(graceMs).then(() => false)])) return;
  child.kill('SIGKILL');
  await exited;
}

async function stopAll(): Promise<void> {
  if (stopping) return;
  stopping = true;
  for (const entry of [...children].reverse()) await stopChild(entry, 10_000);
  await killNetworkNamespace(await readlink('/proc/self/ns/net'), process.pid);
}

// Whatever else goes wrong here (a mount, a folder) ends the cluster with the error's own
// words in run/failure, which the host's start reports as its one line.
process.on('uncaughtException', (error) => { void fail(`the cluster's namespace could not be set up: ${error.message}`); });
process.on('unhandledRejection', (error) => {
  void fail(`the cluster's namespace could not be set up: ${error instanceof Error ? error.message : String(error)}`);
});
process.on('SIGTERM', () => { void stopAll().then(() => process.exit(0)); });
process.on('SIGINT', () => { void stopAll().then(() => process.exit(0)); });

await mkdir(paths.run, { recursive: true });
await mkdir(paths.logs, { recursive: true });
await writeFile(paths.insidePid, `${process.pid}\n`);
// How the host finds what is left in this namespace after a crash (cluster.ts, stop).
await writeFile(join(paths.run, 'netns'), await readlink('/proc/self/ns/net'));

// The namespace's network: its loopback device, up, carries the node's address too.
await must('ip', ['link', 'set', 'lo', 'up']);
await must('ip', ['addr', 'add', `${nodeIp}/32`, 'dev', 'lo']);
// containerd 1.6 puts its shims' sockets under /run/containerd/s, whatever its state folder:
// a tmpfs there in this mount namespace keeps them from the host's. The kubelet writes pod
// logs under /var/log/pods and /var/log/containers: they land in .kubernetes/var-log.
await must('mount', ['-t', 'tmpfs', '-o', 'mode=0711', 'tmpfs', '/run/containerd']);
await mkdir(join(paths.dir, 'var-log'), { recursive: true });
await must('mount', ['--bind', join(paths.dir, 'var-log'), '/var/log']);

const stopBridge = await serveClusterHalf(paths);
process.on('exit', () => { void stopBridge(); });

const pki = (name: string) => join(paths.pki, name);
const bin = (name: string) => join(binDir, name);

await start('etcd', 'etcd', [
  '--data-dir', join(paths.dir, 'etcd'), '--name', 'saas',
  '--listen-client-urls', 'http://127.0.0.1:2379', '--advertise-client-urls', 'http://127.0.0.1:2379',
  '--listen-peer-urls', 'http://127.0.0.1:2380', '--initial-advertise-peer-urls', 'http://127.0.0.1:2380',
  '--initial-cluster', 'saas=http://127.0.0.1:2380',
]);
await until('etcd did not answer on 127.0.0.1:2379', 30, async () => (await fetch('http://127.0.0.1:2379/health')).ok);

await start('kube-apiserver', bin('kube-apiserver'), [
  '--etcd-servers', 'http://127.0.0.1:2379',
  '--bind-address', '0.0.0.0', '--secure-port', String(apiServerPort), '--advertise-address', nodeIp,
  '--tls-cert-file', pki('apiserver.crt'), '--tls-private-key-file', pki('apiserver.key'),
  '--client-ca-file', pki('ca.crt'),
  '--kubelet-client-certificate', pki('apiserver-kubelet-client.crt'), '--kubelet-client-key', pki('apiserver-kubelet-client.key'),
  '--service-account-issuer', 'https://kubernetes.default.svc.cluster.local',
  '--service-account-key-file', pki('sa.pub'), '--service-account-signing-key-file', pki('sa.key'),
  '--service-cluster-ip-range', serviceSubnet,
  '--authorization-mode', 'Node,RBAC',
  // The node's name resolves nowhere (the namespace has no DNS): logs and exec go to its address.
  '--kubelet-preferred-address-types', 'InternalIP',
  // The API server would keep its own address in the `kubernetes` Service's endpoints, and
  // refuses one on a loopback device; nothing here reaches the API server through that Service.
  '--endpoint-reconciler-type', 'none',
]);
await until('the API server was not ready', 120, async () => await apiGet('/readyz') === 200);

await start('kube-controller-manager', bin('kube-controller-manager'), [
  '--kubeconfig', configFile(paths, 'controller-manager.kubeconfig'),
  '--authentication-kubeconfig', configFile(paths, 'controller-manager.kubeconfig'),
  '--authorization-kubeconfig', configFile(paths, 'controller-manager.kubeconfig'),
  '--service-account-private-key-file', pki('sa.key'), '--root-ca-file', pki('ca.crt'),
  '--use-service-account-credentials', '--leader-elect=false',
  '--cluster-signing-cert-file', pki('ca.crt'), '--cluster-signing-key-file', pki('ca.key'),
]);
await start('kube-scheduler', bin('kube-scheduler'), [
  '--kubeconfig', configFile(paths, 'scheduler.kubeconfig'),
  '--authentication-kubeconfig', configFile(paths, 'scheduler.kubeconfig'),
  '--authorization-kubeconfig', configFile(paths, 'scheduler.kubeconfig'),
  '--leader-elect=false',
]);

await start('containerd', 'containerd', ['--config', configFile(paths, 'containerd.toml')]);
await until(`containerd did not answer on ${paths.containerdSocket}`, 30,
  async () => (await run('ctr', ['--address', paths.containerdSocket, 'version'])).code === 0);

// The kubelet waits for run/kubelet-go, which the host writes once the pause image is in.
await until('the images were not imported', 300, async () => (await readFile(join(paths.run, 'kubelet-go'), 'utf8')) === 'go\n');
// The kubelet's cgroup root must exist under every controller; cpuset's needs its CPUs and
// memory nodes before anything can join it (cgroup v1 leaves them empty).
for (const controller of await readdir('/sys/fs/cgroup')) {
  const dir = join('/sys/fs/cgroup', controller, paths.cgroupRoot);
  await mkdir(dir, { recursive: true });
  if (controller === 'cpuset') {
    for (const file of ['cpuset.cpus', 'cpuset.mems']) await writeFile(join(dir, file), await readFile(join('/sys/fs/cgroup/cpuset', file)));
  }
}
await start('kubelet', bin('kubelet'), [
  '--config', configFile(paths, 'kubelet.yaml'),
  '--kubeconfig', configFile(paths, 'kubelet.kubeconfig'),
  '--root-dir', join(paths.dir, 'kubelet'),
  '--node-ip', nodeIp, '--hostname-override', nodeName,
]);
await writeFile(paths.ready, 'started\n');
