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

/** The node's address inside the namespace: on its loopback device, but not a loopback address (the kubelet refuses those). */
export const nodeIp = '10.250.0.2';
export const podSubnet = '10.244.0.0/24';
export const serviceSubnet = '10.96.0.0/24';
export const apiServerPort = 6443;
export const nodeName = 'saas-node';

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
  /** Under every cgroup controller: the kubelet's cgroup root, removed at stop. */
  readonly cgroupRoot: string;
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
