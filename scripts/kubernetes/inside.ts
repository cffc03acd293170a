import { mkdir, readFile, readlink, writeFile } from 'node:fs/promises';
import { request } from 'node:https';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { serveClusterHalf } from './bridge.js';
import { superviseComponents } from './components.js';
import { configFile } from './config.js';
import { processesIn } from './netns.js';
import { linkFromFirstNode } from './node-link.js';
import { prepareNode, startNode } from './node-start.js';
import { apiServerPort, clusterPaths, nodeIp, nodePaths, nodes, serviceSubnet } from './paths.js';

/*
 * The cluster's supervisor, run by `unshare --mount --net` (scripts/kubernetes/cluster.ts):
 * everything here happens in a network and mount namespace of the cluster's own, so the
 * kubelet's sysctls, iptables chains and mounts, containerd's shim sockets and the pods'
 * bridge never touch the host. It starts etcd, the API server, the controller manager, the
 * scheduler and CoreDNS in that order, each waiting for the one before, then the nodes: the
 * first in this namespace, each other in a namespace of its own (node.ts) linked to this one
 * (node-link.ts); and it serves the bridge's cluster half. A component that exits, a node's
 * supervisor included, stops the whole cluster, with one line in run/failure naming it; but a
 * node stopped alone (node-stop.ts) goes without the rest.
 * SIGTERM stops the nodes first (their pods with them), then the rest in reverse order, then
 * every process left in the namespace (containerd's shims).
 *
 *   argv: the Kubernetes binaries' folder, CoreDNS's binary
 */

const paths = clusterPaths();
const [binDir = '', corednsBin = ''] = process.argv.slice(2);
const c = superviseComponents(paths);

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

await mkdir(paths.run, { recursive: true });
await mkdir(paths.logs, { recursive: true });
await writeFile(paths.insidePid, `${process.pid}\n`);
// How the host finds what is left in this namespace after a crash (cluster.ts, stop).
await writeFile(join(paths.run, 'netns'), await readlink('/proc/self/ns/net'));

// The namespace's network: its loopback device, up, carries the first node's address too.
await c.must('ip', ['link', 'set', 'lo', 'up']);
await c.must('ip', ['addr', 'add', `${nodeIp}/32`, 'dev', 'lo']);
const first = nodePaths(paths, 1);
await prepareNode(c, first);
// A connection made here (the host's, through the bridge) to a Service address needs a route
// before kube-proxy's rules rewrite it; this namespace has no default route.
await c.must('ip', ['route', 'add', serviceSubnet, 'dev', 'cni0']);

const stopBridge = await serveClusterHalf(paths);
process.on('exit', () => { void stopBridge(); });

const pki = (name: string) => join(paths.pki, name);
const bin = (name: string) => join(binDir, name);

await c.start('etcd', 'etcd', [
  '--data-dir', join(paths.dir, 'etcd'), '--name', 'saas',
  '--listen-client-urls', 'http://127.0.0.1:2379', '--advertise-client-urls', 'http://127.0.0.1:2379',
  '--listen-peer-urls', 'http://127.0.0.1:2380', '--initial-advertise-peer-urls', 'http://127.0.0.1:2380',
  '--initial-cluster', 'saas=http://127.0.0.1:2380',
]);
await c.until('etcd did not answer on 127.0.0.1:2379', 30, async () => (await fetch('http://127.0.0.1:2379/health')).ok);

await c.start('kube-apiserver', bin('kube-apiserver'), [
  '--etcd-servers', 'http://127.0.0.1:2379',
  '--bind-address', '0.0.0.0', '--secure-port', String(apiServerPort), '--advertise-address', nodeIp,
  '--tls-cert-file', pki('apiserver.crt'), '--tls-private-key-file', pki('apiserver.key'),
  '--client-ca-file', pki('ca.crt'),
  '--kubelet-client-certificate', pki('apiserver-kubelet-client.crt'), '--kubelet-client-key', pki('apiserver-kubelet-client.key'),
  '--service-account-issuer', 'https://kubernetes.default.svc.cluster.local',
  '--service-account-key-file', pki('sa.pub'), '--service-account-signing-key-file', pki('sa.key'),
  '--service-cluster-ip-range', serviceSubnet,
  '--authorization-mode', 'Node,RBAC',
  // The nodes' names resolve nowhere the API server looks: logs and exec go to their addresses.
  '--kubelet-preferred-address-types', 'InternalIP',
  // The API server would keep its own address in the `kubernetes` Service's endpoints, and
  // refuses one on a loopback device; nothing here reaches the API server through that Service.
  '--endpoint-reconciler-type', 'none',
]);
await c.until('the API server was not ready', 120, async () => await apiGet('/readyz') === 200);

await c.start('kube-controller-manager', bin('kube-controller-manager'), [
  '--kubeconfig', configFile(paths, 'controller-manager.kubeconfig'),
  '--authentication-kubeconfig', configFile(paths, 'controller-manager.kubeconfig'),
  '--authorization-kubeconfig', configFile(paths, 'controller-manager.kubeconfig'),
  '--service-account-private-key-file', pki('sa.key'), '--root-ca-file', pki('ca.crt'),
  '--use-service-account-credentials', '--leader-elect=false',
  '--cluster-signing-cert-file', pki('ca.crt'), '--cluster-signing-key-file', pki('ca.key'),
  // A node whose kubelet is silent is called lost (its pods out of every Service, the
  // node.kubernetes.io/unreachable taint) after 12.5 s, not Kubernetes' 50 s, checked every second
  // instead of every 5: the kubelets renew their lease every 2.5 s (node-config.ts), five
  // renewals missed, as with Kubernetes' defaults (10 s, 50 s). The test cluster's setting, for
  // a lost node's test to take seconds; the manifests' tolerations then count from the taint.
  '--node-monitor-period', '1s', '--node-monitor-grace-period', '12.5s',
]);
await c.start('kube-scheduler', bin('kube-scheduler'), [
  '--kubeconfig', configFile(paths, 'scheduler.kubeconfig'),
  '--authentication-kubeconfig', configFile(paths, 'scheduler.kubeconfig'),
  '--authorization-kubeconfig', configFile(paths, 'scheduler.kubeconfig'),
  '--leader-elect=false',
]);
// It answers once the host has applied its role and Service (dns.ts) and it has read them:
// its ready plugin says when.
await c.start('coredns', corednsBin, ['-conf', configFile(paths, 'Corefile')]);

// The other nodes, each in its namespace, linked to this one as soon as it exists.
for (const index of nodes.map((_, i) => i + 1).slice(1)) {
  const node = nodePaths(paths, index);
  // Its stop: its supervisor's own (its kubelet first, then every process of its namespace),
  // waited for, before the control plane goes; unshare then exits with it.
  const stopNode = async () => {
    process.kill(Number(await readFile(node.insidePid, 'utf8')), 'SIGTERM');
    const netns = (await readFile(node.netnsFile, 'utf8')).trim();
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline && (await processesIn(netns)).length > 0) await sleep(200);
  };
  // Its exit stops the cluster, unless node-stop.ts stopped it alone (a lost node, in a test).
  const stoppedAlone = async () => (await readFile(node.stoppedAlone, 'utf8').catch(() => '')) !== '';
  await c.start(`node-${index}`, 'unshare', [
    '--mount', '--net', '--propagation', 'private', '--fork', '--kill-child=SIGTERM',
    process.execPath, '--import', 'tsx', join(import.meta.dirname, 'node.ts'), binDir, String(index),
  ], stopNode, stoppedAlone);
  let pid = 0;
  await c.until(`node ${index}'s namespace did not start`, 60, async () => {
    pid = Number(await readFile(node.insidePid, 'utf8'));
    return pid > 0;
  });
  await linkFromFirstNode(c, paths, node, pid);
}
await startNode(c, paths, first, binDir);
await writeFile(paths.ready, 'started\n');
