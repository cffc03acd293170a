/**
 * 5c. Memory added by the rendered-file watcher and the token watcher, and by the
 * operator's port.
 *
 *   node --import tsx bench/memory.ts [--rounds=4] [--warmup=10000]
 *
 * Two kinds of process (bench/memory-child.ts, node --expose-gc), both the service's app
 * listening with a loaded snapshot and every module imported: "base" without the watcher and
 * the loop, "watch-loop" with AgentFileSource (chokidar folder watch, 2 s stat backstop), the
 * token sink watch, and the agent token's watcher checking a real token against a real bao dev server
 * every second. While they warm up, this process renames a new rendered file over the watched
 * one every second (as the agent would). After the warm-up, three full GCs, then RSS.
 * A third kind, "admin", is "base" plus the operator's port (admin listener and Prometheus
 * metrics), which this process scrapes every second.
 * Rounds alternate the kinds; the figures are differences of the medians.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startDevServer } from '../service/test/support/bao.js';
import { spawnManaged } from '../service/test/support/processes.js';
import { renderedDocument, renderLikeAgent } from '../service/test/support/rendered-secrets.js';
import { tempDir } from '../service/test/support/temp-dirs.js';
import { benchDir, flag, fmt, machine, machineLine, mdTable, median, runBenchmark, sleep, verdict, writeResult } from './lib/common.js';

interface Measured { rss: number; heapUsed: number; external: number }

runBenchmark(async () => {
  const rounds = flag('rounds', 4);
  const warmup = flag('warmup', 10_000);
  const m = await machine();
  const server = await startDevServer();
  const dir = await tempDir('memory');
  const secretsDir = join(dir, 'secrets');
  await mkdir(secretsDir);

  const secretsFile = join(secretsDir, 'app.json');
  const tokenFile = join(secretsDir, 'token');
  const response = await fetch(`${server.addr}/v1/auth/token/create`, {
    method: 'POST', headers: { 'X-Vault-Token': server.rootToken }, body: JSON.stringify({ ttl: '1h', policies: ['default'], no_parent: true }),
  });
  await writeFile(tokenFile, ((await response.json()) as { auth: { client_token: string } }).auth.client_token);
  let version = 1;
  await renderLikeAgent(secretsFile, JSON.stringify(renderedDocument('dev', version)));

  const variants = ['base', 'watch-loop', 'admin'] as const;
  const results: Record<(typeof variants)[number], Measured[]> = { base: [], 'watch-loop': [], admin: [] };
  for (let round = 0; round < rounds; round++) {
    for (const variant of round % 2 === 0 ? variants : [...variants].reverse()) {
      const proc = spawnManaged(process.execPath, ['--expose-gc', '--import', 'tsx', join(benchDir, 'memory-child.ts'), variant, String(warmup)], {
        env: { PATH: process.env.PATH, NODE_ENV: 'production', BENCH_SECRETS_FILE: secretsFile, BENCH_TOKEN_FILE: tokenFile, BENCH_VAULT_ADDR: server.addr },
        logFile: join(dir, `${variant}-${round}.log`),
      });
      const deadline = Date.now() + warmup + 30_000;
      let measured: Measured | undefined;
      while (measured === undefined && Date.now() < deadline) {
        await sleep(1000);
        await renderLikeAgent(secretsFile, JSON.stringify(renderedDocument('dev', ++version)));
        const output = (await proc.log()).split('\n');
        // Prometheus' part: one scrape a second.
        const admin = output.find((l) => l.startsWith('{"admin"'));
        if (admin !== undefined) await fetch(`${(JSON.parse(admin) as { admin: string }).admin}/metrics`).then((r) => r.text(), () => '');
        const line = output.find((l) => l.startsWith('{"result"'));
        if (line !== undefined) measured = (JSON.parse(line) as { result: Measured }).result;
        if (proc.child.exitCode !== null && measured === undefined) throw new Error(`child failed:\n${await proc.log()}`);
      }
      await proc.stop();
      if (measured === undefined) throw new Error(`no measurement from ${variant}`);
      results[variant].push(measured);
      process.stderr.write(`round ${round + 1} ${variant}: rss ${fmt(measured.rss / 2 ** 20, 1)} MiB\n`);
    }
  }
  await server.stop();

  const mib = (v: (typeof variants)[number], k: keyof Measured) => median(results[v].map((r) => r[k])) / 2 ** 20;
  const added = mib('watch-loop', 'rss') - mib('base', 'rss');
  const adminAdded = mib('admin', 'rss') - mib('base', 'rss');
  const md = [
    '### 5c. Memory of the watcher and the loop',
    '',
    `Machine: ${machineLine(m)}`,
    '',
    `Command: \`node --import tsx bench/memory.ts --rounds=${rounds} --warmup=${warmup}\``,
    '',
    `Each process warmed up ${warmup / 1000} s (a new render renamed in every second), then 3 full GCs; medians of ` +
    `${rounds} alternating rounds; MiB. Both run under tsx, which adds the same loader overhead to both.`,
    '',
    mdTable(['process', 'RSS', 'heap used', 'external'], variants.map((v) => [
      v, fmt(mib(v, 'rss'), 1), fmt(mib(v, 'heapUsed'), 1), fmt(mib(v, 'external'), 1),
    ])),
    '',
    mdTable(['target', 'measured', 'result'], [
      ['RSS added by the watcher and the loop ≤ 10 MB', `${fmt(added, 1)} MiB`, verdict(added * 1.048576 <= 10)],
      ['RSS added by the admin listener and the metrics, scraped every second (no target)', `${fmt(adminAdded, 1)} MiB`, '—'],
    ]),
  ].join('\n');
  await writeResult('memory', md, { machine: m, rounds, warmup, results });
});
