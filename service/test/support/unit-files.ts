/**
 * Which test files need no server: `npm run test:unit`, the developer's inner loop. A file is a
 * unit test when nothing it imports, itself or through the test's own modules, starts a process
 * (imports node:child_process) or reaches a server's install (the Vault binaries, PostgreSQL,
 * the Docker engine, the cluster). Read from the imports, so a test that starts a server moves
 * out of the unit run by itself.
 */
import { readFile } from 'node:fs/promises';
import { dirname, join, relative, resolve } from 'node:path';

/** Imports that mean "this needs a process or a server of its own". */
const serverImport = /^node:child_process$|^child_process$/;

async function importsOf(file: string): Promise<string[]> {
  const text = await readFile(file, 'utf8');
  // Type-only imports are erased: they start nothing.
  return [...text.matchAll(/^\s*(?:import|export)\s(?!type\s)[^'"]*?from\s+'([^']+)'|^\s*import\s+'([^']+)'/gm)].map((m) => (m[1] ?? m[2]) as string);
}

/** True when `file` (absolute) or a test module it imports starts a process. */
async function startsProcess(file: string, seen: Map<string, Promise<boolean>>): Promise<boolean> {
  const known = seen.get(file);
  if (known !== undefined) return known;
  const result = (async () => {
    for (const target of await importsOf(file)) {
      if (serverImport.test(target)) return true;
      // The tests' own modules and the scripts are followed; the service's code starts no process.
      if (!target.startsWith('.')) continue;
      const next = resolve(dirname(file), target.replace(/\.js$/, '.ts'));
      if (!next.includes(join('service', 'src')) && next.endsWith('.ts') && await startsProcess(next, seen)) return true;
    }
    return false;
  })();
  seen.set(file, result);
  return result;
}

/** The unit test files among `files` (paths relative to `root`). */
export async function unitFiles(root: string, files: readonly string[]): Promise<string[]> {
  const seen = new Map<string, Promise<boolean>>();
  const flags = await Promise.all(files.map((file) => startsProcess(join(root, file), seen)));
  return files.filter((_, i) => !flags[i]).map((file) => relative(root, join(root, file)));
}
