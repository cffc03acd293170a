import { cp, mkdir, symlink } from 'node:fs/promises';
import { join } from 'node:path';
import { repoRoot } from './repo-root.js';
import { tempDir } from './temp-dirs.js';

/**
 * What a team edits and runs when it adds a secret: the catalogue and the files generated
 * from it, the generator, the bootstrap and its policies, the agent's configuration and the
 * service's source. Copied, so a test can change the catalogue without touching the repository.
 */
const copied = ['package.json', 'agent-config', 'deploy/kubernetes', 'policies', 'scripts/bootstrap.sh', 'scripts/lib', 'scripts/secrets', 'service/src'];

/** A copy of the project in a temp folder; its node_modules is the repository's, linked. */
export async function copyProject(): Promise<string> {
  const root = await tempDir('project');
  for (const path of copied) {
    await mkdir(join(root, path, '..'), { recursive: true });
    await cp(join(repoRoot, path), join(root, path), { recursive: true });
  }
  await symlink(join(repoRoot, 'node_modules'), join(root, 'node_modules'));
  return root;
}
