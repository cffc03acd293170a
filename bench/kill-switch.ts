/**
 * 6. What the kill switch costs Vault: requests per second per instance with the default
 * 10 s token check, beside the same service checking only on the TTL's schedule
 * (TOKEN_CHECK_MAX_INTERVAL_MS=0), in both modes, counted from the server's audit log.
 *
 *   node --import tsx bench/kill-switch.ts [--seconds=120] [--ttl=300]
 *
 * One bao dev server with a file audit device; the role's token TTL is --ttl (default 300 s,
 * the bootstrap's default). Four instances at once, no request load (the checks do not
 * depend on traffic):
 *   agent-10s   bao agent (env/dev.hcl) + the service in agent mode, default check interval
 *   agent-ttl   the same with TOKEN_CHECK_MAX_INTERVAL_MS=0
 *   sdk-10s     the service in SDK mode, default check interval
 *   sdk-ttl     the same with TOKEN_CHECK_MAX_INTERVAL_MS=0
 * Agent mode is attributed by the agent's token accessor (the agent's renewals and KV reads
 * are counted apart from the service's lookups); SDK mode by the metadata its secret id puts
 * on its tokens.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { prepareAgentDir, startAgent, waitForFile } from '../service/test/support/agent.js';
import { waitForHttp } from '../service/test/support/bao.js';
import { freePort } from '../service/test/support/ports.js';
import { spawnManaged } from '../service/test/support/processes.js';
import { tempDir } from '../service/test/support/temp-dirs.js';
import { vaultData } from '../service/test/support/vault-http.js';
import {
  buildService, flag, fmt, machine, machineLine, mdTable, roleId, runBenchmark, startAuditedDevServer, writeResult,
} from './lib/common.js';

interface Entry { time: number; path: string; accessor: string; client: string | undefined }

async function readEntries(file: string): Promise<Entry[]> {
  const entries: Entry[] = [];
  for (const line of (await readFile(file, 'utf8')).split('\n')) {
    if (line === '') continue;
    const e = JSON.parse(line) as {
      type?: string; time?: string; request?: { path?: string }; auth?: { accessor?: string; metadata?: Record<string, string> };
    };
    if (e.type !== 'response') continue;
    entries.push({
      time: Date.parse(e.time ?? ''), path: e.request?.path ?? '', accessor: e.auth?.accessor ?? '',
      client: e.auth?.metadata?.bench_client,
    });
  }
  return entries;
}

runBenchmark(async () => {
  const seconds = flag('seconds', 120);
  const ttl = flag('ttl', 300);
  const m = await machine();
  const service = await buildService();
  const server = await startAuditedDevServer();
  // ADMIN_PORT 0: each instance its own operator's port, unused here.
  const base = { PATH: process.env.PATH, NODE_ENV: 'production', APP_ENV: 'dev', VAULT_ADDR: server.addr, LOG_LEVEL: 'warn', ADMIN_PORT: '0' };
  const bootstrapEnv = { ROLE_TOKEN_TTL: `${ttl}s`, ROLE_TOKEN_MAX_TTL: '24h' };
  const checkMs = { '10s': undefined, ttl: '0' } as const;
  const agentAccessors = new Map<string, string>();

  for (const [variant, interval] of Object.entries(checkMs)) {
    const name = `agent-${variant}`;
    const agentDir = await prepareAgentDir(server, 'dev', bootstrapEnv);
    const agent = startAgent(server, agentDir);
    await waitForFile(agentDir.renderedFile, agent);
    await waitForFile(agentDir.tokenFile, agent);
    const port = await freePort();
    const proc = spawnManaged(service.command, service.args, {
      env: {
        ...base, SECRETS_MODE: 'agent', PORT: String(port), SECRETS_FILE: agentDir.renderedFile, VAULT_TOKEN_FILE: agentDir.tokenFile,
        ...(interval === undefined ? {} : { TOKEN_CHECK_MAX_INTERVAL_MS: interval }),
      },
      logFile: join(agentDir.dir, 'service.log'),
    });
    await waitForHttp(`http://127.0.0.1:${port}/readyz`, 200, proc);
    const token = (await readFile(agentDir.tokenFile, 'utf8')).trim();
    const { accessor } = await vaultData<{ accessor: string }>(server.addr, server.rootToken, 'POST', 'auth/token/lookup', { token });
    agentAccessors.set(accessor, name);
  }

  const role = await roleId(server);
  for (const [variant, interval] of Object.entries(checkMs)) {
    const name = `sdk-${variant}`;
    const dir = await tempDir(name);
    const { secret_id: secretId } = await vaultData<{ secret_id: string }>(server.addr, server.rootToken, 'POST',
      'auth/approle/role/saas-app-dev/secret-id', { metadata: JSON.stringify({ bench_client: name }) });
    await writeFile(join(dir, 'role-id'), role);
    await writeFile(join(dir, 'secret-id'), secretId);
    const port = await freePort();
    const proc = spawnManaged(service.command, service.args, {
      env: {
        ...base, SECRETS_MODE: 'sdk', PORT: String(port), VAULT_ROLE_ID_FILE: join(dir, 'role-id'),
        VAULT_SECRET_ID_FILE: join(dir, 'secret-id'), ...(interval === undefined ? {} : { TOKEN_CHECK_MAX_INTERVAL_MS: interval }),
      },
      logFile: join(dir, 'service.log'),
    });
    await waitForHttp(`http://127.0.0.1:${port}/readyz`, 200, proc);
  }

  const windowStart = Date.now();
  await new Promise((r) => setTimeout(r, seconds * 1000));
  const windowEnd = Date.now();
  const names = ['agent-10s', 'agent-ttl', 'sdk-10s', 'sdk-ttl'];
  const counts = new Map(names.map((n) => [n, { lookup: 0, renew: 0, login: 0, kv: 0 }]));
  for (const e of await readEntries(server.auditFile)) {
    if (e.time < windowStart || e.time > windowEnd) continue;
    const name = e.client ?? agentAccessors.get(e.accessor);
    const c = name === undefined ? undefined : counts.get(name);
    if (c === undefined) continue;
    if (e.path === 'auth/token/lookup-self') c.lookup++;
    else if (e.path === 'auth/token/renew-self') c.renew++;
    else if (e.path === 'auth/approle/login') c.login++;
    else if (e.path.startsWith('secret/data/')) c.kv++;
  }
  const windowS = (windowEnd - windowStart) / 1000;
  const rows = names.map((n) => {
    const c = counts.get(n) ?? { lookup: 0, renew: 0, login: 0, kv: 0 };
    const token = c.lookup + c.renew + c.login;
    return [n, c.lookup, c.renew, c.login, c.kv, fmt(token / windowS, 3), fmt((token + c.kv) / windowS, 3), fmt(token * 3600 / windowS, 0)];
  });
  const md = [
    '### 6. The kill switch\'s cost to Vault',
    '',
    `Machine: ${machineLine(m)}`,
    '',
    `Command: \`node --import tsx bench/kill-switch.ts --seconds=${seconds} --ttl=${ttl}\``,
    '',
    `Four instances against one bao dev server at once for ${fmt(windowS, 0)} s, token TTL ${ttl} s. Requests counted ` +
    'from the file audit device. "token" counts lookup-self, renew-self and logins (what keeps the token verified); ' +
    'agent mode counts the agent\'s renewals and KV reads (re-read every 5 s in dev) with the service\'s lookups.',
    '',
    mdTable(['instance', 'lookup-self', 'renew-self', 'login', 'KV reads', 'token req/s', 'all req/s', 'token req/hour'], rows),
  ].join('\n');
  await writeResult('kill-switch', md, { machine: m, windowS, ttl, counts: Object.fromEntries(counts) });
});
