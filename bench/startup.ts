/**
 * 3. Start-up: process start to GET /readyz 200, agent mode and SDK mode; the agent's own first
 * render separately; and parallel KV reads with 3 and with 30 paths.
 *
 *   node --import tsx bench/startup.ts [--rounds=8] [--read-rounds=20]
 *
 * The service reads a fixed set of 3 groups (database, api-keys, app), so 30 paths cannot be
 * given to the real service without changing it. The 3-vs-30 comparison therefore times
 * what SDK start-up does with its paths, in this process: an AppRole login with
 * nodeVaultApi, then every path read in parallel (Promise.all of readKv, as loginAndLoad).
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { secretPath } from '../service/src/config/secret-schema.js';
import { nodeVaultApi } from '../service/src/vault/vault-api.js';
import { prepareAgentDir, startAgent, waitForFile } from '../service/test/support/agent.js';
import { startDevServer, type DevServer } from '../service/test/support/bao.js';
import { freePort } from '../service/test/support/ports.js';
import { spawnManaged, type ManagedProcess } from '../service/test/support/processes.js';
import { randomKey } from '../service/test/support/rendered-secrets.js';
import { tempDir } from '../service/test/support/temp-dirs.js';
import { vaultData } from '../service/test/support/vault-http.js';
import {
  buildService, createSecretId, flag, fmt, machine, machineLine, mdTable, median, percentile, roleId, runBenchmark, sleep,
  verdict, writeResult,
} from './lib/common.js';

/** Spawns `command` and polls `url` every 5 ms; ms from spawn to the first 200. */
async function timeToReady(command: string, args: string[], env: NodeJS.ProcessEnv, url: string, logFile: string): Promise<number> {
  const started = performance.now();
  const proc: ManagedProcess = spawnManaged(command, args, { env, logFile });
  try {
    while (performance.now() - started < 30_000) {
      if (proc.child.exitCode !== null) throw new Error(`exited before ready:\n${await proc.log()}`);
      try {
        const response = await fetch(url, { signal: AbortSignal.timeout(1000) });
        await response.body?.cancel();
        if (response.status === 200) return performance.now() - started;
      } catch { /* not listening yet */ }
      await sleep(5);
    }
    throw new Error(`${url} not ready within 30 s:\n${await proc.log()}`);
  } finally {
    await proc.stop();
  }
}

async function timeFirstRender(server: DevServer): Promise<number> {
  const agentDir = await prepareAgentDir(server, 'dev');
  const started = performance.now();
  const agent = startAgent(server, agentDir);
  try {
    await waitForFile(agentDir.renderedFile, agent);
    return performance.now() - started;
  } finally {
    await agent.stop();
  }
}

runBenchmark(async () => {
  const rounds = flag('rounds', 8);
  const readRounds = flag('read-rounds', 20);
  const m = await machine();
  const service = await buildService();
  const server = await startDevServer();
  const dir = await tempDir('startup');

  // One agent keeps rendering for the agent-mode service starts.
  const agentDir = await prepareAgentDir(server, 'dev');
  const agent = startAgent(server, agentDir);
  await waitForFile(agentDir.renderedFile, agent);
  await waitForFile(agentDir.tokenFile, agent);
  const role = await roleId(server);
  await writeFile(join(dir, 'role-id'), role);

  // ADMIN_PORT 0: each instance its own operator's port, unused here.
  const base = { PATH: process.env.PATH, NODE_ENV: 'production', APP_ENV: 'dev', VAULT_ADDR: server.addr, LOG_LEVEL: 'warn', ADMIN_PORT: '0' };
  const times = { agent: [] as number[], sdk: [] as number[], node: [] as number[], render: [] as number[] };
  for (let round = 0; round < rounds; round++) {
    let port = await freePort();
    times.agent.push(await timeToReady(service.command, service.args, {
      ...base, SECRETS_MODE: 'agent', PORT: String(port), SECRETS_FILE: agentDir.renderedFile, VAULT_TOKEN_FILE: agentDir.tokenFile,
    }, `http://127.0.0.1:${port}/readyz`, join(dir, `agent-${round}.log`)));
    port = await freePort();
    await writeFile(join(dir, 'secret-id'), await createSecretId(server));
    times.sdk.push(await timeToReady(service.command, service.args, {
      ...base, SECRETS_MODE: 'sdk', PORT: String(port), VAULT_ROLE_ID_FILE: join(dir, 'role-id'),
      VAULT_SECRET_ID_FILE: join(dir, 'secret-id'),
    }, `http://127.0.0.1:${port}/readyz`, join(dir, `sdk-${round}.log`)));
    port = await freePort();
    times.node.push(await timeToReady(process.execPath,
      ['-e', `require('node:http').createServer((q, s) => s.end('ok')).listen(${port}, '127.0.0.1')`],
      { PATH: process.env.PATH }, `http://127.0.0.1:${port}/`, join(dir, `node-${round}.log`)));
    if (round < Math.min(rounds, 5)) times.render.push(await timeFirstRender(server));
    process.stderr.write(`round ${round + 1}: agent ${fmt(times.agent.at(-1) ?? NaN, 0)} ms, sdk ${fmt(times.sdk.at(-1) ?? NaN, 0)} ms\n`);
  }
  await agent.stop();

  // 3 vs 30 paths: login + parallel reads, alternating.
  const extra = Array.from({ length: 30 }, (_, i) => `secret/data/saas-project/dev/bench-${String(i).padStart(2, '0')}`);
  for (const path of extra) {
    await vaultData(server.addr, server.rootToken, 'POST', path, { data: { value: randomKey() } });
  }
  const three = (['database', 'api-keys', 'app'] as const).map((g) => secretPath({ appName: 'saas', appEnv: 'dev' }, g));
  const api = nodeVaultApi(server.addr);
  const reads = { 3: { total: [] as number[], reads: [] as number[] }, 30: { total: [] as number[], reads: [] as number[] } };
  const sequential30: number[] = [];
  for (let round = 0; round < readRounds; round++) {
    for (const n of round % 2 === 0 ? [3, 30] as const : [30, 3] as const) {
      const secretId = await createSecretId(server);
      const paths = n === 3 ? three : extra;
      const t0 = performance.now();
      const login = await api.loginAppRole(role, secretId);
      const t1 = performance.now();
      await Promise.all(paths.map((p) => api.readKv(p, login.token)));
      const t2 = performance.now();
      reads[n].total.push(t2 - t0);
      reads[n].reads.push(t2 - t1);
    }
    // Context: the same 30 reads one after the other, to see whether parallelism helps at all here.
    const login = await api.loginAppRole(role, await createSecretId(server));
    const t0 = performance.now();
    for (const p of extra) await api.readKv(p, login.token);
    sequential30.push(performance.now() - t0);
  }
  await server.stop();

  const ratioLoad = median(reads[30].total) / median(reads[3].total);
  const sdkMedian = median(times.sdk);
  const extrapolated = (sdkMedian + median(reads[30].reads) - median(reads[3].reads)) / sdkMedian;
  const row = (what: string, v: number[]) => [what, v.length, fmt(median(v), 0), fmt(percentile(v, 95), 0), fmt(Math.min(...v), 0)];
  const md = [
    '### 3. Start-up',
    '',
    `Machine: ${machineLine(m)}`,
    '',
    `Command: \`node --import tsx bench/startup.ts --rounds=${rounds} --read-rounds=${readRounds}\``,
    '',
    `Process spawn → first GET /readyz 200 (polled every 5 ms), the service as ${service.how}, LOG_LEVEL=warn; the modes ` +
    'alternate within each round. Agent mode starts with the agent already rendering; the agent\'s own first render ' +
    '(spawn → app.json exists, AppRole login and the wrapped secret id\'s unwrap included) is timed separately. Times in ms.',
    '',
    mdTable(['what', 'n', 'median', 'p95', 'min'], [
      row('service, agent mode (file already rendered)', times.agent),
      row('service, SDK mode (login + 3 reads)', times.sdk),
      row('bao agent: spawn → first render', times.render),
      row('context: bare `node -e` HTTP server', times.node),
    ]),
    '',
    `Login + parallel reads (nodeVaultApi, in process, ${readRounds} rounds alternating): ` +
    `3 paths median ${fmt(median(reads[3].total), 1)} ms (reads alone ${fmt(median(reads[3].reads), 1)} ms), ` +
    `30 paths median ${fmt(median(reads[30].total), 1)} ms (reads alone ${fmt(median(reads[30].reads), 1)} ms); ` +
    `for context, the same 30 reads one after another: median ${fmt(median(sequential30), 1)} ms.`,
    '',
    mdTable(['target', 'measured', 'result'], [
      ['SDK load, 30 paths ≤ 1.5× 3 paths (login + parallel reads)', `${fmt(ratioLoad, 2)}×`, verdict(ratioLoad <= 1.5)],
      ['SDK start-up, 30 paths ≤ 1.5× 3 paths (measured start + the extra reads)', `${fmt(extrapolated, 3)}×`, verdict(extrapolated <= 1.5)],
    ]),
  ].join('\n');
  await writeResult('startup', md, { machine: m, service: service.how, times, reads, sequential30 });
});
