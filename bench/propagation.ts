/**
 * 2. Rotation propagation, agent mode.
 *
 *   node --import tsx bench/propagation.ts [--rotations=30] [--renames=60]
 *
 * (a) End to end: a real bao dev server, the real bao agent with agent-config/ unchanged
 *     (env/dev.hcl: static_secret_render_interval 5s) and the service process (agent mode)
 *     reading the rendered file. Each rotation writes a new KV version of api-keys with the
 *     root token and polls GET /status every 10 ms until it shows that version. Between
 *     rotations a random pause (0–5 s) puts the writes at random phases of the agent's
 *     render cycle. A raw fs.watch on the secrets folder, in this process, timestamps the
 *     agent's rename; /status's secrets.loadedAt is when the service built the snapshot
 *     (both wall clock, same machine), which splits the time into agent and service parts.
 * (b) Rename to snapshot, controlled: the service's AgentFileSource (real chokidar folder
 *     watch, default 25 ms debounce) in this process; a file renamed over the target the way
 *     the agent does, every 250 ms; time from rename() returning to the holder's swap.
 */
import { watch } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { pino } from 'pino';
import { SnapshotHolder } from '../service/src/config/snapshot-holder.js';
import { createLogger } from '../service/src/log/logger.js';
import { AgentFileSource } from '../service/src/secrets/agent-file-source.js';
import { watchFile } from '../service/src/secrets/file-watch.js';
import { prepareAgentDir, startAgent, waitForFile } from '../service/test/support/agent.js';
import { startDevServer, waitForHttp } from '../service/test/support/bao.js';
import { freePort } from '../service/test/support/ports.js';
import { spawnManaged } from '../service/test/support/processes.js';
import { appScope, randomKey, renderedDocument, renderLikeAgent } from '../service/test/support/rendered-secrets.js';
import { tempDir } from '../service/test/support/temp-dirs.js';
import { vaultData } from '../service/test/support/vault-http.js';
import {
  buildService, flag, fmt, machine, machineLine, mdTable, median, percentile, runBenchmark, sleep, verdict, writeResult,
} from './lib/common.js';

const renderIntervalMs = 5000;

interface Status {
  secrets: { loadedAt: string | null; paths: { path: string; version: number }[] };
}

runBenchmark(async () => {
  const rotations = flag('rotations', 30);
  const renames = flag('renames', 60);
  const m = await machine();
  const service = await buildService();

  // ------------------------------------------------------------ (a) end to end
  const server = await startDevServer();
  const agentDir = await prepareAgentDir(server, 'dev');
  const agent = startAgent(server, agentDir);
  await waitForFile(agentDir.renderedFile, agent);
  await waitForFile(agentDir.tokenFile, agent);
  const port = await freePort();
  const adminPort = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const proc = spawnManaged(service.command, service.args, {
    env: {
      PATH: process.env.PATH, NODE_ENV: 'production', SECRETS_MODE: 'agent', APP_ENV: 'dev', PORT: String(port),
      ADMIN_PORT: String(adminPort),
      VAULT_ADDR: server.addr, SECRETS_FILE: agentDir.renderedFile, VAULT_TOKEN_FILE: agentDir.tokenFile,
    },
    logFile: join(agentDir.dir, 'service.log'),
  });
  await waitForHttp(`${url}/readyz`, 200, proc);

  const renameEvents: number[] = [];
  const watcher = watch(agentDir.secretsDir, (_event, name) => {
    if (name === 'app.json') renameEvents.push(Date.now());
  });

  const status = async (): Promise<Status> => {
    const response = await fetch(`http://127.0.0.1:${adminPort}/status`, { signal: AbortSignal.timeout(2000) });
    return (await response.json()) as Status;
  };
  const apiKeysPath = 'secret/data/saas-project/dev/api-keys';
  const samples: { total: number; agent: number; service: number; poll: number }[] = [];
  const deadline = Date.now() + (rotations * 12_000 + 30_000);
  for (let i = 0; i < rotations && Date.now() < deadline; i++) {
    const written = await vaultData<{ version: number }>(server.addr, server.rootToken, 'POST', 'secret/data/saas-project/dev/api-keys',
      { data: { webhook_signing_key: randomKey() } });
    const tWrite = Date.now();
    let seen: Status | undefined;
    const stop = tWrite + 3 * renderIntervalMs + 5000;
    while (Date.now() < stop) {
      const s = await status();
      if (s.secrets.paths.find((p) => p.path === apiKeysPath)?.version === written.version) {
        seen = s;
        break;
      }
      await sleep(10);
    }
    const tSeen = Date.now();
    if (seen === undefined) throw new Error(`rotation ${i + 1}: version ${written.version} not shown within ${stop - tWrite} ms`);
    const loadedAt = Date.parse(seen.secrets.loadedAt ?? '');
    const tRename = renameEvents.find((t) => t >= tWrite) ?? NaN;
    samples.push({ total: tSeen - tWrite, agent: tRename - tWrite, service: loadedAt - tRename, poll: tSeen - loadedAt });
    process.stderr.write(`rotation ${i + 1}: ${tSeen - tWrite} ms (rename→snapshot ${loadedAt - tRename} ms)\n`);
    await sleep(Math.random() * renderIntervalMs);
  }
  watcher.close();
  await proc.stop();
  await agent.stop();
  await server.stop();

  // ------------------------------------------------------------ (b) rename → snapshot, controlled
  const dir = await tempDir('propagation');
  const file = join(dir, 'app.json');
  await renderLikeAgent(file, JSON.stringify(renderedDocument('dev', 1)));
  const holder = new SnapshotHolder();
  const logger = createLogger('info', pino.destination({ dest: '/dev/null', sync: true }));
  const source = new AgentFileSource({ file, scope: appScope('dev'), holder, logger, watchFile });
  source.start();
  await source.firstSnapshot(5000);
  await source.watching();
  const swapDelays: number[] = [];
  let missed = 0;
  for (let version = 2; version < renames + 2; version++) {
    const swapped = new Promise<number>((resolve) => {
      const off = holder.onSwap(() => { off(); resolve(performance.now()); });
      setTimeout(() => { off(); resolve(NaN); }, 5000);
    });
    await renderLikeAgent(file, JSON.stringify(renderedDocument('dev', version)));
    const renamed = performance.now();
    const at = await swapped;
    if (Number.isNaN(at)) missed++;
    else swapDelays.push(at - renamed);
    await sleep(250);
  }
  await source.stop();

  const col = (key: 'total' | 'agent' | 'service' | 'poll') => samples.map((s) => s[key]).filter((v) => Number.isFinite(v));
  const total = col('total');
  const svc = col('service');
  const totalP95 = percentile(total, 95);
  const svcP95 = percentile(svc, 95);
  const renameP95 = percentile(swapDelays, 95);
  const row = (what: string, values: number[]) => [what, values.length, fmt(median(values), 0), fmt(percentile(values, 95), 0),
    fmt(Math.max(...values), 0)];
  const md = [
    '### 2. Rotation propagation (agent mode)',
    '',
    `Machine: ${machineLine(m)}`,
    '',
    `Command: \`node --import tsx bench/propagation.ts --rotations=${rotations} --renames=${renames}\``,
    '',
    `(a) real bao server + bao agent (agent-config/, env/dev.hcl: render interval ${renderIntervalMs / 1000} s) + the service ` +
    `process (${service.how}) in agent mode; a new KV version of api-keys per rotation, /status polled every 10 ms; ` +
    'random 0–5 s pause between rotations. Times in ms.',
    '',
    mdTable(['span', 'n', 'p50', 'p95', 'max'], [
      row('KV write → /status shows it', total),
      row('↳ KV write → agent renames app.json', col('agent')),
      row('↳ rename → service snapshot built (loadedAt)', svc),
      row('↳ snapshot → seen by the 10 ms poll', col('poll')),
    ]),
    '',
    `(b) rename → holder swap, AgentFileSource in process (chokidar folder watch, 25 ms debounce), ${renames} renames ` +
    `250 ms apart: p50 ${fmt(median(swapDelays), 1)} ms, p95 ${fmt(renameP95, 1)} ms, max ${fmt(Math.max(...swapDelays), 1)} ms, ` +
    `${missed} missed (no swap within 5 s).`,
    '',
    mdTable(['target', 'measured', 'result'], [
      [`write → visible p95 ≤ render interval + 200 ms (${renderIntervalMs + 200} ms)`, `${fmt(totalP95, 0)} ms`, verdict(totalP95 <= renderIntervalMs + 200)],
      ['rename → snapshot p95 ≤ 50 ms (end to end, a)', `${fmt(svcP95, 0)} ms`, verdict(svcP95 <= 50)],
      ['rename → snapshot p95 ≤ 50 ms (controlled, b)', `${fmt(renameP95, 1)} ms`, verdict(renameP95 <= 50 && missed === 0)],
    ]),
  ].join('\n');
  await writeResult('propagation', md, { machine: m, rotations: samples, renameToSwapMs: swapDelays, missed, service: service.how });
});
