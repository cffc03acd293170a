import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { repoRoot } from '../engine/engine.js';

/*
 * Where a cluster of this clone keeps everything (.kubernetes/, git-ignored), and the
 * addresses inside its network namespace. Those addresses are fixed: every cluster has a
 * namespace of its own, so two clones' clusters never meet. Only the API server's port on
 * the host's loopback (written into the kubeconfig) is chosen at start.
 */

export class ClusterError extends Error {
  override name = 'ClusterError';
}

/**
 * A node: a kubelet, its containerd and a kube-proxy in a network namespace. The first shares
 * the control plane's; each other has one of its own, joined to the first by a veth pair.
 */
export interface ClusterNode {
  readonly name: string;
  /** On the namespace's loopback device, but not a loopback address (the kubelet refuses those). */
  readonly ip: string;
  /** Its pods' addresses: host-local IPAM's range on its bridge, whose first address is the node's gateway. */
  readonly podSubnet: string;
}

export const nodes: readonly [ClusterNode, ClusterNode] = [
  { name: 'saas-node', ip: '10.250.0.2', podSubnet: '10.244.0.0/24' },
  { name: 'saas-node-2', ip: '10.250.0.3', podSubnet: '10.244.1.0/24' },
];
/** The first node's (the control plane's) address: where the bridge exposes the host's ports. */
export const nodeIp = nodes[0].ip;
export const nodeName = nodes[0].name;
export const podSubnet = nodes[0].podSubnet;
/** Every node's pods: kube-proxy tells a pod's traffic from the rest by it. */
export const clusterCidr = '10.244.0.0/16';
export const serviceSubnet = '10.96.0.0/24';
/** The kube-dns Service's address, which the kubelets write into every pod's resolv.conf. */
export const clusterDnsIp = '10.96.0.10';
export const clusterDomain = 'cluster.local';
export const apiServerPort = 6443;

export interface ClusterPaths {
  readonly dir: string;
  /** Sockets and pid files; the host's half of the bridge connects here. */
  readonly run: string;
  readonly logs: string;
  readonly pki: string;
  readonly config: string;
  /** The kubeconfig for kubectl on the host (the admin identity, through the forwarded port). */
  readonly kubeconfig: string;
  readonly supervisorPid: string;
  readonly insidePid: string;
  /** One line: why the cluster stopped on its own (a component exited). */
  readonly failure: string;
  readonly ready: string;
  readonly containerdSocket: string;
  /** Host to cluster: a connection here names an address inside, then carries its bytes. */
  readonly dialSocket: string;
  /** Cluster to host: a request here opens a port inside that leads to a socket of the caller's. */
  readonly exposeSocket: string;
  /** Under every cgroup controller: the first kubelet's cgroup root, the others' below it; removed at stop. */
  readonly cgroupRoot: string;
}

/** What one node keeps apart from the others: its containerd, kubelet, pod logs and addresses. */
export interface NodePaths {
  readonly node: ClusterNode;
  /** 1 for the first node. */
  readonly index: number;
  readonly containerdSocket: string;
  readonly containerdRoot: string;
  readonly containerdState: string;
  readonly kubeletRoot: string;
  /** Bound over /var/log in the node's mount namespace (the kubelet's pod logs). */
  readonly varLog: string;
  readonly cniIpam: string;
  readonly cniConfig: string;
  /** Its components' configuration files are named <name><suffix> in the config folder. */
  readonly suffix: string;
  readonly cgroupRoot: string;
  /** The /proc/<pid>/ns/net link of its namespace, written by its supervisor. */
  readonly netnsFile: string;
  /** Its namespace's supervisor's pid (inside.ts for the first node, node.ts for the others). */
  readonly insidePid: string;
  /** Written before the node is stopped alone (node-stop.ts): its supervisor's exit then stops nothing else. */
  readonly stoppedAlone: string;
}

/**
 * The first node keeps the paths a one-node cluster had (.kubernetes/containerd, kubelet, ...);
 * node N > 1 has everything under node-N/ and node-N below the first's cgroup root, so the
 * stop's walk of that root finds its pods too.
 */
export function nodePaths(paths: ClusterPaths, index: number): NodePaths {
  const node = nodes[index - 1];
  if (node === undefined) throw new ClusterError(`no node ${index}`);
  const own = index === 1 ? paths.dir : join(paths.dir, `node-${index}`);
  const run = index === 1 ? paths.run : join(paths.run, `node-${index}`);
  return {
    node, index,
    containerdSocket: join(run, 'containerd.sock'),
    containerdRoot: join(own, 'containerd'),
    containerdState: join(run, 'containerd-state'),
    kubeletRoot: join(own, 'kubelet'),
    varLog: join(own, 'var-log'),
    cniIpam: join(own, 'cni-ipam'),
    cniConfig: join(paths.config, index === 1 ? 'cni' : `cni-${index}`),
    suffix: index === 1 ? '' : `-${index}`,
    cgroupRoot: index === 1 ? paths.cgroupRoot : `${paths.cgroupRoot}/node-${index}`,
    netnsFile: join(run, 'netns'),
    insidePid: index === 1 ? paths.insidePid : join(run, 'inside.pid'),
    stoppedAlone: join(run, 'stopped-alone'),
  };
}

/** KUBERNETES_DIR moves .kubernetes/ (the tests use their own, beside a user's cluster). */
export function clusterPaths(dir = process.env.KUBERNETES_DIR ?? join(repoRoot, '.kubernetes')): ClusterPaths {
  const run = join(dir, 'run');
  return {
    dir,
    run,
    logs: join(dir, 'logs'),
    pki: join(dir, 'pki'),
    config: join(dir, 'config'),
    kubeconfig: join(dir, 'kubeconfig'),
    supervisorPid: join(run, 'supervisor.pid'),
    insidePid: join(run, 'inside.pid'),
    failure: join(run, 'failure'),
    ready: join(run, 'ready'),
    containerdSocket: join(run, 'containerd.sock'),
    dialSocket: join(run, 'dial.sock'),
    exposeSocket: join(run, 'expose.sock'),
    cgroupRoot: `/saas-k8s-${createHash('sha256').update(dir).digest('hex').slice(0, 12)}`,
  };
}
