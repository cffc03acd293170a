/**
 * 5b. A 1,000-key secrets file: load, validate and swap.
 *
 *   node --import tsx bench/file-scale.ts [--iterations=300]
 *
 * The service's schema (service/src/config/secret-schema.ts) names 4 keys in 3 groups and
 * refuses unknown keys, so a 1,000-key rendered file cannot become a snapshot. Measured, in
 * this process, after 50 warm-up iterations each:
 *   (1) the real path on the real 3-group file: read + parseRenderedFile (JSON, sha256,
 *       buildSnapshot with a fresh convict instance, strict validation, deep freeze) + swap
 *   (2) the real path on a 1,000-key rendered file (998 extra keys in database.data):
 *       read + parseRenderedFile until it refuses the file (SecretsFileError)
 *   (3) the same pipeline with a schema that does have 1,000 keys, built here: read, JSON.parse,
 *       sha256, fresh convict(schema), load, validate({allowed: 'strict'}), getProperties,
 *       deep freeze, swap. This is what a service with 1,000 secrets would pay.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import convict from 'convict';
import '../service/src/config/secret-schema.js'; // registers the secret formats with convict
import { SnapshotHolder } from '../service/src/config/snapshot-holder.js';
import { parseRenderedFile, SecretsFileError } from '../service/src/secrets/rendered-file.js';
import { appScope, randomKey, renderedDocument, renderLikeAgent } from '../service/test/support/rendered-secrets.js';
import { tempDir } from '../service/test/support/temp-dirs.js';
import { flag, fmt, machine, machineLine, mdTable, median, percentile, runBenchmark, verdict, writeResult } from './lib/common.js';

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const inner of Object.values(value)) deepFreeze(inner);
  }
  return value;
}

async function timeIt(iterations: number, body: () => Promise<void>): Promise<number[]> {
  for (let i = 0; i < 50; i++) await body();
  const times: number[] = [];
  for (let i = 0; i < iterations; i++) {
    const t0 = performance.now();
    await body();
    times.push(performance.now() - t0);
  }
  return times;
}

runBenchmark(async () => {
  const iterations = flag('iterations', 300);
  const m = await machine();
  const dir = await tempDir('file-scale');
  const holder = new SnapshotHolder();

  // (1) the real 3-group file
  const small = join(dir, 'app.json');
  await renderLikeAgent(small, JSON.stringify(renderedDocument('dev', 1)));
  const smallBytes = (await readFile(small)).length;
  const real = await timeIt(iterations, async () => {
    holder.swap(parseRenderedFile(small, await readFile(small), appScope('dev'), Date.now()));
  });

  // (2) a 1,000-key rendered file through the real code: refused
  const document = renderedDocument('dev', 1) as Record<string, { data: Record<string, unknown> }>;
  const database = document.database;
  if (database === undefined) throw new Error('no database group');
  for (let i = 0; i < 998; i++) database.data[`extra_${String(i).padStart(4, '0')}`] = randomKey();
  const big = join(dir, 'big.json');
  await renderLikeAgent(big, JSON.stringify(document));
  const bigBytes = (await readFile(big)).length;
  let refusal = '';
  let refusalLength = 0;
  const refused = await timeIt(iterations, async () => {
    try {
      parseRenderedFile(big, await readFile(big), appScope('dev'), Date.now());
      throw new Error('a 1,000-key file was accepted');
    } catch (error) {
      if (!(error instanceof SecretsFileError)) throw error;
      refusal = error.reason.slice(0, 60);
      refusalLength = error.message.length;
    }
  });

  // (3) a 1,000-key schema and a 1,000-key file that fits it
  const keys = Array.from({ length: 1000 }, (_, i) => `key_${String(i).padStart(4, '0')}`);
  const schema = { secrets: Object.fromEntries(keys.map((k) => [k, { doc: k, format: 'secret-string', default: '', sensitive: true }])) };
  const wide = join(dir, 'wide.json');
  await renderLikeAgent(wide, JSON.stringify({ secrets: Object.fromEntries(keys.map((k) => [k, randomKey()])) }));
  const wideBytes = (await readFile(wide)).length;
  const wideHolder: { current?: unknown } = {};
  const wideTimes = await timeIt(iterations, async () => {
    const content = await readFile(wide);
    const data = JSON.parse(content.toString('utf8')) as Record<string, unknown>;
    const revision = createHash('sha256').update(content).digest('hex');
    const config = convict(schema, { env: {}, args: [] });
    config.load(data);
    config.validate({ allowed: 'strict' });
    wideHolder.current = deepFreeze({ secrets: config.getProperties(), revision, loadedAt: Date.now() });
  });

  const row = (what: string, bytes: number, t: number[]) => [what, bytes, fmt(median(t), 2), fmt(percentile(t, 95), 2), fmt(Math.max(...t), 2)];
  const wideP95 = percentile(wideTimes, 95);
  const refusedP95 = percentile(refused, 95);
  const md = [
    '### 5b. A 1,000-key secrets file',
    '',
    `Machine: ${machineLine(m)}`,
    '',
    `Command: \`node --import tsx bench/file-scale.ts --iterations=${iterations}\``,
    '',
    `In process, ${iterations} iterations after 50 warm-up; ms. The service's strict schema refuses unknown keys, so ` +
    'a 1,000-key file only exercises its refusal; row 3 runs the same steps with a 1,000-key convict schema built by the benchmark.',
    '',
    mdTable(['what', 'file bytes', 'p50', 'p95', 'max'], [
      row('(1) real 3-group file: read + parseRenderedFile + swap', smallBytes, real),
      row(`(2) 1,000-key file, real code: read + refused ("${refusal}…")`, bigBytes, refused),
      row('(3) 1,000-key schema: read + parse + hash + convict validate + freeze + swap', wideBytes, wideTimes),
    ]),
    '',
    `The refusal (row 2) names every unknown key: its message, which the service logs as one line, is ${refusalLength} characters.`,
    '',
    mdTable(['target', 'measured', 'result'], [
      ['1,000 keys: load, validate and swap ≤ 20 ms p95 (row 3)', `${fmt(wideP95, 2)} ms`, verdict(wideP95 <= 20)],
      ['1,000-key file refused by the real code ≤ 20 ms p95 (row 2)', `${fmt(refusedP95, 2)} ms`, verdict(refusedP95 <= 20)],
    ]),
  ].join('\n');
  await writeResult('file-scale', md, { machine: m, iterations, refusalLength, real, refused, wide: wideTimes });
});
