/**
 * Runs every benchmark, one after the other, each in its own process, and prints the
 * markdown sections they wrote (bench/results/<name>.md) as one summary, also written to
 * bench/results/summary.md. About 23 minutes on a 2-core machine.
 *
 *   node --import tsx bench/run-all.ts [--only=overhead,startup]
 *
 * Each benchmark's output goes to bench/results/<name>.log; a failed benchmark is reported
 * and the others still run.
 */
import { spawn } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { benchDir, machine, machineLine, resultsDir } from './lib/common.js';

const all = ['overhead', 'overhead-chain', 'propagation', 'startup', 'vault-load', 'scale', 'file-scale', 'memory', 'kill-switch', 'credential-rollover', 'front-door'];
/** Each benchmark is stopped after 6 minutes, these after their own limit. */
const limitsMs: Record<string, number> = { 'credential-rollover': 10 * 60_000 };
const only = process.argv.find((a) => a.startsWith('--only='))?.slice('--only='.length).split(',');
const names = only === undefined ? all : all.filter((n) => only.includes(n));

/** One benchmark as a child process, killed if it runs past `limitMs`. */
function runOne(name: string, limitMs: number): Promise<number | string> {
  const log = createWriteStream(join(resultsDir, `${name}.log`));
  const child = spawn(process.execPath, ['--import', 'tsx', join(benchDir, `${name}.ts`)], { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout.pipe(log, { end: false });
  child.stderr.pipe(log, { end: false });
  const timer = setTimeout(() => child.kill('SIGTERM'), limitMs);
  return new Promise((resolve) => {
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      log.end(() => { resolve(code ?? signal ?? 'unknown'); });
    });
  });
}

await mkdir(resultsDir, { recursive: true });
const started = Date.now();
const sections: string[] = [`## Results\n\nMachine: ${machineLine(await machine())}`];
for (const name of names) {
  const t0 = Date.now();
  process.stderr.write(`${name}…\n`);
  const code = await runOne(name, limitsMs[name] ?? 6 * 60_000);
  process.stderr.write(`${name}: exit ${String(code)} after ${Math.round((Date.now() - t0) / 1000)} s\n`);
  if (code === 0) sections.push((await readFile(join(resultsDir, `${name}.md`), 'utf8')).trim());
  else sections.push(`### ${name}\n\nFailed (exit ${String(code)}): see bench/results/${name}.log`);
}
sections.push(`All benchmarks took ${Math.round((Date.now() - started) / 1000)} s.`);
const summary = `${sections.join('\n\n')}\n`;
await writeFile(join(resultsDir, 'summary.md'), summary);
process.stdout.write(summary);
