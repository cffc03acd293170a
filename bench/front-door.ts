/**
 * 8. The front door: what a sign-in costs, and the data route's throughput with the bounds on.
 *
 *   node --import tsx bench/front-door.ts [--rounds=6] [--seconds=4] [--connections=10] [--sign-ins=60] [--tenants=40]
 *
 * A real bao dev server with its OpenID Connect provider (scripts/demo-identity.sh, one demo
 * user per tenant), a real PostgreSQL, and the service's app (bench/front-door-server.ts) in
 * child processes:
 *   - sign-in: sequential sign-ins as a browser plays them (bench's process), each step timed:
 *     GET /auth/login (the redirect), the issuer's part (Vault's userpass login and
 *     authorization: not the service's cost), GET /auth/callback (the code exchange with the
 *     issuer, the ID token's checks, the session's insert);
 *   - data: GET /api/projects (a page of 50, from 50 projects per tenant), the tenants' cookies in
 *     turn, autocannon; `bounded` runs the shipped TENANT_REQUESTS_PER_SECOND (20 per tenant,
 *     bursts of 40), `unbounded` the same app with the rate out of reach, so the two differ by
 *     what the rate refuses and what checking it costs; `probe` is GET /readyz on the bounded app,
 *     the figure section 1 measures. Rounds alternate the variants.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { finishSignIn, signInAtIssuer } from '../scripts/sign-in/play-browser.js';
import { settingsSchema } from '../service/src/config/settings.js';
import { startDevServer, waitForHttp } from '../service/test/support/bao.js';
import { freePort } from '../service/test/support/ports.js';
import { startTestPostgres } from '../service/test/support/postgres.js';
import { spawnManaged, type ManagedProcess } from '../service/test/support/processes.js';
import { sampleSecrets } from '../service/test/support/rendered-secrets.js';
import { addIdentityProvider, devRedirectUrl } from '../service/test/support/sign-in.js';
import { tempDir } from '../service/test/support/temp-dirs.js';
import { benchDir, flag, fmt, load, machine, machineLine, mdTable, median, percentile, runBenchmark, writeResult, type LoadRound } from './lib/common.js';

const variants = ['bounded', 'unbounded', 'probe'] as const;
type Variant = (typeof variants)[number];

runBenchmark(async () => {
  const rounds = flag('rounds', 6);
  const seconds = flag('seconds', 4);
  const connections = flag('connections', 10);
  const signIns = flag('sign-ins', 60);
  const tenantCount = flag('tenants', 40);
  const m = await machine();
  const tenants = Array.from({ length: tenantCount }, (_, i) => `t${String(i).padStart(3, '0')}`);

  const postgres = await startTestPostgres();
  const secrets = sampleSecrets();
  await postgres.provision(secrets.database.username, secrets.database.password);
  const vault = await startDevServer();
  const identity = await addIdentityProvider(vault, devRedirectUrl, { extraEnv: { DEMO_USERS: tenants.join(' ') } });
  secrets.oidc = await identity.credentials();
  const dir = await tempDir('front-door');
  const secretsFile = join(dir, 'secrets.json');
  await writeFile(secretsFile, JSON.stringify(secrets), { mode: 0o600 });

  const env = {
    PATH: process.env.PATH, NODE_ENV: 'production', BENCH_SECRETS_FILE: secretsFile, BENCH_PG_PORT: String(postgres.layout.port),
    OIDC_ISSUER_URL: identity.issuerUrl, OIDC_REDIRECT_URL: devRedirectUrl,
  };
  const start = async (name: string, extra: NodeJS.ProcessEnv): Promise<{ url: string; proc: ManagedProcess }> => {
    const port = await freePort();
    const proc = spawnManaged(process.execPath, ['--import', 'tsx', join(benchDir, 'front-door-server.ts'), String(port)], {
      env: { ...env, ...extra }, logFile: join(dir, `${name}.log`),
    });
    const url = `http://127.0.0.1:${port}`;
    await waitForHttp(`${url}/readyz`, 200, proc);
    return { url, proc };
  };
  const bounded = await start('bounded', {});
  const unbounded = await start('unbounded', { TENANT_REQUESTS_PER_SECOND: '999999999', TENANT_PROJECT_QUOTA: '999999999' });

  // Sign-ins, sequential, each step timed; the sessions opened serve the data load.
  const steps = { login: [] as number[], issuer: [] as number[], callback: [] as number[], total: [] as number[] };
  const cookies = new Map<string, string>();
  for (let i = 0; i < Math.max(signIns, tenants.length); i++) {
    const user = tenants[i % tenants.length] ?? '';
    const password = await identity.password(user);
    const t0 = performance.now();
    await fetch(`${unbounded.url}/auth/login`, { redirect: 'manual' }).then((r) => r.body?.cancel());
    const t1 = performance.now();
    const answer = await signInAtIssuer({ appUrl: unbounded.url, user, password, vaultAddr: vault.addr });
    const t2 = performance.now();
    const signedIn = await finishSignIn(answer);
    const t3 = performance.now();
    cookies.set(user, signedIn.cookieHeader);
    if (i < signIns) {
      steps.login.push(t1 - t0);
      // signInAtIssuer made its own GET /auth/login: the issuer's part is the rest.
      steps.issuer.push(t2 - t1 - (t1 - t0));
      steps.callback.push(t3 - t2);
      steps.total.push(t3 - t0 - (t1 - t0));
    }
  }
  // 50 projects per tenant: every list answers a full page.
  for (const user of tenants) {
    for (let i = 0; i < 50; i++) {
      const created = await fetch(`${unbounded.url}/api/projects`, {
        method: 'POST', headers: { Cookie: cookies.get(user) ?? '', 'Content-Type': 'application/json' }, body: JSON.stringify({ name: `p${i}` }),
      });
      if (created.status !== 201) throw new Error(`seeding ${user}: ${created.status} ${await created.text()}`);
    }
  }

  const requests = tenants.map((user) => ({ method: 'GET', path: '/api/projects?limit=50', headers: { Cookie: cookies.get(user) ?? '' } }));
  const target = (v: Variant) => ({
    url: v === 'probe' ? `${bounded.url}/readyz` : `${v === 'bounded' ? bounded.url : unbounded.url}/api/projects?limit=50`,
    requests: v === 'probe' ? undefined : requests,
  });
  for (const v of variants) await load(target(v).url, 2, connections, undefined, target(v).requests); // warm-up
  const results = new Map<Variant, LoadRound[]>(variants.map((v) => [v, []]));
  for (let round = 0; round < rounds; round++) {
    for (const v of round % 2 === 0 ? variants : [...variants].reverse()) {
      const r = await load(target(v).url, seconds, connections, undefined, target(v).requests);
      results.get(v)?.push(r);
      process.stderr.write(`round ${round + 1} ${v}: ${fmt(r.rps, 0)} req/s, ${JSON.stringify(r.statuses)}\n`);
    }
  }
  const stat = (v: Variant) => {
    const rs = results.get(v) ?? [];
    const ok = rs.map((r) => (r.statuses['200'] ?? 0) / seconds);
    return {
      ok: median(ok), all: median(rs.map((r) => r.rps)), p99: median(rs.map((r) => r.p99)),
      limited: rs.reduce((a, r) => a + (r.statuses['429'] ?? 0), 0), other: rs.reduce((a, r) => a + r.errors + r.non2xx - (r.statuses['429'] ?? 0), 0),
    };
  };
  const s = Object.fromEntries(variants.map((v) => [v, stat(v)])) as Record<Variant, ReturnType<typeof stat>>;
  const ceiling = tenants.length * settingsSchema.tenantRequestsPerSecond.default;
  const ms = (values: number[]) => [fmt(median(values), 1), fmt(percentile(values, 99), 1)];

  const md = [
    '### 8. The front door: a sign-in\'s cost, the data route with the bounds on',
    '',
    `Machine: ${machineLine(m)}`,
    '',
    `Command: \`node --import tsx bench/front-door.ts --rounds=${rounds} --seconds=${seconds} --connections=${connections} --sign-ins=${signIns} --tenants=${tenantCount}\``,
    '',
    `${signIns} sign-ins one after the other (bao dev server's OpenID Connect provider, PostgreSQL on this machine), each step timed in ms:`,
    '',
    mdTable(['step', 'median ms', 'p99 ms', 'whose cost'], [
      ['GET /auth/login (discovery cached, PKCE, sign-in cookie, 302)', ...ms(steps.login), 'the service'],
      ['issuer (Vault userpass login, authorization)', ...ms(steps.issuer), 'the issuer (a person typing, in real use)'],
      ['GET /auth/callback (code exchange, ID token checks, session insert)', ...ms(steps.callback), 'the service, one round trip to the issuer'],
      ['whole sign-in', ...ms(steps.total), '—'],
    ]),
    '',
    `GET /api/projects?limit=50 (a full page; a session looked up in PostgreSQL per request), ${tenants.length} tenants' sessions in turn, ` +
    `autocannon ${connections} connections, ${rounds} rounds of ${seconds} s, variants alternating. With the shipped rate the ${tenants.length} tenants ` +
    `together may make ${ceiling} requests/s (bursts up to twice that).`,
    '',
    mdTable(['variant', '200/s (median)', 'all answers/s', 'p99 ms (200s)', '429 rate_limited (all rounds)', 'other errors'], variants.map((v) => [
      v, fmt(s[v].ok, 0), fmt(s[v].all, 0), fmt(s[v].p99, 2), s[v].limited, s[v].other,
    ])),
    '',
    mdTable(['comparison', 'measured'], [
      ['bounded 200/s / rate ceiling', fmt(s.bounded.ok / ceiling, 3)],
      ['unbounded / probe throughput (the data route\'s own cost)', fmt(s.unbounded.all / s.probe.all, 3)],
    ]),
  ].join('\n');
  await writeResult('front-door', md, { machine: m, rounds, seconds, connections, steps, results: Object.fromEntries(results), summary: s });
  await bounded.proc.stop();
  await unbounded.proc.stop();
  await vault.stop();
  await postgres.stop();
});
