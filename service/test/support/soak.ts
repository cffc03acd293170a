import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { SteadyLoad, type RequestSpec, type Sample } from '../reliability/load.js';
import { registerSecret } from './leak-scan.js';
import { cliAs as baoCli } from './bao-server.js';
import { startScaledProduction, type ScaledProduction } from './scaled-production.js';
import { retryBudgetMs } from './shipped-durations.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface SoakOptions {
  /** Every shipped duration is divided by this. */
  readonly factor: number;
  /** How long the run lasts, in the token's max TTLs. */
  readonly maxTtls: number;
  /** Requests a second on the data routes. */
  readonly rate?: number;
  /** Progress lines (the benchmark prints them; the test keeps them for its message). */
  readonly say?: (line: string) => void;
}

/** A span in which Vault could not answer: a halt in it is right once the token's known expiry passes. */
interface Outage {
  readonly what: string;
  readonly from: number;
  /** When Vault answered again (unsealed). */
  readonly to: number;
  /** How long the service took to answer 200 on /readyz again after `to` (0: it never stopped). */
  reopenedAfterMs: number;
}

export interface SoakResult {
  readonly factor: number;
  readonly maxTtls: number;
  readonly requests: number;
  /** Non-2xx answers outside an outage and its recovery bound, with what they said. */
  readonly unexpected: readonly string[];
  readonly haltedSeconds: number;
  readonly outages: readonly Outage[];
  readonly recoveryBoundMs: number;
  readonly agentStarts: number;
  readonly courierStarts: number;
  readonly logins: number;
  readonly leases: number;
  readonly kvVersions: number;
  readonly deliveries: number;
  /** The agent's and the service's log lines from 6 s before the first unexpected answer to 2 s after: what a failure is read with. */
  readonly around: readonly string[];
  readonly line: string;
}

/** The last line the benchmark prints; RELIABILITY.md quotes it. */
export function soakLine(r: Pick<SoakResult, 'maxTtls' | 'factor' | 'requests' | 'unexpected' | 'haltedSeconds'>): string {
  return `soak: ${r.maxTtls.toFixed(1)} max TTLs at 1/${r.factor} time, ${r.requests} requests, ` +
    `${r.unexpected.length} unexpected non-2xx, ${r.haltedSeconds.toFixed(1)} s halted`;
}

/**
 * Production at its shipped proportions, faster: steady load on the data routes while the
 * agent logs in again at every max TTL with secret ids the courier delivers, dynamic users roll
 * over, KV rotates, and on the way the courier stops for less than its margin, the agent is
 * killed, Vault is sealed for longer than the agent's retry budget and the token's TTL, and
 * Vault restarts. A non-2xx answer counts as expected only inside an outage of Vault and the
 * recovery bound after it; every other one is unexpected.
 */
export async function runSoak(options: SoakOptions): Promise<SoakResult> {
  const say = options.say ?? (() => undefined);
  const p = await startScaledProduction(options.factor);
  try {
    return await soak(p, options, say);
  } finally {
    await p.stop();
  }
}

/**
 * The data routes, with a session a real sign-in opened (Vault's OpenID Connect provider). Prod
 * sets its cookies over TLS only: every request says X-Forwarded-Proto: https, as the service's
 * TLS proxy would (TRUSTED_PROXIES: loopback).
 */
async function signedIn(p: ScaledProduction): Promise<(i: number) => RequestSpec> {
  const overTls = { 'X-Forwarded-Proto': 'https' };
  const { cookieHeader } = await p.identity.signIn(p.service.url, 'acme', overTls);
  const headers = { ...overTls, Cookie: cookieHeader };
  return (i) => (i % 3 === 0
    ? { kind: 'create', path: '/api/projects', method: 'POST', body: JSON.stringify({ name: `p${i}` }), headers }
    : { kind: 'list', path: '/api/projects', headers });
}

async function soak(p: ScaledProduction, options: SoakOptions, say: (line: string) => void): Promise<SoakResult> {
  const d = p.durations;
  if (options.maxTtls < 2) throw new Error('soak: at least 2 max TTLs, so the faults come after a login at the max TTL');
  const runMs = options.maxTtls * d.tokenMaxTtl;
  const budget = retryBudgetMs(d, p.counts);
  // After Vault answers again: the agent's next login try (max backoff), a fresh secret id from
  // the courier (one interval), a render, the service's next check, and 2 s for processes on a
  // busy machine to do each step.
  const recoveryBoundMs = d.maxBackoff + d.deliveryInterval + d.checkInterval + 2000;
  say(`soak: 1/${p.factor} time: token TTL ${d.tokenTtl} ms, max TTL ${d.tokenMaxTtl} ms, wrap TTL ${d.wrapTtl} ms, ` +
    `delivery every ${d.deliveryInterval} ms (replaced after ${d.secretIdMaxAge} ms), render every ${d.renderInterval} ms, ` +
    `lease ${d.leaseTtl}/${d.leaseMaxTtl} ms, check every ${d.checkInterval} ms, agent retries ${budget} ms; run ${runMs} ms`);

  const load = new SteadyLoad(p.service.url, options.rate ?? 20, await signedIn(p));
  const outages: Outage[] = [];
  const leases = new Set<string>();
  const kvVersions = new Set<string>();
  let haltedMs = 0;
  const watch = { on: true };
  const watcher = (async () => {
    while (watch.on) {
      try {
        const rendered = JSON.parse(await readFile(p.renderedFile, 'utf8')) as
          { database?: { lease?: { id?: string } }; 'api-keys'?: { version?: number } };
        if (rendered.database?.lease?.id !== undefined) leases.add(rendered.database.lease.id);
        if (rendered['api-keys']?.version !== undefined) kvVersions.add(String(rendered['api-keys'].version));
      } catch { /* mid-rename or not rendered yet */ }
      const ready = await fetch(`${p.service.url}/readyz`, { signal: AbortSignal.timeout(2000) })
        .then(async (r) => { await r.body?.cancel(); return r.status; }, () => 0);
      const polled = Date.now();
      await sleep(100);
      if (ready !== 200) haltedMs += Date.now() - polled;
    }
  })();

  const start = Date.now();
  const at = async (fraction: number) => { await sleep(Math.max(0, start + fraction * runMs - Date.now())); };
  /** In max TTLs from the start: the faults are placed around the agent's logins. */
  const atMaxTtls = async (count: number) => { await sleep(Math.max(0, start + count * d.tokenMaxTtl - Date.now())); };
  const reopened = async (outage: Outage) => {
    while (Date.now() - outage.to < 60_000) {
      const status = await fetch(`${p.service.url}/readyz`).then(async (r) => { await r.body?.cancel(); return r.status; }, () => 0);
      if (status === 200) { outage.reopenedAfterMs = Date.now() - outage.to; return; }
      await sleep(50);
    }
    outage.reopenedAfterMs = Number.POSITIVE_INFINITY;
  };
  load.start('soak');

  // KV rotations, every eighth of the run.
  const rotations = (async () => {
    for (let i = 1; i < 8; i++) {
      await at(i / 8);
      const key = randomBytes(32).toString('hex');
      registerSecret('soak rotated key', key);
      const write = await baoCli(p.node, p.harnessToken, ['kv', 'patch', '-mount=secret', 'saas-project/prod/api-keys', 'webhook_signing_key=-'], key);
      say(`soak: +${Date.now() - start} ms KV rotation ${write.code === 0 ? 'written' : `refused (${write.stderr.trim()})`}`);
    }
  })();

  // The courier stops for 80 % of its margin (the file waiting has that much life left), across
  // the agent's login at the first max TTL: that login takes the file the courier left.
  const margin = d.wrapTtl - d.secretIdMaxAge - d.deliveryInterval;
  await sleep(Math.max(0, start + d.tokenMaxTtl - margin * 0.6 - Date.now()));
  say(`soak: +${Date.now() - start} ms courier stopped for ${Math.round(margin * 0.8)} ms (margin ${margin} ms)`);
  await p.courier.pause();
  await sleep(margin * 0.8);
  p.courier.resume();

  await atMaxTtls(1.2);
  say(`soak: +${Date.now() - start} ms agent killed (SIGKILL); the supervisor starts it again`);
  await p.agent.kill();

  // Sealed for the agent's whole retry budget and the token's TTL: the agent gives up and is
  // started again, the token's known expiry passes, the service halts.
  await atMaxTtls(1.4);
  const sealFor = budget + d.tokenTtl + 1000;
  const seal = await baoCli(p.node, p.harnessToken, ['operator', 'seal']);
  if (seal.code !== 0) throw new Error(`soak: operator seal failed: ${seal.stderr.trim()}`);
  const sealedAt = Date.now();
  say(`soak: +${sealedAt - start} ms sealed for ${sealFor} ms`);
  await sleep(sealFor);
  await p.unseal();
  const sealOutage: Outage = { what: 'seal', from: sealedAt, to: Date.now(), reopenedAfterMs: 0 };
  outages.push(sealOutage);
  await reopened(sealOutage);
  say(`soak: +${Date.now() - start} ms unsealed; ready again ${sealOutage.reopenedAfterMs} ms after the unseal`);

  await atMaxTtls(1.7);
  const stoppedAt = Date.now();
  await p.node.stop();
  await p.node.restart();
  await p.unseal();
  const restart: Outage = { what: 'vault restart', from: stoppedAt, to: Date.now(), reopenedAfterMs: 0 };
  outages.push(restart);
  await reopened(restart);
  say(`soak: +${stoppedAt - start} ms Vault restarted and unsealed in ${restart.to - stoppedAt} ms; ready ${restart.reopenedAfterMs} ms after`);

  await at(1);
  await rotations;
  const samples = await load.stop();
  watch.on = false;
  await watcher;

  const expected = (s: Sample) => outages.some((o) => s.t0 >= o.from && s.t0 <= o.to + recoveryBoundMs);
  const unexpectedSamples = samples.filter((s) => (s.status < 200 || s.status > 299) && !expected(s));
  const unexpected = unexpectedSamples.map((s) => `+${s.t0 - start} ms ${s.kind} ${s.status} ${s.code ?? s.error ?? ''}`);
  const agentLog = await p.agent.process.log().catch(() => '');
  const courierLog = await p.courier.process.log().catch(() => '');
  const result = {
    around: aroundFirst(unexpectedSamples[0]?.t0, start,
      { agent: agentLog, service: await p.service.process.log().catch(() => '') }),
    factor: p.factor, maxTtls: (Date.now() - start) / d.tokenMaxTtl, requests: samples.length, unexpected,
    haltedSeconds: haltedMs / 1000, outages, recoveryBoundMs, agentStarts: p.agent.starts, courierStarts: p.courier.starts,
    logins: (agentLog.match(/authentication successful/g) ?? []).length, leases: leases.size, kvVersions: kvVersions.size,
    deliveries: (courierLog.match(/delivered a wrapped secret id/g) ?? []).length,
  };
  return { ...result, line: soakLine(result) };
}

/**
 * Log lines near `t0`, each as +ms from the start: the agent's start with an ISO time, the
 * service's are JSON with one. The service's line per request is left out: the load makes 20 a second.
 */
function aroundFirst(t0: number | undefined, start: number, logs: Record<string, string>): string[] {
  if (t0 === undefined) return [];
  return Object.entries(logs).flatMap(([name, log]) => log.split('\n').flatMap((line) => {
    const stamp = Date.parse(/^\d{4}-\d\d-\d\dT[\d:.]+Z/.exec(line)?.[0] ?? /"time":"([^"]+)"/.exec(line)?.[1] ?? '');
    return Number.isNaN(stamp) || line.includes('"msg":"request"') || stamp < t0 - 6000 || stamp > t0 + 2000 ? [] : [`+${stamp - start} ms ${name}: ${line}`];
  }));
}
