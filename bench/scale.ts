/**
 * 5a. Scale: 20 service token watchers (SDK mode, real AppRole logins) against one bao dev
 * server with a short token TTL: when do the renewals fall, and what does the server spend?
 *
 *   node --import tsx bench/scale.ts [--instances=20] [--ttl=20] [--seconds=120]
 *
 * Every instance is the service's own token watcher (ServiceToken in a LifetimeWatcher) with its own nodeVaultApi client, gate
 * and secret id, all in this process (the loop is timers and HTTP calls; one event loop holds
 * 20 of them easily). All instances log in within the same second (a fleet restarted at once,
 * the worst case for a herd). Each renewal's time is recorded by wrapping the API the loop
 * calls. The server's CPU comes from /proc/<pid>/stat, sampled every second, with an idle
 * baseline taken before the instances start.
 */
import { join } from 'node:path';
import { pino } from 'pino';
import { TrafficGate } from '../service/src/http/traffic-gate.js';
import { createLogger } from '../service/src/log/logger.js';
import type { TokenProblem } from '../service/src/report/token-report.js';
import { LifetimeWatcher } from '../service/src/vault/lifetime-watcher.js';
import { loginVouched, ServiceToken } from '../service/src/vault/service-token.js';
import { serviceScheduleRules } from '../service/src/vault/token-schedule.js';
import { nodeVaultApi, type VaultApi } from '../service/src/vault/vault-api.js';
import { startDevServer } from '../service/test/support/bao.js';
import { runBootstrap } from '../service/test/support/bootstrap.js';
import { tempDir } from '../service/test/support/temp-dirs.js';
import {
  cpuSeconds, createSecretId, flag, fmt, machine, machineLine, mdTable, mean, roleId, runBenchmark, sleep, verdict, writeResult,
} from './lib/common.js';

runBenchmark(async () => {
  const instances = flag('instances', 20);
  const ttl = flag('ttl', 20);
  const seconds = flag('seconds', 120);
  const m = await machine();
  const server = await startDevServer();
  const pid = server.process.child.pid ?? 0;
  const dir = await tempDir('scale');
  const boot = await runBootstrap(server, 'dev', join(dir, 'credentials'), { ROLE_TOKEN_TTL: `${ttl}s`, ROLE_TOKEN_MAX_TTL: '24h' });
  if (boot.code !== 0) throw new Error(`bootstrap failed: ${boot.stderr}`);
  const role = await roleId(server);
  const secretIds = await Promise.all(Array.from({ length: instances }, () => createSecretId(server)));

  // Idle baseline of the server.
  await sleep(2000);
  const idle0 = await cpuSeconds(pid);
  await sleep(10_000);
  const idlePct = ((await cpuSeconds(pid)) - idle0) / 10 * 100;

  const logger = createLogger('warn', pino.destination({ dest: '/dev/null', sync: true }));
  const events: { at: number; kind: 'renew' | 'lookup' | 'login'; instance: number }[] = [];
  const loops: LifetimeWatcher<TokenProblem>[] = [];
  const gates: TrafficGate[] = [];
  const t0 = Date.now();
  const cpuStart = await cpuSeconds(pid);
  await Promise.all(secretIds.map(async (secretId, instance) => {
    const real = nodeVaultApi(server.addr);
    const api: Pick<VaultApi, 'lookupSelf' | 'renewSelf' | 'revokeSelf'> = {
      revokeSelf: (token) => real.revokeSelf(token),
      lookupSelf: (token) => { events.push({ at: Date.now(), kind: 'lookup', instance }); return real.lookupSelf(token); },
      renewSelf: (token) => { events.push({ at: Date.now(), kind: 'renew', instance }); return real.renewSelf(token); },
    };
    const login = () => { events.push({ at: Date.now(), kind: 'login', instance }); return real.loginAppRole(role, secretId); };
    const gate = new TrafficGate(logger);
    const initial = await login();
    const loop = new LifetimeWatcher({ strategy: new ServiceToken({ api, logger, initial, login }), report: gate, logger, rules: serviceScheduleRules(0) });
    await loop.start(loginVouched(initial));
    loops.push(loop);
    gates.push(gate);
  }));
  const loginSpreadMs = Date.now() - t0;

  const cpuSamples: number[] = [];
  let last = cpuStart;
  while (Date.now() - t0 < seconds * 1000) {
    await sleep(1000);
    const now = await cpuSeconds(pid);
    cpuSamples.push((now - last) * 100);
    last = now;
  }
  const elapsed = (Date.now() - t0) / 1000;
  const cpuTotalPct = ((await cpuSeconds(pid)) - cpuStart) / elapsed * 100;
  await Promise.all(loops.map((l) => l.stop()));
  const halted = gates.filter((g) => !g.isOpen).length;
  await server.stop();

  const histogram = (kind: 'renew' | 'lookup' | 'login', from: number) => {
    const buckets = new Array<number>(Math.ceil(elapsed - from)).fill(0);
    for (const e of events) {
      const s = Math.floor((e.at - t0) / 1000) - from;
      if (e.kind === kind && s >= 0 && s < buckets.length) buckets[s] = (buckets[s] ?? 0) + 1;
    }
    return buckets;
  };
  const herd = (from: number) => {
    const h = histogram('renew', from);
    const total = h.reduce((a, b) => a + b, 0);
    const busiest = Math.max(...h);
    return { seconds: h.length, total, mean: total / h.length, busiest, ratio: busiest / (total / h.length), histogram: h };
  };
  const whole = herd(0);
  const late = herd(3 * ttl);
  const count = (kind: string) => events.filter((e) => e.kind === kind && e.at - t0 > loginSpreadMs).length;
  const md = [
    '### 5a. 20 instances, one server, short TTL',
    '',
    `Machine: ${machineLine(m)}`,
    '',
    `Command: \`node --import tsx bench/scale.ts --instances=${instances} --ttl=${ttl} --seconds=${seconds}\``,
    '',
    `${instances} service token watchers (SDK mode, the service's own code and nodeVaultApi), all logging in at once ` +
    `(logins spread over ${loginSpreadMs} ms), token TTL ${ttl} s, run ${fmt(elapsed, 0)} s. ` +
    `Renewals ${count('renew')}, lookup-self calls ${count('lookup')}, re-logins ${count('login')}; gates halted at the end: ${halted}.`,
    '',
    mdTable(['window', 'renewals', 'mean per second', 'busiest second', 'busiest / mean', 'target', 'result'], [
      [`whole run (${whole.seconds} s)`, whole.total, fmt(whole.mean, 2), whole.busiest, fmt(whole.ratio, 2), '≤ 3', verdict(whole.ratio <= 3)],
      [`after ${3 * ttl} s (${late.seconds} s)`, late.total, fmt(late.mean, 2), late.busiest, fmt(late.ratio, 2), '≤ 3', verdict(late.ratio <= 3)],
    ]),
    '',
    `Renewals per second over the run: \`${whole.histogram.join(' ')}\``,
    '',
    `bao server CPU (one core = 100%): idle ${fmt(idlePct, 2)}%, during the run mean ${fmt(cpuTotalPct, 2)}%, ` +
    `busiest second ${fmt(Math.max(...cpuSamples), 1)}%, mean of the 1 s samples ${fmt(mean(cpuSamples), 2)}%.`,
  ].join('\n');
  await writeResult('scale', md, { machine: m, instances, ttl, elapsed, loginSpreadMs, events, whole, late, idlePct, cpuTotalPct, cpuSamples });
});
