/**
 * `npm test`: every test file, five mocha processes at a time. Most of the suite waits on
 * TTLs and check intervals rather than on the two cores, so files run side by side; each file
 * is a mocha process of its own (its own servers, temp folders and secret scan), except the
 * files on the Docker engine, which run in one worker, one process after the other: the compose
 * files, then the Kubernetes files (one cluster at a time, its images from that engine), then the
 * native sidecar's again against HashiCorp Vault. The suite starts the engine before them and
 * stops it after, so that no process of the chain stops it under the next. The contract tests
 * (what the project relies on Vault for) run twice, against OpenBao and against HashiCorp Vault
 * (TEST_VAULT_SERVER, support/bao.ts).
 * A file's output is printed whole when it ends, so it reads as mocha's own; the last lines
 * add up every file's counts as mocha prints them.
 */
import { spawn, spawnSync } from 'node:child_process';
import { readdir } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { EngineError, startEngine, stopEngine, type StartedEngine } from '../../../scripts/engine/engine.js';
import { ensureImages } from '../../../scripts/engine/images.js';
import { vaultServers } from './bao.js';

// Five: with four, the files' summed time (3,651 s in the CI run of 2026-12-06, 83 files, the
// SDK max-TTL test on the shipped durations / 30) set the wall time at 16 minutes, over the 15
// the suite must hold to on 2 cores; the engine's chain holds one worker for most of the run.
const workers = 5;
const testRoot = 'service/test';
const composeFiles = /^service\/test\/compose\/engine-.*\.test\.ts$/;
const clusterFiles = /^service\/test\/kubernetes\/.*\.test\.ts$/;
const onEngine = (file: string) => composeFiles.test(file) || clusterFiles.test(file);
// The longest files go first so that none of them starts last and leaves the others idle;
// the order changes only the wall time (`npm run test:timings` measures each file).
const slowFirst = [
  'service/test/prod/soak.test.ts',
  'service/test/reliability/faults.test.ts',
  'service/test/vault/service-token-bao.test.ts',
  'service/test/prod/production.test.ts',
  'service/test/vault/agent-token-bao.test.ts',
  'service/test/prod/admin-access.test.ts',
  'service/test/reliability/dynamic-credentials.test.ts',
];

// Bootstrap and policies, agent mode, SDK mode, the token lifecycle and the kill switch (its lock
// and reopen beside a second application too), dynamic database credentials, the production
// path, and the sign-in through each server's OpenID Connect provider: run against each server.
const contract = [
  'service/test/scripts/bootstrap.test.ts',
  'service/test/policies/policies.test.ts',
  'service/test/agent-config/agent.test.ts',
  'service/test/main.test.ts',
  'service/test/vault/service-token-bao.test.ts',
  'service/test/vault/agent-token-bao.test.ts',
  'service/test/vault/agent-overdue-bao.test.ts',
  'service/test/agent-config/render-failures-bao.test.ts',
  'service/test/reliability/dynamic-credentials.test.ts',
  'service/test/prod/production.test.ts',
  'service/test/prod/admin-access.test.ts',
  'service/test/scripts/shared-vault.test.ts',
  'service/test/http/auth-routes.test.ts',
];
// Of the Kubernetes files, those that run against both servers (after the others, in their worker):
// the native sidecar's, the kill switch among them; the Service's and k8s:up's files run no Vault
// of the server under test.
const engineContract = ['service/test/kubernetes/native-sidecar.test.ts'];
type Server = keyof typeof vaultServers;

type Counts = Record<'passing' | 'pending' | 'failing', number>;
interface Unit { files: readonly string[]; server: Server }
interface Outcome { unit: Unit; code: number; counts: Counts; counted: boolean; output: string; seconds: number }

function runMocha(unit: Unit): Promise<Outcome> {
  const started = Date.now();
  // --exit: a file whose test failed may leave a load or a poll running (a dead service's port
  // asked forever); once mocha has reported, the process ends rather than holding up the suite.
  const child = spawn(process.execPath, ['node_modules/mocha/bin/mocha.js', '--exit', ...unit.files], {
    stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, TEST_VAULT_SERVER: unit.server },
  });
  const chunks: Buffer[] = [];
  child.stdout.on('data', (chunk: Buffer) => chunks.push(chunk));
  child.stderr.on('data', (chunk: Buffer) => chunks.push(chunk));
  return new Promise((resolve) => {
    child.on('close', (code, signal) => {
      const output = Buffer.concat(chunks).toString('utf8');
      const counts: Counts = { passing: 0, pending: 0, failing: 0 };
      let counted = false;
      for (const match of output.matchAll(/^ *(\d+) (passing|pending|failing)\b/gm)) {
        counts[match[2] as keyof Counts] = Number(match[1]);
        counted = true;
      }
      resolve({ unit, code: code ?? (signal === null ? 1 : 128), counts, counted, output, seconds: (Date.now() - started) / 1000 });
    });
  });
}

const all = (await readdir(testRoot, { recursive: true }))
  .filter((file) => file.endsWith('.test.ts')).map((file) => join(testRoot, file)).sort();
const compose = all.filter((file) => composeFiles.test(file));
const clusters = all.filter((file) => clusterFiles.test(file));
const rest = all.filter((file) => !onEngine(file));
const units = [
  ...slowFirst.filter((file) => rest.includes(file)).map((file) => [file]),
  ...rest.filter((file) => !slowFirst.includes(file)).map((file) => [file]),
].filter((files) => files.length > 0).map((files): Unit => ({ files, server: 'bao' }));
// Each entry runs its units one after the other in one worker: the compose files, the Kubernetes
// files, then those of them that run against HashiCorp Vault too. One chain, not two side by
// side: the CI run of 2026-12-06 with the compose and the cluster chains together loaded the two
// cores so that a bao server took 20 s to start and a kubelet missed its lease.
const queue: Unit[][] = [
  [{ files: compose, server: 'bao' as const }, { files: clusters, server: 'bao' as const }, { files: engineContract, server: 'vault' as const }],
  ...units.map((unit) => contract.includes(unit.files[0] ?? '') ? [unit, { ...unit, server: 'vault' as const }] : [unit]).flat().map((unit) => [unit]),
].map((chain) => chain.filter((unit) => unit.files.length > 0)).filter((chain) => chain.length > 0);
const missing = [...contract, ...engineContract].filter((file) => !all.includes(file));
if (missing.length > 0) throw new Error(`run-suite.ts names contract files that do not exist: ${missing.join(', ')}`);

for (const { name, bin } of Object.values(vaultServers)) {
  const version = spawnSync(bin, ['version'], { encoding: 'utf8' });
  process.stdout.write(`  ${name}: ${version.status === 0 ? version.stdout.trim() : `not installed (${relative(process.cwd(), bin)})`}\n`);
}

/**
 * The engine the engine's chain uses, with its stand-in images, started once here for its three
 * processes; undefined when it was running already or cannot run (the files then say why, as
 * when run alone).
 */
async function startSharedEngine(): Promise<StartedEngine | undefined> {
  if (compose.length === 0 && clusters.length === 0) return undefined;
  const say = (line: string) => process.stdout.write(`  engine: ${line}\n`);
  const notStarted = (error: unknown) => {
    if (!(error instanceof EngineError)) throw error;
    say(`not made ready by the suite (${error.message}); the engine's files say why`);
  };
  let engine: StartedEngine;
  try {
    engine = await startEngine(say);
  } catch (error) {
    notStarted(error);
    return undefined;
  }
  await ensureImages(engine, say).catch(notStarted);
  return engine.startedNow ? engine : undefined;
}

const started = Date.now();
const sharedEngine = await startSharedEngine();
const outcomes: Outcome[] = [];
await Promise.all(Array.from({ length: workers }, async () => {
  for (let chain = queue.shift(); chain !== undefined; chain = queue.shift()) {
    for (const unit of chain) {
      const outcome = await runMocha(unit);
      outcomes.push(outcome);
      const both = unit.server === 'vault' || contract.includes(unit.files[0] ?? '');
      const against = both ? `, against ${vaultServers[unit.server].name}` : '';
      process.stdout.write(`\n── ${unit.files.join(', ')}${against} (${outcome.seconds.toFixed(0)} s)\n${outcome.output}`);
    }
  }
}));

if (sharedEngine !== undefined) await stopEngine(() => undefined, sharedEngine.paths);

const total = (key: keyof Counts) => outcomes.reduce((sum, outcome) => sum + outcome.counts[key], 0);
// A file that ended without mocha's counts (it did not load, or was killed) is a failure mocha never counted.
const uncounted = outcomes.filter((outcome) => !outcome.counted || (outcome.code !== 0 && outcome.counts.failing === 0));
const failing = total('failing') + uncounted.length;
const wallSeconds = Math.round((Date.now() - started) / 1000);
const minutes = Math.round(wallSeconds / 60);
// CI shows only the end of the output: each failure is repeated there, as mocha described it.
for (const outcome of outcomes.filter((each) => each.counts.failing > 0)) {
  const failures = outcome.output.slice(outcome.output.search(/^ *\d+ failing\b/m)).split('\n').slice(1, 41);
  process.stdout.write(`\n── failed in ${outcome.unit.files.join(', ')} (${vaultServers[outcome.unit.server].name}):\n${failures.join('\n')}\n`);
}
// Mocha's minutes are rounded: the seconds say whether the suite held to its 15 minutes.
process.stdout.write(`\n  all ${all.length} files (${contract.length + engineContract.length} of them against both servers), ${workers} at a time, in ${wallSeconds} s:\n`);
for (const outcome of uncounted) process.stdout.write(`  ${outcome.unit.files.join(', ')} (${vaultServers[outcome.unit.server].name}) ended (exit ${outcome.code}) without counting a failure\n`);
process.stdout.write(`  ${total('passing')} passing (${minutes}m)\n`);
if (total('pending') > 0) process.stdout.write(`  ${total('pending')} pending\n`);
if (failing > 0) process.stdout.write(`  ${failing} failing\n`);
process.exitCode = failing > 0 ? 1 : 0;
