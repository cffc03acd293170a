import { readdir, readlink } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';

/** Pids of the processes in network namespace `netns` (a /proc/<pid>/ns/net link's text), but those of `except`. */
export async function processesIn(netns: string, except: number | readonly number[] = []): Promise<number[]> {
  const spared = typeof except === 'number' ? [except] : except;
  const pids: number[] = [];
  for (const entry of await readdir('/proc')) {
    const pid = Number(entry);
    if (!Number.isInteger(pid) || spared.includes(pid)) continue;
    if (await readlink(`/proc/${pid}/ns/net`).catch(() => '') === netns) pids.push(pid);
  }
  return pids;
}

/**
 * Every process of the cluster's network namespace (containerd's shims outlive containerd):
 * SIGTERM, then SIGKILL, each followed by up to 5 s for them to go. A namespace's supervisor
 * runs it at its stop (except itself and the `unshare` that made the namespace, which is in
 * it too and would signal the supervisor back), the host's stop after a crash.
 */
export async function killNetworkNamespace(netns: string, except: number | readonly number[] = []): Promise<void> {
  for (const signal of ['SIGTERM', 'SIGKILL'] as const) {
    for (const pid of await processesIn(netns, except)) {
      try { process.kill(pid, signal); } catch { /* gone already */ }
    }
    const deadline = Date.now() + 5000;
    while (Date.now() < deadline && (await processesIn(netns, except)).length > 0) await sleep(100);
  }
}
