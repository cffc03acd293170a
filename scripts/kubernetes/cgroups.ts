import { readFile, readdir, rmdir } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

/*
 * The kubelets' cgroups (cgroup v1, as these machines run): every pod's processes are below a
 * node's cgroup root, in network namespaces of their own that outlive containerd and its shims,
 * so the stops find them here.
 */

/** Every process below `root` (under the pids controller), at any depth. */
export async function cgroupPids(root: string): Promise<number[]> {
  const pids = async (dir: string): Promise<number[]> => {
    const own = (await readFile(join(dir, 'cgroup.procs'), 'utf8').catch(() => '')).split('\n').filter((l) => l !== '').map(Number);
    const children = (await readdir(dir, { withFileTypes: true }).catch(() => [])).filter((e) => e.isDirectory());
    return [...own, ...(await Promise.all(children.map((child) => pids(join(dir, child.name))))).flat()];
  };
  return pids(join('/sys/fs/cgroup/pids', root));
}

/** SIGTERM, then SIGKILL, to every process below `root`, a second apart. */
export async function killCgroups(root: string): Promise<void> {
  for (const signal of ['SIGTERM', 'SIGKILL'] as const) {
    const found = await cgroupPids(root);
    for (const pid of found) {
      try { process.kill(pid, signal); } catch { /* gone */ }
    }
    if (found.length > 0) await sleep(1000);
  }
}

/** The cgroups below `root` under every controller, deepest first: they are empty once their processes are gone. */
export async function removeCgroups(root: string): Promise<void> {
  const remove = async (dir: string): Promise<void> => {
    for (const entry of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
      if (entry.isDirectory()) await remove(join(dir, entry.name));
    }
    await rmdir(dir).catch(() => undefined);
  };
  for (const controller of await readdir('/sys/fs/cgroup').catch(() => [])) {
    await remove(join('/sys/fs/cgroup', controller, root));
  }
}
