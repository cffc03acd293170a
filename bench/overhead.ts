/**
 * 1. Request overhead: GET /readyz on a plain Koa app vs. the service's app (gate, snapshot
 * lookup, logging), and the service with its token watcher checking every second; and the data
 * route, GET /api/projects with a session on a real PostgreSQL, on the service vs. the same
 * route in a plain Koa app whose secrets come from environment variables.
 *
 *   node --import tsx bench/overhead.ts [--rounds=6] [--seconds=5] [--connections=10] [--pin=1]
 *
 * Each variant runs in its own child process (bench/overhead-server.ts); autocannon runs in
 * this one. Rounds alternate the variants (A B C D, then D C B A, ...) so that the noise of a
 * shared machine falls on all of them alike; ratios are ratios of the per-variant medians.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { startDevServer } from '../service/test/support/bao.js';
import { freePort } from '../service/test/support/ports.js';
import { tempDir } from '../service/test/support/temp-dirs.js';
import { writeFile } from 'node:fs/promises';
import { flag, fmt, machine, machineLine, mdTable, runBenchmark, verdict, writeResult } from './lib/common.js';
import { dataPath, prepareDataRoute } from './lib/data-route.js';
import { loadVariants } from './lib/variants.js';

const variants = [
  'plain', 'plain-log', 'plain-log-helmet', 'service-silent', 'service', 'service-b', 'service-loop', 'service-scraped', 'data', 'env-secrets',
] as const;
type Variant = (typeof variants)[number];
const dataVariants: readonly Variant[] = ['data', 'env-secrets'];

runBenchmark(async () => {
  const rounds = flag('rounds', 6);
  const seconds = flag('seconds', 4);
  const connections = flag('connections', 10);
  // --pin=1: the load generator (this process, every thread) on CPU 0 and each server on CPU 1,
  // so that neither takes the other's core in the middle of a round.
  const pin = flag('pin', 0) === 1;
  if (pin) {
    const pinned = spawnSync('taskset', ['-a', '-p', '-c', '0', String(process.pid)], { encoding: 'utf8' });
    if (pinned.status !== 0) throw new Error(`--pin=1: taskset could not pin the load generator to CPU 0: ${pinned.stderr.trim()}`);
  }
  const m = await machine();

  const server = await startDevServer();
  const dir = await tempDir('overhead');
  const tokenFile = join(dir, 'token');
  await writeFile(tokenFile, await createToken(server.addr, server.rootToken));

  const data = await prepareDataRoute(dir);

  const adminPort = await freePort();
  const run = await loadVariants(variants, {
    rounds, seconds, connections, dir, adminPort, ...(pin ? { serverCpu: 1 } : {}), env: { BENCH_VAULT_ADDR: server.addr, BENCH_TOKEN_FILE: tokenFile, ...data.env },
    target: (variant) => dataVariants.includes(variant) ? { path: dataPath, requests: data.requests } : { path: '/readyz' },
    // Prometheus' part for the scraped variant: GET /metrics every second while the load runs.
    during: (variant) => {
      if (variant !== 'service-scraped') return undefined;
      const scraping = setInterval(() => { void fetch(`http://127.0.0.1:${adminPort}/metrics`).then((r) => r.text(), () => ''); }, 1000);
      return () => { clearInterval(scraping); };
    },
  });
  const { results } = run;
  const stat = (v: Variant) => run.stat(v);
  const s = Object.fromEntries(variants.map((v) => [v, stat(v)])) as Record<Variant, ReturnType<typeof stat>>;
  const roundRatios = (a: Variant, b: Variant, key: 'rps' | 'p99') => run.roundRatios(a, b, key);
  const range = (values: number[]) => `${fmt(Math.min(...values), 3)}–${fmt(Math.max(...values), 3)}`;

  const thr = s.service.rps / s.plain.rps;
  const p99 = s.service.p99 / s.plain.p99;
  const loopThr = s['service-loop'].rps / s.service.rps;
  const logRatio = s.service.rps / s['service-silent'].rps;
  const scrapeRatio = s['service-scraped'].rps / s.service.rps;
  const loopP99 = s['service-loop'].p99 / s.service.p99;
  const dataThr = s.data.rps / s['env-secrets'].rps;
  const dataP99 = s.data.p99 / s['env-secrets'].p99;
  const md = [
    '### 1. Request overhead',
    '',
    `Machine: ${machineLine(m)}`,
    '',
    `Command: \`node --import tsx bench/overhead.ts --rounds=${rounds} --seconds=${seconds} --connections=${connections}${pin ? ' --pin=1' : ''}\`` +
    (pin ? ' (the load generator on CPU 0, each server on CPU 1; PostgreSQL and Vault on either)' : ''),
    '',
    `GET /readyz (passes every step: request id, errors, log, headers, drain, gate, snapshot, probes), autocannon ${connections} connections, no pipelining, ${rounds} rounds of ${seconds} s per variant, ` +
    'variants alternating (forward, then reverse order); each server in its own process, logs to /dev/null through the service\'s logger (pino\'s asynchronous destination). ' +
    `\`data\` and \`env-secrets\`: GET ${dataPath} with a session (${data.requests.length} tenants' cookies in turn; the session's query and the page's on a real PostgreSQL).`,
    '',
    mdTable(['variant', 'req/s (median)', 'p50 ms', 'p99 ms', 'errors + non-2xx'], variants.map((v) => [
      v, fmt(s[v].rps, 0), fmt(s[v].p50, 3), fmt(s[v].p99, 3), s[v].errors,
    ])),
    '',
    mdTable(['comparison', 'measured', 'per-round range', 'target', 'result'], [
      ['service / plain throughput', fmt(thr, 3), range(roundRatios('service', 'plain', 'rps')), '≥ 0.70', verdict(thr >= 0.70)],
      ['service / plain p99', fmt(p99, 3), range(roundRatios('service', 'plain', 'p99')), '≤ 1.3', verdict(p99 <= 1.3)],
      ['data / env-secrets throughput', fmt(dataThr, 3), range(roundRatios('data', 'env-secrets', 'rps')), '≥ 0.90', verdict(dataThr >= 0.90)],
      ['data / env-secrets p99', fmt(dataP99, 3), range(roundRatios('data', 'env-secrets', 'p99')), '≤ 1.2', verdict(dataP99 <= 1.2)],
      ...(['plain-log', 'plain-log-helmet', 'service-silent'] as const).map((v) => [
        `${v} / plain throughput (attribution)`, fmt(s[v].rps / s.plain.rps, 3), range(roundRatios(v, 'plain', 'rps')), '—', '—']),
      ['service / service-silent throughput (cost of the request log)', fmt(logRatio, 3),
        range(roundRatios('service', 'service-silent', 'rps')), '≥ 0.90 (cost ≤ 10 %)', verdict(logRatio >= 0.90)],
      ['service-scraped / service throughput (GET /metrics every second)', fmt(scrapeRatio, 3),
        range(roundRatios('service-scraped', 'service', 'rps')), '≥ 0.98 (cost ≤ 2 %)', verdict(scrapeRatio >= 0.98)],
      ['service-b / service throughput (A/A control: noise floor)', fmt(s['service-b'].rps / s.service.rps, 3),
        range(roundRatios('service-b', 'service', 'rps')), '≈ 1', '—'],
      ['service-b / service p99 (A/A control: noise floor)', fmt(s['service-b'].p99 / s.service.p99, 3),
        range(roundRatios('service-b', 'service', 'p99')), '≈ 1', '—'],
      ['loop 1 s / service throughput', fmt(loopThr, 3), range(roundRatios('service-loop', 'service', 'rps')),
        'no measurable change', verdict(Math.abs(loopThr - 1) <= 0.02)],
      ['loop 1 s / service p99', fmt(loopP99, 3), range(roundRatios('service-loop', 'service', 'p99')),
        'no measurable change', verdict(Math.abs(loopP99 - 1) <= 0.05)],
    ]),
  ].join('\n');
  await writeResult('overhead', md, { machine: m, rounds, seconds, connections, results: Object.fromEntries(results), summary: s });
  await run.stop();
  await data.postgres.stop();
  await server.stop();
});

/** A 1-hour token with the default policy (lookup-self works), created with the root token. */
async function createToken(addr: string, rootToken: string): Promise<string> {
  const response = await fetch(`${addr}/v1/auth/token/create`, {
    method: 'POST', headers: { 'X-Vault-Token': rootToken, 'Content-Type': 'application/json' },
    body: JSON.stringify({ ttl: '1h', policies: ['default'], no_parent: true }),
  });
  const body = (await response.json()) as { auth?: { client_token?: string } };
  const token = body.auth?.client_token;
  if (token === undefined) throw new Error(`token creation answered ${response.status}`);
  return token;
}
