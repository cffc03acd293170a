import { readFile, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { generatedFiles } from './outputs.js';

/**
 * `npm run secrets:generate`: rewrites every file the secret catalogue drives that differs
 * from what the catalogue makes. `--check` writes nothing, names the stale files and exits 1
 * when there are any. The project is the one this script is part of, so a copy of the
 * project generates its own files.
 */
const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

export async function staleFiles(projectRoot: string): Promise<Map<string, string>> {
  const stale = new Map<string, string>();
  for (const [path, content] of await generatedFiles(projectRoot)) {
    const current = await readFile(join(projectRoot, path), 'utf8').catch(() => undefined);
    if (current !== content) stale.set(path, content);
  }
  return stale;
}

async function main(check: boolean): Promise<number> {
  const stale = await staleFiles(root);
  if (check) {
    for (const path of stale.keys()) console.error(`secrets:generate: ${path} is stale: run npm run secrets:generate`);
    return stale.size === 0 ? 0 : 1;
  }
  for (const [path, content] of stale) {
    await writeFile(join(root, path), content);
    console.log(`secrets:generate: wrote ${path}`);
  }
  if (stale.size === 0) console.log('secrets:generate: every generated file is up to date');
  return 0;
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  if (args.some((arg) => arg !== '--check')) {
    console.error('usage: tsx scripts/secrets/generate.ts [--check]');
    process.exitCode = 2;
  } else {
    process.exitCode = await main(args.includes('--check')).catch((error: unknown) => {
      console.error(`secrets:generate: ${(error as Error).message}`);
      return 1;
    });
  }
}
