import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const created: string[] = [];

/** A fresh folder under the system's temp dir, removed by the root hook after the suite. */
export async function tempDir(prefix: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), `saas-vault-${prefix}-`));
  created.push(dir);
  return dir;
}

/** The folders tempDir created and the root hook has not removed yet. */
export function tempDirsCreated(): readonly string[] {
  return [...created];
}

export async function removeTempDirs(): Promise<void> {
  await Promise.all(created.splice(0).map((dir) => rm(dir, { recursive: true, force: true })));
}
