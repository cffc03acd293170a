/**
 * `npm run test:unit`: the test files that need no server (unit-files.ts says which), in one
 * mocha process: the developer's inner loop. `npm test` still runs every file.
 */
import { spawn } from 'node:child_process';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { repoRoot } from './repo-root.js';
import { unitFiles } from './unit-files.js';

const all = (await readdir(join(repoRoot, 'service/test'), { recursive: true }))
  .filter((file) => file.endsWith('.test.ts')).map((file) => join('service/test', file)).sort();
const files = await unitFiles(repoRoot, all);
process.stdout.write(`  ${files.length} of ${all.length} test files need no server\n`);
const child = spawn(process.execPath, ['node_modules/mocha/bin/mocha.js', ...files, ...process.argv.slice(2)], { cwd: repoRoot, stdio: 'inherit' });
child.on('close', (code, signal) => { process.exitCode = code ?? (signal === null ? 1 : 128); });
