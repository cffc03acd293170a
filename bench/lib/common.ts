import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { cpus, release, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import autocannon, { type Request as LoadRequest, type Result } from 'autocannon';
import { assertServerInstalled, serverBin, baoEnv, waitForHttp, type DevServer } from '../../service/test/support/bao.js';
import { freePort } from '../../service/test/support/ports.js';
import { spawnManaged, stopAll } from '../../service/test/support/processes.js';
import { removeTempDirs, tempDir } from '../../service/test/support/temp-dirs.js';
import { vaultData } from '../../service/test/support/vault-http.js';

const run = promisify(execFile);

export const repoRoot = resolve(import.meta.dirname, '../..');
export const benchDir = join(repoRoot, 'bench');
export const resultsDir = join(benchDir, 'results');

// ---------------------------------------------------------------- statistics

export function sorted(values: readonly number[]): number[] {
  return [...values].sort((a, b) => a - b);
}

/** Nearest-rank percentile (p in 0..100) of the values; NaN for none. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return NaN;
  const s = sorted(values);
  const rank = Math.min(s.length, Math.max(1, Math.ceil((p / 100) * s.length)));
  return s[rank - 1] ?? NaN;
}

export function median(values: readonly number[]): number {
  if (values.length === 0) return NaN;
  const s = sorted(values);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? (s[mid] ?? NaN) : ((s[mid - 1] ?? NaN) + (s[mid] ?? NaN)) / 2;
}

export function mean(values: readonly number[]): number {
  return values.length === 0 ? NaN : values.reduce((a, b) => a + b, 0) / values.length;
}

export function fmt(value: number, digits = 1): string {
  return Number.isFinite(value) ? value.toFixed(digits) : 'n/a';
}

export function verdict(ok: boolean): string {
  return ok ? '**met**' : '**missed**';
}

export function mdTable(headers: readonly string[], rows: readonly (readonly (string | number)[])[]): string {
  const line = (cells: readonly (string | number)[]) => `| ${cells.map(String).join(' | ')} |`;
  return [line(headers), line(headers.map(() => '---')), ...rows.map(line)].join('\n');
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

// ---------------------------------------------------------------- the machine

export interface Machine {
  date: string;
  cores: number;
  cpuModel: string;
  memoryGiB: number;
  kernel: string;
  node: string;
  bao: string;
}

export async function machine(): Promise<Machine> {
  let bao = 'not installed';
  try {
    bao = (await run(serverBin, ['version'])).stdout.trim();
  } catch { /* reported as not installed */ }
  return {
    date: new Date().toISOString(),
    cores: cpus().length,
    cpuModel: cpus()[0]?.model ?? 'unknown',
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    kernel: release(),
    node: process.version,
    bao,
  };
}

export function machineLine(m: Machine): string {
  return `${m.date} · ${m.cores} cores (${m.cpuModel}) · ${m.memoryGiB} GiB · Linux ${m.kernel} · Node ${m.node} · ${m.bao}`;
}

// ---------------------------------------------------------------- results

/** Each benchmark writes its markdown section and raw figures; run-all.ts stitches the sections. */
export async function writeResult(name: string, markdown: string, raw: unknown): Promise<void> {
  await mkdir(resultsDir, { recursive: true });
  await writeFile(join(resultsDir, `${name}.md`), `${markdown}\n`);
  await writeFile(join(resultsDir, `${name}.json`), `${JSON.stringify(raw, null, 2)}\n`);
  process.stdout.write(`${markdown}\n`);
}

/** Runs `main`, then stops every child it started and removes its temp folders, pass or fail. */
export function runBenchmark(main: () => Promise<void>): void {
  main().then(async () => {
    await cleanup();
  }, async (error: unknown) => {
    process.stderr.write(`${(error as Error).stack ?? String(error)}\n`);
    await cleanup();
    process.exitCode = 1;
  });
}

async function cleanup(): Promise<void> {
  await stopAll();
  await removeTempDirs();
}

/** Command-line flags of the form --name=value. */
export function flag(name: string, fallback: number): number {
  const arg = process.argv.find((a) => a.startsWith(`--${name}=`));
  if (arg === undefined) return fallback;
  const value = Number(arg.slice(name.length + 3));
  if (!Number.isFinite(value)) throw new Error(`--${name} must be a number`);
  return value;
}

// ---------------------------------------------------------------- processes

let clockTicks: number | undefined;

/** utime + stime of a process, in seconds, from /proc/<pid>/stat. */
export async function cpuSeconds(pid: number): Promise<number> {
  clockTicks ??= Number((await run('getconf', ['CLK_TCK'])).stdout.trim()) || 100;
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / clockTicks;
}

/** Resident set size of a process, in MiB, from /proc/<pid>/status. */
export async function rssMiB(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kb = /^VmRSS:\s+(\d+) kB$/m.exec(status)?.[1];
  return kb === undefined ? NaN : Number(kb) / 1024;
}

/**
 * The service compiled from service/src with tsconfig.build.json into a temporary folder
 * (dist/ belongs to `npm run build` and may be stale; a build inside the repository would be
 * linted). The folder gets a package.json (ESM) and a node_modules link to the repository's.
 * Returns the command that starts the entry point; falls back to tsx when the sources do not
 * compile right now.
 */
export async function buildService(): Promise<{ command: string; args: string[]; how: string }> {
  const out = await tempDir('build');
  try {
    await run(join(repoRoot, 'node_modules/.bin/tsc'), ['-p', join(repoRoot, 'tsconfig.build.json'), '--outDir', out],
      { cwd: repoRoot, timeout: 120_000 });
    await writeFile(join(out, 'package.json'), '{ "type": "module" }\n');
    await symlink(join(repoRoot, 'node_modules'), join(out, 'node_modules'));
    if (existsSync(join(out, 'main.js'))) {
      return { command: process.execPath, args: [join(out, 'main.js')], how: 'compiled JS (tsc, tsconfig.build.json)' };
    }
  } catch (error) {
    process.stderr.write(`building the service failed, using tsx instead: ${(error as Error).message.split('\n')[0] ?? ''}\n`);
  }
  return { command: process.execPath, args: ['--import', 'tsx', join(repoRoot, 'service/src/main.ts')], how: 'tsx (no build)' };
}

// ---------------------------------------------------------------- load

export interface LoadRound {
  requests: number;
  rps: number;
  /** Percentiles of the per-response times autocannon reports (hrtime, ms, not rounded). */
  p50: number;
  p99: number;
  errors: number;
  non2xx: number;
  /** Answers by status code. */
  statuses: Record<string, number>;
}

/**
 * One autocannon run. Latency percentiles come from autocannon's own per-response times
 * ('response' event, hrtime in ms): its built-in histogram rounds to whole milliseconds,
 * too coarse to compare sub-millisecond latencies within 5%. `requests`: autocannon's list of
 * requests each connection cycles through (the first also sets the method and path).
 */
export function load(url: string, seconds: number, connections: number, overallRate?: number,
  requests?: LoadRequest[]): Promise<LoadRound> {
  const times: number[] = [];
  return new Promise((resolveRound, reject) => {
    const instance = autocannon({
      url, connections, pipelining: 1, duration: seconds, ...(overallRate === undefined ? {} : { overallRate }),
      ...(requests === undefined ? {} : { requests }),
    }, (error, result: Result) => {
      if (error !== null) {
        reject(error);
        return;
      }
      resolveRound({
        requests: result.requests.total,
        rps: result.requests.total / result.duration,
        p50: percentile(times, 50),
        p99: percentile(times, 99),
        errors: result.errors + result.timeouts,
        non2xx: result.non2xx,
        statuses: Object.fromEntries(Object.entries(result.statusCodeStats).map(([code, { count }]) => [code, count])),
      });
    });
    instance.on('response', (_client, statusCode, _bytes, responseTime) => {
      if (statusCode >= 200 && statusCode < 300) times.push(responseTime);
    });
  });
}

// ---------------------------------------------------------------- Vault

/**
 * A `bao server -dev` (as startDevServer) with a file audit device declared in a config
 * file: OpenBao refuses to enable audit devices through the API. Accessors are logged in
 * clear so requests can be grouped by token.
 */
export async function startAuditedDevServer(): Promise<DevServer & { auditFile: string }> {
  await assertServerInstalled();
  const dir = await tempDir('bao-audit');
  const auditFile = join(dir, 'audit.log');
  const config = join(dir, 'audit.hcl');
  await writeFile(config, `audit "file" "bench" {\n  options {\n    file_path = "${auditFile}"\n    hmac_accessor = "false"\n  }\n}\n`);
  const rootToken = `root-${randomBytes(12).toString('hex')}`;
  const port = await freePort();
  const addr = `http://127.0.0.1:${port}`;
  const proc = spawnManaged(serverBin,
    ['server', '-dev', `-dev-listen-address=127.0.0.1:${port}`, `-dev-root-token-id=${rootToken}`, `-config=${config}`],
    { env: baoEnv(dir), logFile: join(dir, 'server.log'), cwd: dir });
  try {
    await waitForHttp(`${addr}/v1/sys/health`, 200, proc);
  } catch (error) {
    await proc.stop();
    throw error;
  }
  return {
    addr, rootToken, process: proc, dir, auditFile,
    unsealKey: () => Promise.reject(new Error('not needed by the benchmarks')),
    stop: async () => { await proc.stop(); },
  };
}

export interface AuditEntry {
  time: number;
  path: string;
  accessor: string;
  operation: string;
}

/** The responses recorded in a file audit log (one per request Vault served). */
export async function readAudit(file: string): Promise<AuditEntry[]> {
  const text = await readFile(file, 'utf8');
  const entries: AuditEntry[] = [];
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const entry = JSON.parse(line) as {
      type?: string; time?: string; request?: { path?: string; operation?: string }; auth?: { accessor?: string };
    };
    if (entry.type !== 'response') continue;
    entries.push({
      time: Date.parse(entry.time ?? ''),
      path: entry.request?.path ?? '',
      operation: entry.request?.operation ?? '',
      accessor: entry.auth?.accessor ?? '',
    });
  }
  return entries;
}

export async function createSecretId(server: DevServer): Promise<string> {
  const data = await vaultData<{ secret_id: string }>(server.addr, server.rootToken, 'POST',
    'auth/approle/role/saas-app-dev/secret-id', {});
  return data.secret_id;
}

export async function roleId(server: DevServer): Promise<string> {
  const data = await vaultData<{ role_id: string }>(server.addr, server.rootToken, 'GET', 'auth/approle/role/saas-app-dev/role-id');
  return data.role_id;
}
