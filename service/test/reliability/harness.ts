import { createHmac } from 'node:crypto';
import { mkdir, readdir, readFile, readlink, symlink, unlink, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { AgentDir } from '../support/agent.js';
import { repoRoot } from '../support/repo-root.js';
import type { Sample } from './load.js';

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export const gateCodes = new Set([
  'vault_token_unverified', 'vault_token_invalid', 'vault_token_expired', 'vault_token_missing', 'vault_login_failed',
]);

export interface LogEntry {
  readonly t: number;
  readonly level: string;
  readonly msg: string;
  readonly [key: string]: unknown;
}

/** The service's JSON log lines (pino, ISO time), in order; other lines are left out. */
export function parseLog(text: string): LogEntry[] {
  const entries: LogEntry[] = [];
  for (const line of text.split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      const entry = JSON.parse(line) as { time?: string; level?: string; msg?: string };
      entries.push({ ...entry, t: Date.parse(entry.time ?? ''), level: entry.level ?? '', msg: entry.msg ?? '' });
    } catch {
      // a line cut by a crash: the crash checks catch that
    }
  }
  return entries;
}

/** Lines of the log that are not the service's JSON: what a crash or a warning from Node looks like. */
export function foreignLines(text: string): string[] {
  return text.split('\n').filter((line) => line.trim() !== '' && !line.startsWith('{'));
}

export const haltedMessage = 'traffic halted: every route but /healthz answers 503';
export const reopenedMessage = 'traffic open again: the Vault token is valid';
export const loadedMessage = 'secrets loaded from the rendered file';

export interface HaltInterval {
  readonly from: number;
  /** Infinity while still halted. */
  to: number;
  readonly codes: string[];
}

/** When the gate was halted, from the fatal line that halted it to the line that reopened it. */
export function haltIntervals(log: readonly LogEntry[]): HaltInterval[] {
  const intervals: HaltInterval[] = [];
  let current: HaltInterval | undefined;
  for (const entry of log) {
    if (entry.msg === haltedMessage) {
      if (current === undefined) {
        current = { from: entry.t, to: Infinity, codes: [] };
        intervals.push(current);
      }
      current.codes.push(String(entry.code));
    } else if (entry.msg === reopenedMessage && current !== undefined) {
      current.to = entry.t;
      current = undefined;
    }
  }
  return intervals;
}

/**
 * What breaks the service's promises in a set of answers: no answer at all, a 5xx other than
 * the gate's 503, a 503 outside a halt of the gate, a response without the security headers,
 * or any other error status (`allowed` lists statuses the requests may legitimately get).
 */
export function violations(samples: readonly Sample[], halts: readonly HaltInterval[], allowed = [200, 201, 204], slackMs = 30): string[] {
  const found: string[] = [];
  for (const s of samples) {
    const at = `${s.kind} at ${new Date(s.t0).toISOString()}`;
    if (s.status === 0) found.push(`no answer (${s.error ?? ''}): ${at}`);
    else if (s.status === 503 && gateCodes.has(s.code ?? '')) {
      if (!halts.some((h) => s.t1 >= h.from - slackMs && s.t0 <= h.to + slackMs)) found.push(`503 ${s.code ?? ''} outside a halt: ${at}`);
    } else if (!allowed.includes(s.status)) found.push(`${s.status} ${s.code ?? ''}: ${at}`);
    if (!s.helmet) found.push(`no security headers on ${s.status}: ${at}`);
  }
  return found;
}

/** The cookies library's signature (keygrip, HMAC-SHA1, base64url without padding). */
export function cookieSignature(data: string, key: string): string {
  return createHmac('sha1', key).update(data).digest('base64').replace(/\/|\+|=/g, (c) => ({ '/': '_', '+': '-', '=': '' })[c] ?? '');
}

export interface Received {
  readonly body: string;
  readonly signature: string;
}

/** A webhook receiver on loopback: what the outbound integration would call. */
export async function startReceiver(): Promise<{ url: string; received: Map<string, Received>; count: () => number; close: () => Promise<void> }> {
  const received = new Map<string, Received>();
  let count = 0;
  const server: Server = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => { body += chunk.toString('utf8'); });
    req.on('end', () => {
      count++;
      try {
        const id = (JSON.parse(body) as { data?: { id?: string } }).data?.id ?? `?${count}`;
        received.set(id, { body, signature: String(req.headers['x-saas-signature']) });
      } catch {
        received.set(`?${count}`, { body, signature: '' });
      }
      res.writeHead(204).end();
    });
  });
  server.keepAliveTimeout = 1000;
  server.listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks`,
    received,
    count: () => count,
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => { resolve(); });
    }),
  };
}

/** The open file descriptors of a process, by kind: sockets, pipes, anon inodes, files. */
export async function openFds(pid: number): Promise<{ total: number; sockets: number; others: string[] }> {
  const fds = await readdir(`/proc/${pid}/fd`);
  const targets = await Promise.all(fds.map((fd) => readlink(`/proc/${pid}/fd/${fd}`).catch(() => 'gone')));
  const present = targets.filter((t) => t !== 'gone');
  return { total: present.length, sockets: present.filter((t) => t.startsWith('socket:')).length, others: present.filter((t) => !t.startsWith('socket:')).map((t) => t.replace(/\[\d+\]$/, '')).sort() };
}

/** The process's initial environment, as /proc shows it to anyone allowed to read it. */
export async function initialEnvironment(pid: number): Promise<string> {
  return (await readFile(`/proc/${pid}/environ`)).toString('utf8').split('\0').join('\n');
}

/**
 * The agent's configuration with one change for these tests: KV re-read every second (the
 * dev file says 5 s), so a secret rotated every second reaches the service every time.
 * agent.hcl and the template are the repository's, linked.
 */
export async function fastRenderConfig(agentDir: AgentDir): Promise<void> {
  await renderIntervalConfig(agentDir, '1s');
}

/** The agent's dev configuration in `agentDir`, its KV render interval ("5s") set to `interval`. */
export async function renderIntervalConfig(agentDir: AgentDir, interval: string): Promise<void> {
  const config = join(agentDir.dir, 'config');
  await unlink(config);
  await mkdir(join(config, 'env'), { recursive: true });
  for (const file of ['agent.hcl', 'secrets.json.ctmpl']) await symlink(join(repoRoot, 'agent-config', file), join(config, file));
  const dev = await readFile(join(repoRoot, 'agent-config/env/dev.hcl'), 'utf8');
  const changed = dev.replace(/static_secret_render_interval\s*=\s*"5s"/, `static_secret_render_interval = "${interval}"`);
  if (changed === dev) throw new Error('agent-config/env/dev.hcl no longer sets a 5s render interval: update renderIntervalConfig');
  await writeFile(join(config, 'env/dev.hcl'), changed);
}

/** Polls `check` every 20 ms until it is true; fails after `timeoutMs`. */
export async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs: number): Promise<number> {
  const start = Date.now();
  while (!(await check())) {
    if (Date.now() - start > timeoutMs) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await sleep(20);
  }
  return Date.now() - start;
}

/** A figure row for RELIABILITY.md, printed at the end of a suite. */
export interface Figure {
  readonly fault: string;
  readonly seconds: number;
  readonly requests: number;
  readonly counts: Record<string, number>;
  readonly notes: string;
}

export function printFigures(title: string, figures: readonly Figure[]): void {
  const rows = figures.map((f) => `| ${f.fault} | ${f.seconds.toFixed(1)} | ${f.requests} | ${Object.entries(f.counts)
    .sort(([a], [b]) => a.localeCompare(b)).map(([k, v]) => `${k}: ${v}`).join(', ')} | ${f.notes} |`);
  console.log([`\n  ${title}`, '| fault | s | requests | responses by status | notes |', '| --- | ---: | ---: | --- | --- |', ...rows]
    .map((l) => `    ${l}`).join('\n'));
}
