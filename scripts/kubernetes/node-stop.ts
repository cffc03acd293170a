import { readFile, rm, writeFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { cgroupPids } from './cgroups.js';
import { processesIn } from './netns.js';
import { ClusterError, nodePaths, type ClusterPaths } from './paths.js';

/*
 * One node lost while the cluster runs on: its supervisor, kubelet, containerd, kube-proxy and
 * shims (every process of its network namespace) and its pods' containers (every process below
 * its cgroup root) killed at once with SIGKILL, as a machine that loses its power: no drain, no
 * preStop hook, no last status to the API server. The first node's supervisor sees its node
 * process exit, finds the node's stopped-alone file, and runs on (inside.ts); the namespace goes
 * with its last process, and its link with it, so the other nodes' packets to its pods find no
 * route. Nothing restarts it: the cluster's stop stops the rest as usual. The first node cannot
 * be stopped alone, as it carries the control plane.
 */
export async function stopNodeAlone(paths: ClusterPaths, index: number): Promise<void> {
  if (index === 1) throw new ClusterError('the first node carries the control plane: stop the cluster instead');
  const node = nodePaths(paths, index);
  const netns = (await readFile(node.netnsFile, 'utf8').catch(() => '')).trim();
  if (netns === '') throw new ClusterError(`node ${node.node.name} is not running`);
  await writeFile(node.stoppedAlone, 'stopped\n');
  // A killed process waiting for its parent (a zombie) runs nothing: only the others count.
  const running = async (pid: number) => !/^\d+ \(.*\) Z/s.test(await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => `${pid} () Z`));
  const remaining = async () => {
    const found = [...await processesIn(netns), ...await cgroupPids(node.cgroupRoot)];
    return (await Promise.all(found.map(async (pid) => ((await running(pid)) ? [pid] : [])))).flat();
  };
  const deadline = Date.now() + 10_000;
  for (let left = await remaining(); left.length > 0; left = await remaining()) {
    if (Date.now() > deadline) throw new ClusterError(`node ${node.node.name}: processes ${left.join(', ')} outlived SIGKILL for 10 s`);
    for (const pid of left) {
      try { process.kill(pid, 'SIGKILL'); } catch { /* gone already */ }
    }
    await sleep(100);
  }
  // The namespace is gone: the cluster's stop must not look for processes by its name.
  await rm(node.netnsFile, { force: true });
}
