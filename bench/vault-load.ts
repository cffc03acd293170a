/**
 * 4. Vault load at steady state, counted from the server's audit log.
 *
 *   node --import tsx bench/vault-load.ts [--seconds=150] [--ttl=30] [--rate=10]
 *
 * One bao dev server with a file audit device (accessors not HMAC'd, so requests can be
 * grouped by token). The role's token TTL is short (--ttl, default 30 s) so a window of a few
 * minutes holds several TTLs. Running at the same time, each driven by autocannon at the same
 * request rate (--rate req/s, GET /readyz, or GET / for the naive client):
 *   agent-5s   bao agent (agent-config/, env/dev.hcl: KV re-read every 5 s) + the service, agent mode
 *   agent-1m   bao agent (env/staging.hcl: KV re-read every 1 m, dev paths) + the service, agent mode
 *   sdk        the service in SDK mode (its own login and renewals)
 *   naive      an HTTP server in this process that reads the 3 secrets from Vault on every
 *              request (node-vault through the service's nodeVaultApi) and logs in again when
 *              a read is refused: the read-per-request client
 * Start-up requests (logins, first reads) fall before the window and are not counted.
 */
import { createServer } from 'node:http';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { secretPath } from '../service/src/config/secret-schema.js';
import { nodeVaultApi } from '../service/src/vault/vault-api.js';
import { prepareAgentDir, startAgent, waitForFile } from '../service/test/support/agent.js';
import { waitForHttp } from '../service/test/support/bao.js';
import { freePort } from '../service/test/support/ports.js';
import { spawnManaged } from '../service/test/support/processes.js';
import { tempDir } from '../service/test/support/temp-dirs.js';
import { vaultData } from '../service/test/support/vault-http.js';
import {
  buildService, createSecretId, flag, fmt, load, machine, machineLine, mdTable, readAudit, roleId,
  runBenchmark, startAuditedDevServer, verdict, writeResult,
} from './lib/common.js';

type Kind = 'renew' | 'lookup' | 'login' | 'kv' | 'other';
const kinds: Kind[] = ['renew', 'lookup', 'login', 'kv', 'other'];

function kindOf(path: string): Kind {
  if (path === 'auth/token/renew-self') return 'renew';
  if (path === 'auth/token/lookup-self') return 'lookup';
  if (path === 'auth/approle/login') return 'login';
  if (path.startsWith('secret/data/')) return 'kv';
  return 'other';
}

async function accessorOf(addr: string, rootToken: string, token: string): Promise<string> {
  const data = await vaultData<{ accessor: string }>(addr, rootToken, 'POST', 'auth/token/lookup', { token });
  return data.accessor;
}

runBenchmark(async () => {
  const seconds = flag('seconds', 150);
  const ttl = flag('ttl', 30);
  const rate = flag('rate', 10);
  const m = await machine();
  const service = await buildService();
  const server = await startAuditedDevServer();
  const auditFile = server.auditFile;
  const dir = await tempDir('vault-load');
  const bootstrapEnv = { ROLE_TOKEN_TTL: `${ttl}s`, ROLE_TOKEN_MAX_TTL: '24h' };

  // ADMIN_PORT 0: each instance its own operator's port, unused here.
  const base = { PATH: process.env.PATH, NODE_ENV: 'production', APP_ENV: 'dev', VAULT_ADDR: server.addr, LOG_LEVEL: 'warn', ADMIN_PORT: '0' };
  const urls = new Map<string, string>();
  const accessors = new Map<string, string>();

  for (const [name, envFile] of [['agent-5s', 'dev'], ['agent-1m', 'staging']] as const) {
    const agentDir = await prepareAgentDir(server, 'dev', bootstrapEnv);
    const agent = startAgent(server, agentDir, envFile, 'dev');
    await waitForFile(agentDir.renderedFile, agent);
    await waitForFile(agentDir.tokenFile, agent);
    const port = await freePort();
    const proc = spawnManaged(service.command, service.args, {
      env: { ...base, SECRETS_MODE: 'agent', PORT: String(port), SECRETS_FILE: agentDir.renderedFile, VAULT_TOKEN_FILE: agentDir.tokenFile },
      logFile: join(agentDir.dir, 'service.log'),
    });
    urls.set(name, `http://127.0.0.1:${port}/readyz`);
    await waitForHttp(`http://127.0.0.1:${port}/readyz`, 200, proc);
    accessors.set(await accessorOf(server.addr, server.rootToken, (await readFile(agentDir.tokenFile, 'utf8')).trim()), name);
  }

  const role = await roleId(server);
  await writeFile(join(dir, 'role-id'), role);
  await writeFile(join(dir, 'secret-id'), await createSecretId(server));
  const sdkPort = await freePort();
  const sdk = spawnManaged(service.command, service.args, {
    env: { ...base, SECRETS_MODE: 'sdk', PORT: String(sdkPort), VAULT_ROLE_ID_FILE: join(dir, 'role-id'), VAULT_SECRET_ID_FILE: join(dir, 'secret-id') },
    logFile: join(dir, 'sdk.log'),
  });
  urls.set('sdk', `http://127.0.0.1:${sdkPort}/readyz`);
  await waitForHttp(urls.get('sdk') ?? '', 200, sdk);

  // The naive client: every request reads every secret.
  const api = nodeVaultApi(server.addr);
  const naiveSecretId = await createSecretId(server);
  const paths = (['database', 'api-keys', 'app'] as const).map((g) => secretPath({ appName: 'saas', appEnv: 'dev' }, g));
  let naiveToken = (await api.loginAppRole(role, naiveSecretId)).token;
  const naiveAccessors = new Set<string>([await accessorOf(server.addr, server.rootToken, naiveToken)]);
  const readAll = () => Promise.all(paths.map((p) => api.readKv(p, naiveToken)));
  const naive = createServer((_req, res) => {
    readAll().catch(async () => {
      naiveToken = (await api.loginAppRole(role, naiveSecretId)).token;
      naiveAccessors.add(await accessorOf(server.addr, server.rootToken, naiveToken));
      return readAll();
    }).then(() => { res.end('{"status":"ok"}'); }, () => { res.statusCode = 503; res.end(); });
  });
  const naivePort = await freePort();
  await new Promise<void>((r) => naive.listen(naivePort, '127.0.0.1', r));
  urls.set('naive', `http://127.0.0.1:${naivePort}/`);

  const windowStart = Date.now();
  const loads = await Promise.all([...urls].map(async ([name, url]) => [name, await load(url, seconds, 2, rate)] as const));
  const windowEnd = Date.now();
  naive.close();

  const entries = (await readAudit(auditFile)).filter((e) => e.time >= windowStart && e.time <= windowEnd);
  for (const a of naiveAccessors) accessors.set(a, 'naive');
  const counts = new Map<string, Record<Kind, number>>();
  for (const name of ['agent-5s', 'agent-1m', 'sdk', 'naive', 'unattributed']) {
    counts.set(name, { renew: 0, lookup: 0, login: 0, kv: 0, other: 0 });
  }
  const rootAccessor = await accessorOf(server.addr, server.rootToken, server.rootToken);
  for (const e of entries) {
    if (e.accessor === rootAccessor) continue; // the benchmark's own lookups
    let name = accessors.get(e.accessor);
    // The SDK service's token lives only in its memory: it is the one accessor left.
    if (name === undefined && e.accessor !== '') name = 'sdk';
    const c = counts.get(name ?? 'unattributed');
    if (c !== undefined) c[kindOf(e.path)]++;
  }
  const windowS = (windowEnd - windowStart) / 1000;
  const perHour = (n: number) => (n * 3600) / windowS;
  const perTtl = (n: number) => (n * ttl) / windowS;
  const rows: (string | number)[][] = [];
  const summary: Record<string, { lifecyclePerTtl: number; totalPerTtl: number; totalPerHour: number }> = {};
  for (const [name, c] of counts) {
    const lifecycle = c.renew + c.lookup + c.login;
    const total = lifecycle + c.kv + c.other;
    if (name === 'unattributed' && total === 0) continue;
    summary[name] = { lifecyclePerTtl: perTtl(lifecycle), totalPerTtl: perTtl(total), totalPerHour: perHour(total) };
    rows.push([name, ...kinds.map((k) => c[k]), total, fmt(perHour(total), 0), fmt(perTtl(lifecycle), 2), fmt(perTtl(total), 2)]);
  }
  const served = Object.fromEntries(loads.map(([n, r]) => [n, `${r.requests} (${r.errors + r.non2xx} failed)`]));
  const ok = (name: string, key: 'lifecyclePerTtl' | 'totalPerTtl') => (summary[name]?.[key] ?? Infinity) <= 3;
  const md = [
    '### 4. Vault load',
    '',
    `Machine: ${machineLine(m)}`,
    '',
    `Command: \`node --import tsx bench/vault-load.ts --seconds=${seconds} --ttl=${ttl} --rate=${rate}\``,
    '',
    `All four clients against one bao dev server at once, each receiving ${rate} req/s for ${fmt(windowS, 0)} s ` +
    `(${fmt(windowS / ttl, 1)} token TTLs of ${ttl} s, max TTL 24 h so no forced re-login). Requests counted from the ` +
    'file audit device (responses), grouped by token accessor; agent mode counts the agent and the service together ' +
    '(one instance). renew/lookup/login keep the token alive ("lifecycle"); kv are secret reads.',
    '',
    mdTable(['client', ...kinds, 'total', 'per hour', 'lifecycle per TTL', 'total per TTL'], rows),
    '',
    `Requests served in the window: ${Object.entries(served).map(([n, s]) => `${n} ${s}`).join(', ')}.`,
    '',
    mdTable(['target: ≤ 3 Vault requests per token TTL per instance', 'lifecycle only', 'all requests'], ['agent-5s', 'agent-1m', 'sdk', 'naive'].map((n) => [
      n, `${fmt(summary[n]?.lifecyclePerTtl ?? NaN, 2)} ${verdict(ok(n, 'lifecyclePerTtl'))}`,
      `${fmt(summary[n]?.totalPerTtl ?? NaN, 2)} ${verdict(ok(n, 'totalPerTtl'))}`,
    ])),
  ].join('\n');
  await writeResult('vault-load', md, { machine: m, windowS, ttl, rate, counts: Object.fromEntries(counts), summary, served });
});
