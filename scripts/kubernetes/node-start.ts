import { mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { run } from '../engine/engine.js';
import type { Components } from './components.js';
import { configFile } from './config.js';
import type { ClusterPaths, NodePaths } from './paths.js';

/*
 * A node's own processes, started by its namespace's supervisor: prepareNode sets up the
 * namespace (mounts, the pods' bridge, sysctls), startNode runs containerd, then (once the host
 * has imported the images) the kubelet, then kube-proxy. Both run inside the node's network and
 * mount namespace, which they change.
 */

/** The node's gateway on its pods' bridge: the first address of its pod subnet. */
export const bridgeAddress = (node: NodePaths) => node.node.podSubnet.replace(/\.0\/24$/, '.1');

export async function prepareNode(c: Components, node: NodePaths): Promise<void> {
  // containerd 1.6 puts its shims' sockets under /run/containerd/s, whatever its state folder:
  // a tmpfs there in this mount namespace keeps them from the host's and the other nodes'. The
  // kubelet writes pod logs under /var/log/pods and /var/log/containers: they land in var-log.
  await c.must('mount', ['-t', 'tmpfs', '-o', 'mode=0711', 'tmpfs', '/run/containerd']);
  await mkdir(node.varLog, { recursive: true });
  await c.must('mount', ['--bind', node.varLog, '/var/log']);
  // The pods' bridge before the first pod: routes to the other nodes' pods name its address as
  // their source (node-link.ts). The CNI bridge plugin takes it as it finds it.
  await c.must('ip', ['link', 'add', 'cni0', 'type', 'bridge']);
  await c.must('ip', ['addr', 'add', `${bridgeAddress(node)}/24`, 'dev', 'cni0']);
  await c.must('ip', ['link', 'set', 'cni0', 'up']);
  // Routing between the nodes' pods, and Services reached from a pod on the same bridge (the
  // bridge's frames through iptables, where kube-proxy's rules are).
  await writeFile('/proc/sys/net/ipv4/ip_forward', '1\n');
  await writeFile('/proc/sys/net/bridge/bridge-nf-call-iptables', '1\n');
}

export async function startNode(c: Components, paths: ClusterPaths, node: NodePaths, binDir: string): Promise<void> {

  const name = (component: string) => `${component}${node.suffix}`;
  await c.start(name('containerd'), 'containerd', ['--config', configFile(paths, `containerd${node.suffix}.toml`)]);
  await c.until(`containerd did not answer on ${node.containerdSocket}`, 30,
    async () => (await run('ctr', ['--address', node.containerdSocket, 'version'])).code === 0);

  // The kubelet waits for run/kubelet-go, which the host writes once the images are in.
  await c.until('the images were not imported', 300, async () => (await readFile(join(paths.run, 'kubelet-go'), 'utf8')) === 'go\n');
  // The kubelet's cgroup root must exist under every controller; cpuset's needs its CPUs and
  // memory nodes before anything can join it (cgroup v1 leaves them empty), at every level.
  for (const controller of await readdir('/sys/fs/cgroup')) {
    let parent = join('/sys/fs/cgroup', controller);
    for (const part of node.cgroupRoot.split('/').filter((p) => p !== '')) {
      const dir = join(parent, part);
      await mkdir(dir, { recursive: true });
      if (controller === 'cpuset') {
        for (const file of ['cpuset.cpus', 'cpuset.mems']) {
          if ((await readFile(join(dir, file), 'utf8')).trim() === '') await writeFile(join(dir, file), await readFile(join(parent, file)));
        }
      }
      parent = dir;
    }
  }
  await c.start(name('kubelet'), join(binDir, 'kubelet'), [
    '--config', configFile(paths, `kubelet${node.suffix}.yaml`),
    '--kubeconfig', configFile(paths, `kubelet${node.suffix}.kubeconfig`),
    '--root-dir', node.kubeletRoot,
    '--node-ip', node.node.ip, '--hostname-override', node.node.name,
  ]);
  await c.start(name('kube-proxy'), join(binDir, 'kube-proxy'), ['--config', configFile(paths, `kube-proxy${node.suffix}.yaml`)]);
}
