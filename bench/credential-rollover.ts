/**
 * 7. Dynamic database credentials: how fast a credential change reaches the database, what
 * it costs in failed requests, and what leases cost Vault.
 *
 *   node --import tsx bench/credential-rollover.ts [--changes=20] [--seconds=90] [--rate=50] [--intervals=prod] [--cost-only]
 *
 * One bao dev server (with a file audit device) and one PostgreSQL 15, set up by the test
 * support modules exactly as the reliability suite does (bootstrap.sh, database-engine.sh).
 *
 * Part 1 and 2, rollover (SDK mode, then agent mode, one instance at a time): the role's
 * leases are made short (DB_CREDS_TTL 3s, DB_CREDS_MAX_TTL 6s) so that a credential change
 * happens every ~4 s; the service runs with its default settings (10 s check interval) under
 * --rate requests/s of GET /api/projects with a session cookie, until --changes changes
 * were seen. For each change:
 *   credential change  the new lease's issue_time (root: LIST sys/leases/lookup/<prefix>/ every
 *                      250 ms, PUT sys/leases/lookup for each new id): Vault's own clock, in
 *                      nanoseconds, taken once the user exists in PostgreSQL; the same event
 *                      in both modes.
 *   first request      the earliest backend_start of the new user in pg_stat_activity, polled
 *                      every 50 ms on a superuser connection (pools keep their connections
 *                      open, so the first one is still there at the next poll).
 *   (and the service's own log line that it swapped the credentials in, for the split)
 * The user is matched to its lease by the unix time Vault's default username template puts
 * at its end. Short leases change how often a rollover happens, not what one is: the same
 * code path (renewal capped by the max TTL, then a new read) runs at 1 h/24 h.
 *
 * Part 3, Vault's cost: four instances at once with the default check interval and the
 * role's default TTLs (1 h, max 24 h), no load, for --seconds: sdk-dynamic, sdk-kv,
 * agent-dynamic, agent-kv. Each instance's saas_vault_requests_total{operation,outcome}
 * (its /metrics on the admin port) is read at the start and at the end of the window;
 * the agents' own calls come from the audit log by their token's accessor. Then the leases are
 * revoked, and the time until sdk-dynamic has new credentials and agent-dynamic has halted is
 * measured (each had served a request, so a connection of its pool is open).
 *
 * --intervals=prod: part 3 with production's KV interval (agent-config/env/prod.hcl's
 * static_secret_render_interval: the agents render, and the SDK instances re-read, at it)
 * instead of dev's 5 s; the paths stay dev's. --cost-only: part 3 alone.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import pg from 'pg';
import { prepareAgentDir, startAgent, waitForFile } from '../service/test/support/agent.js';
import { waitForHttp, type DevServer } from '../service/test/support/bao.js';
import { runBootstrap } from '../service/test/support/bootstrap.js';
import { enableDynamicCredentials } from '../service/test/support/database-engine.js';
import { freePort } from '../service/test/support/ports.js';
import { startTestPostgres, type TestPostgres } from '../service/test/support/postgres.js';
import { spawnManaged, type ManagedProcess } from '../service/test/support/processes.js';
import { tempDir } from '../service/test/support/temp-dirs.js';
import { vaultData, vaultRequest } from '../service/test/support/vault-http.js';
import { addIdentityProvider, devRedirectUrl, type IdentityProvider } from '../service/test/support/sign-in.js';
import { renderIntervalConfig } from '../service/test/reliability/harness.js';
import { SteadyLoad, countByStatus, type Sample } from '../service/test/reliability/load.js';
import {
  buildService, flag, fmt, machine, machineLine, mdTable, percentile, readAudit, resultsDir, runBenchmark, sleep, startAuditedDevServer,
  verdict, writeResult,
} from './lib/common.js';

const appEnv = 'dev';
const prefix = `database/creds/saas-app-${appEnv}`;
const shortTtl = '3s';
const shortMaxTtl = '6s';

type Service = Awaited<ReturnType<typeof buildService>>;

interface Instance {
  name: string;
  url: string;
  adminUrl: string;
  proc: ManagedProcess;
}

/** RFC 3339 with up to nanoseconds, as Vault writes issue_time; ms since the epoch, with a fraction. */
function rfc3339Ms(text: string): number {
  const m = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)$/.exec(text);
  if (m === null) return NaN;
  return Date.parse(`${m[1] ?? ''}${m[3] ?? ''}`) + Number(`0${m[2] ?? ''}`) * 1000;
}

async function startInstance(service: Service, name: string, env: NodeJS.ProcessEnv): Promise<Instance> {
  const dir = await tempDir(name);
  const port = await freePort();
  const adminPort = await freePort();
  const proc = spawnManaged(service.command, service.args, {
    env: {
      PATH: process.env.PATH, NODE_ENV: 'production', APP_ENV: appEnv, PORT: String(port), ADMIN_PORT: String(adminPort),
      // One tenant's --rate requests a second (50 by default) measure the rollover, not the
      // tenant's rate limit (20 a second by default).
      DRAIN_DELAY_MS: '0', TENANT_REQUESTS_PER_SECOND: '999999999', ...env,
    },
    logFile: join(dir, 'service.log'),
  });
  const url = `http://127.0.0.1:${port}`;
  await waitForHttp(`${url}/readyz`, 200, proc);
  return { name, url, adminUrl: `http://127.0.0.1:${adminPort}`, proc };
}

/** saas_vault_requests_total by `operation outcome`. */
async function vaultCounts(instance: Instance): Promise<Map<string, number>> {
  const text = await (await fetch(`${instance.adminUrl}/metrics`)).text();
  const counts = new Map<string, number>();
  for (const line of text.split('\n')) {
    const m = /^saas_vault_requests_total\{(.*)\} (\S+)$/.exec(line);
    if (m === null) continue;
    const label = (name: string) => new RegExp(`${name}="([^"]*)"`).exec(m[1] ?? '')?.[1] ?? '?';
    counts.set(`${label('operation')} ${label('outcome')}`, Number(m[2]));
  }
  return counts;
}

/** The time of each of the service's log lines with message `msg` (pino JSON, isoTime). */
async function logTimes(proc: ManagedProcess, msg: string): Promise<number[]> {
  const times: number[] = [];
  for (const line of (await proc.log()).split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      const entry = JSON.parse(line) as { msg?: string; time?: string };
      if (entry.msg === msg && entry.time !== undefined) times.push(Date.parse(entry.time));
    } catch { /* not a log line */ }
  }
  return times.sort((a, b) => a - b);
}

/** Issued leases under the role's prefix, seen by polling as root: id → issue time (ms). */
class LeaseWatch {
  readonly issued = new Map<string, number>();
  #timer: NodeJS.Timeout | undefined;
  #busy = false;
  errors = 0;

  constructor(private readonly server: DevServer) {}

  start(): void {
    this.#timer = setInterval(() => { void this.poll(); }, 250);
  }

  stop(): void {
    clearInterval(this.#timer);
  }

  async poll(): Promise<void> {
    if (this.#busy) return;
    this.#busy = true;
    try {
      const list = await vaultRequest(this.server.addr, this.server.rootToken, 'LIST', `sys/leases/lookup/${prefix}/`);
      const keys = list.status === 200 ? (list.body as { data: { keys: string[] } }).data.keys : [];
      for (const key of keys) {
        const id = `${prefix}/${key}`;
        if (this.issued.has(id)) continue;
        const looked = await vaultData<{ issue_time: string }>(this.server.addr, this.server.rootToken, 'PUT', 'sys/leases/lookup',
          { lease_id: id });
        this.issued.set(id, rfc3339Ms(looked.issue_time));
      }
    } catch {
      this.errors++;
    } finally {
      this.#busy = false;
    }
  }
}

/** The earliest backend_start of every issued user seen in pg_stat_activity, polled every 50 ms. */
class ConnectionWatch {
  readonly first = new Map<string, number>();
  #timer: NodeJS.Timeout | undefined;
  #busy = false;
  polls = 0;

  constructor(private readonly client: pg.Client) {}

  start(): void {
    this.#timer = setInterval(() => { void this.poll(); }, 50);
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer);
    while (this.#busy) await sleep(10);
  }

  async poll(): Promise<void> {
    if (this.#busy) return;
    this.#busy = true;
    try {
      const result = await this.client.query<{ usename: string; ms: string }>(
        "SELECT usename, extract(epoch FROM backend_start) * 1000 AS ms FROM pg_stat_activity WHERE usename LIKE 'v-%'");
      for (const row of result.rows) {
        const ms = Number(row.ms);
        const seen = this.first.get(row.usename);
        if (seen === undefined || ms < seen) this.first.set(row.usename, ms);
      }
      this.polls++;
    } finally {
      this.#busy = false;
    }
  }
}

interface Change {
  lease: string;
  issuedAt: number;
  loadedAt: number | undefined;
  firstConnectionAt: number;
}

interface RolloverResult {
  mode: string;
  changes: Change[];
  /** New leases issued during the load that no connection used. */
  unused: number;
  seconds: number;
  requests: number;
  failed: number;
  skipped: number;
  counts: Record<string, number>;
  failures: string[];
}

/**
 * Pairs each lease issued after `since` with the user that first connected after it, by
 * the unix time at the end of the user's name (Vault's default template: v-…-<unix time>).
 */
function pairChanges(leases: Map<string, number>, users: Map<string, number>, since: number, loaded: number[]): {
  changes: Change[]; unused: number;
} {
  const fresh = [...leases].filter(([, t]) => t >= since).sort((a, b) => a[1] - b[1]);
  const taken = new Set<string>();
  const changes: Change[] = [];
  let unused = 0;
  for (const [lease, issuedAt] of fresh) {
    const second = Math.floor(issuedAt / 1000);
    const match = [...users].filter(([user, at]) => {
      const stamp = Number(/-(\d+)$/.exec(user)?.[1]);
      return !taken.has(user) && (stamp === second || stamp === second - 1) && at >= issuedAt - 1;
    }).sort((a, b) => a[1] - b[1])[0];
    if (match === undefined) {
      unused++;
      continue;
    }
    taken.add(match[0]);
    const loadedAt = loaded.find((t) => t >= Math.floor(issuedAt) && t <= match[1] + 1);
    changes.push({ lease, issuedAt, loadedAt, firstConnectionAt: match[1] });
  }
  return { changes, unused };
}

/** Steady load on `instance` until `wanted` changes were paired (or the time runs out). */
async function measureRollover(
  mode: string, instance: Instance, loadedMessage: string, server: DevServer, client: pg.Client, wanted: number, rate: number,
  identity: IdentityProvider,
): Promise<RolloverResult> {
  const leases = new LeaseWatch(server);
  const connections = new ConnectionWatch(client);
  await leases.poll();
  await connections.poll();
  leases.start();
  connections.start();
  const { cookieHeader: cookie } = await identity.signIn(instance.url);
  const load = new SteadyLoad(instance.url, rate, () => ({ kind: 'list', path: '/api/projects', headers: { Cookie: cookie } }));
  const since = Date.now();
  load.start(mode);
  // A change every ~4 s; give up at 3x that.
  const deadline = since + wanted * 12_000 + 30_000;
  let paired = 0;
  while (Date.now() < deadline) {
    await sleep(1000);
    paired = pairChanges(leases.issued, connections.first, since, []).changes.length;
    process.stderr.write(`\r${mode}: ${paired}/${wanted} changes, ${load.samples.length} answers   `);
    if (paired >= wanted) break;
  }
  process.stderr.write('\n');
  const samples: Sample[] = await load.stop();
  const seconds = (Date.now() - since) / 1000;
  leases.stop();
  await connections.stop();
  await leases.poll();
  await connections.poll();
  const loaded = await logTimes(instance.proc, loadedMessage);
  // Kept for reading after the run (the temp folders go): the service logs no secret.
  await mkdir(resultsDir, { recursive: true });
  await writeFile(join(resultsDir, `credential-rollover-${mode.toLowerCase()}-service.log`), await instance.proc.log());
  const { changes, unused } = pairChanges(leases.issued, connections.first, since, loaded);
  if (paired < wanted) process.stderr.write(`${mode}: only ${paired} changes in ${fmt(seconds, 0)} s\n`);
  const bad = samples.filter((s) => s.status !== 200);
  return {
    mode, changes, unused, seconds, requests: samples.length, failed: bad.length, skipped: load.skipped,
    counts: countByStatus(samples),
    failures: bad.slice(0, 10).map((s) => `${new Date(s.t0).toISOString()} ${s.status} ${s.code ?? s.error ?? ''}`),
  };
}

/** static_secret_render_interval of agent-config/env/<env>.hcl, e.g. "5m". */
async function shippedRenderInterval(env: string): Promise<string> {
  const text = await readFile(join(import.meta.dirname, '..', 'agent-config', 'env', `${env}.hcl`), 'utf8');
  const interval = /static_secret_render_interval\s*=\s*"([^"]+)"/.exec(text)?.[1];
  if (interval === undefined) throw new Error(`agent-config/env/${env}.hcl sets no static_secret_render_interval`);
  return interval;
}

const durationMs = (text: string): number => {
  const m = /^(\d+)(s|m|h)$/.exec(text);
  if (m === null) throw new Error(`not a duration: ${text}`);
  return Number(m[1]) * { s: 1000, m: 60_000, h: 3_600_000 }[m[2] as 's' | 'm' | 'h'];
};

runBenchmark(async () => {
  const intervals = process.argv.find((a) => a.startsWith('--intervals='))?.slice('--intervals='.length) ?? 'dev';
  if (intervals !== 'dev' && intervals !== 'prod') throw new Error('--intervals must be dev or prod');
  const costOnly = process.argv.includes('--cost-only');
  // dev's interval is the one the agent config and the service use unchanged.
  const kvInterval = intervals === 'prod' ? await shippedRenderInterval('prod') : undefined;
  const wanted = flag('changes', 20);
  const seconds = flag('seconds', 90);
  const rate = flag('rate', 50);
  const started = Date.now();
  const m = await machine();
  const service = await buildService();
  const [server, pgServer]: [DevServer & { auditFile: string }, TestPostgres] =
    await Promise.all([startAuditedDevServer(), startTestPostgres()]);
  const client = new pg.Client({ host: pgServer.layout.socketDir, port: pgServer.layout.port, user: 'postgres', database: 'postgres' });
  await client.connect();
  try {
    const bootstrapEnv = { ROLE_SECRET_ID_NUM_USES: '0' };
    const credentials = await tempDir('credentials');
    const boot = await runBootstrap(server, appEnv, credentials, bootstrapEnv);
    if (boot.code !== 0) throw new Error(`bootstrap failed (${boot.code}): ${boot.stderr}`);
    const roleIdFile = join(credentials, 'role-id');
    // After the bootstrap: the sign-in's client in the oidc group (Vault's own OpenID Connect
    // provider), which every instance reads; a session is opened by a sign-in as a browser does.
    const identity = await addIdentityProvider(server, devRedirectUrl);
    await enableDynamicCredentials(server, pgServer, { appEnv, ttl: shortTtl, maxTtl: shortMaxTtl });
    // The KV user, for the kv variants of part 3.
    const kvDatabase = await vaultData<{ data: { username: string; password: string } }>(server.addr, server.rootToken, 'GET',
      `secret/data/saas-project/${appEnv}/database`);
    await pgServer.provision(kvDatabase.data.username, kvDatabase.data.password);

    /** An unwrapped secret id in a file of its own (SDK mode reads VAULT_SECRET_ID_FILE). */
    const secretIdFile = async (name: string): Promise<string> => {
      const { secret_id: secretId } = await vaultData<{ secret_id: string }>(server.addr, server.rootToken, 'POST',
        'auth/approle/role/saas-app-dev/secret-id', {});
      const file = join(await tempDir(`${name}-secret`), 'secret-id');
      await writeFile(file, secretId, { mode: 0o600 });
      return file;
    };
    const database = { DATABASE_HOST: '127.0.0.1', DATABASE_PORT: String(pgServer.layout.port), DATABASE_NAME: 'saas' };
    const sdkEnv = async (name: string, credentialsMode: string, reread?: string): Promise<NodeJS.ProcessEnv> => ({
      ...database, ...identity.serviceEnv, SECRETS_MODE: 'sdk', DATABASE_CREDENTIALS: credentialsMode, VAULT_ADDR: server.addr,
      VAULT_ROLE_ID_FILE: roleIdFile, VAULT_SECRET_ID_FILE: await secretIdFile(name),
      ...(reread === undefined ? {} : { SECRETS_REREAD_INTERVAL_MS: String(durationMs(reread)) }),
    });
    const startAgentInstance = async (name: string, credentialsMode: string, renderInterval?: string) => {
      const agentDir = await prepareAgentDir(server, appEnv, bootstrapEnv);
      if (renderInterval !== undefined) await renderIntervalConfig(agentDir, renderInterval);
      const agent = startAgent(server, agentDir, appEnv, appEnv, { DATABASE_CREDENTIALS: credentialsMode });
      await waitForFile(agentDir.renderedFile, agent);
      await waitForFile(agentDir.tokenFile, agent);
      const instance = await startInstance(service, name, {
        ...database, ...identity.serviceEnv, SECRETS_MODE: 'agent', DATABASE_CREDENTIALS: credentialsMode, VAULT_ADDR: server.addr,
        SECRETS_FILE: agentDir.renderedFile, VAULT_TOKEN_FILE: agentDir.tokenFile,
      });
      const token = (await readFile(agentDir.tokenFile, 'utf8')).trim();
      const { accessor } = await vaultData<{ accessor: string }>(server.addr, server.rootToken, 'POST', 'auth/token/lookup', { token });
      return { agent, instance, accessor };
    };

    // ------------------------------------------------ parts 1 and 2: rollover under load
    const rollovers: RolloverResult[] = [];
    if (!costOnly) {
      const instance = await startInstance(service, 'sdk-rollover', await sdkEnv('sdk-rollover', 'dynamic'));
      rollovers.push(await measureRollover('SDK', instance, 'new database credentials loaded from Vault', server, client, wanted, rate, identity));
      await instance.proc.stop();
    }
    if (!costOnly) {
      const { agent, instance } = await startAgentInstance('agent-rollover', 'dynamic');
      rollovers.push(await measureRollover('agent', instance, 'secrets loaded from the rendered file', server, client, wanted, rate, identity));
      await instance.proc.stop();
      await agent.stop();
    }

    // ------------------------------------------------ part 3: Vault requests per hour, default TTLs
    await enableDynamicCredentials(server, pgServer, { appEnv, ttl: '1h', maxTtl: '24h' });
    const variants = ['sdk-dynamic', 'sdk-kv', 'agent-dynamic', 'agent-kv'] as const;
    const instances = new Map<string, Instance>();
    const agentAccessors = new Map<string, string>();
    for (const name of variants) {
      const [mode, credentialsMode] = name.split('-') as ['sdk' | 'agent', string];
      if (mode === 'sdk') {
        instances.set(name, await startInstance(service, name, await sdkEnv(name, credentialsMode, kvInterval)));
      } else {
        const withAgent = await startAgentInstance(name, credentialsMode, kvInterval);
        instances.set(name, withAgent.instance);
        agentAccessors.set(withAgent.accessor, name);
      }
    }
    const before = new Map<string, Map<string, number>>();
    for (const [name, instance] of instances) before.set(name, await vaultCounts(instance));
    const windowStart = Date.now();
    await sleep(seconds * 1000);
    const windowEnd = Date.now();
    const windowS = (windowEnd - windowStart) / 1000;
    const perHour = (n: number) => (n * 3600) / windowS;
    const operations = ['lease-lookup', 'lease-renew', 'read-dynamic', 'read', 'lookup-self', 'renew-self', 'login'] as const;
    const serviceCalls = new Map<string, Record<string, number>>();
    for (const [name, instance] of instances) {
      const after = await vaultCounts(instance);
      const calls: Record<string, number> = {};
      for (const [key, value] of after) {
        const operation = key.split(' ')[0] ?? key;
        calls[operation] = (calls[operation] ?? 0) + value - (before.get(name)?.get(key) ?? 0);
      }
      serviceCalls.set(name, calls);
    }
    // The agents' own calls, by their token's accessor. The service in agent mode calls with
    // the agent's token too (sys/leases/lookup, lookup-self): those are left to its metrics.
    const agentCalls = new Map<string, Record<string, number>>();
    for (const entry of await readAudit(server.auditFile)) {
      if (entry.time < windowStart || entry.time > windowEnd) continue;
      const name = agentAccessors.get(entry.accessor);
      if (name === undefined) continue;
      const kind = entry.path === 'sys/leases/renew' ? 'lease renew'
        : entry.path.startsWith('database/creds/') ? 'creds read'
          : entry.path.startsWith('secret/data/') ? 'KV read'
            : entry.path === 'auth/token/renew-self' ? 'token renew'
              : entry.path === 'sys/leases/lookup' || entry.path === 'auth/token/lookup-self' ? undefined : `other ${entry.path}`;
      if (kind === undefined) continue;
      const calls = agentCalls.get(name) ?? {};
      calls[kind] = (calls[kind] ?? 0) + 1;
      agentCalls.set(name, calls);
    }

    // ------------------------------------------------ the lease kill switch at these durations
    // Each dynamic instance serves a request (a connection of its pool stays open), then every
    // lease under the role is revoked: the time to new credentials (SDK, its read-dynamic count)
    // and to the halt (agent, its /status) is what a revocation costs with lease lookups on the
    // lease's own schedule.
    const readDynamic = async (instance: Instance) => (await vaultCounts(instance)).get('read-dynamic ok') ?? 0;
    const gateCode = async (instance: Instance) =>
      ((await (await fetch(`${instance.adminUrl}/status`)).json()) as { gate: { code?: string } }).gate.code;
    const sdkInstance = instances.get('sdk-dynamic') as Instance;
    const agentInstance = instances.get('agent-dynamic') as Instance;
    for (const instance of [sdkInstance, agentInstance]) {
      const { cookieHeader: cookie } = await identity.signIn(instance.url);
      const answer = await fetch(`${instance.url}/api/projects`, { headers: { Cookie: cookie } });
      if (answer.status !== 200) throw new Error(`${instance.name}: GET /api/projects answered ${answer.status} before the revocation`);
    }
    const readsBefore = await readDynamic(sdkInstance);
    const revokedAt = Date.now();
    const revoked = await vaultRequest(server.addr, server.rootToken, 'PUT', `sys/leases/revoke-prefix/${prefix}`);
    if (revoked.status !== 204) throw new Error(`revoke-prefix answered ${revoked.status}: ${JSON.stringify(revoked.body)}`);
    const timeUntil = async (done: () => Promise<boolean>): Promise<number | undefined> => {
      while (Date.now() - revokedAt < 15_000) {
        if (await done()) return Date.now() - revokedAt;
        await sleep(20);
      }
      return undefined;
    };
    const [sdkReplacedMs, agentHaltedMs] = await Promise.all([
      timeUntil(async () => await readDynamic(sdkInstance) > readsBefore),
      timeUntil(async () => await gateCode(agentInstance) === 'database_lease_revoked'),
    ]);

    // ------------------------------------------------ the section
    const rolloverRows = rollovers.map((r) => {
      const toConnection = r.changes.map((c) => c.firstConnectionAt - c.issuedAt);
      const toLoaded = r.changes.filter((c) => c.loadedAt !== undefined).map((c) => (c.loadedAt ?? 0) - c.issuedAt);
      const loadedToConnection = r.changes.filter((c) => c.loadedAt !== undefined).map((c) => c.firstConnectionAt - (c.loadedAt ?? 0));
      return [
        r.mode, r.changes.length, fmt(percentile(toConnection, 50), 0), fmt(percentile(toConnection, 95), 0),
        fmt(Math.max(...toConnection), 0),
        `${fmt(percentile(toLoaded, 50), 0)} / ${fmt(percentile(toLoaded, 95), 0)}`,
        `${fmt(percentile(loadedToConnection, 50), 0)} / ${fmt(percentile(loadedToConnection, 95), 0)}`,
      ];
    });
    const failureRows = rollovers.map((r) => [
      r.mode, fmt(r.seconds, 0), r.requests, r.failed, r.skipped, r.changes.length, r.unused,
      Object.entries(r.counts).map(([k, v]) => `${k}: ${v}`).join(', '), verdict(r.failed === 0),
    ]);
    const costRows = variants.map((name) => {
      const s = serviceCalls.get(name) ?? {};
      const a = agentCalls.get(name) ?? {};
      const service = operations.reduce((sum, op) => sum + (s[op] ?? 0), 0);
      const agentAll = Object.values(a).reduce((sum, n) => sum + n, 0);
      const leaseCalls = (s['lease-lookup'] ?? 0) + (s['lease-renew'] ?? 0) + (s['read-dynamic'] ?? 0) + (a['lease renew'] ?? 0) +
        (a['creds read'] ?? 0);
      return [
        name, ...operations.map((op) => fmt(perHour(s[op] ?? 0), 0)), fmt(perHour(service), 0),
        name.startsWith('agent') ? `${a['lease renew'] ?? 0} / ${a['creds read'] ?? 0} / ${a['token renew'] ?? 0} / ${a['KV read'] ?? 0}` : '—',
        fmt(perHour(service + agentAll), 0), fmt(perHour(leaseCalls), 0),
      ];
    });
    const total = (name: string) => {
      const s = serviceCalls.get(name) ?? {};
      const a = agentCalls.get(name) ?? {};
      return perHour(operations.reduce((sum, op) => sum + (s[op] ?? 0), 0) + Object.values(a).reduce((sum, n) => sum + n, 0));
    };
    const all = rollovers.flatMap((r) => r.changes.map((c) => c.firstConnectionAt - c.issuedAt));
    const md = [
      '### 7. Dynamic database credentials: rollover and Vault cost',
      '',
      `Machine: ${machineLine(m)}`,
      '',
      `Command: \`node --import tsx bench/credential-rollover.ts --changes=${wanted} --seconds=${seconds} --rate=${rate}` +
      `${intervals === 'prod' ? ' --intervals=prod' : ''}${costOnly ? ' --cost-only' : ''}\` ` +
      `(${fmt((Date.now() - started) / 1000, 0)} s; service: ${service.how})`,
      '',
      ...(rollovers.length === 0 ? [] : [`**Rollover** (leases of ${shortTtl}, max ${shortMaxTtl}: a change every ~4 s; ${rate} GET /api/projects a second with a session ` +
      'cookie; default check interval). Credential change = the new lease\'s `issue_time` (Vault, ns); first request = the new ' +
      'user\'s earliest `backend_start` in `pg_stat_activity` (polled every 50 ms); "loaded" = the service\'s log line that ' +
      'swapped the credentials in (SDK: *new database credentials loaded from Vault*, agent: *secrets loaded from the rendered file*). ' +
      'Times in ms.',
      '',
      mdTable(['mode', 'changes', 'change → first request p50', 'p95', 'max', 'change → loaded p50 / p95',
        'loaded → first request p50 / p95'], rolloverRows),
      '',
      mdTable(['mode', 'seconds', 'requests', 'failed', 'skipped (load)', 'changes', 'new leases never used', 'answers', 'target 0 failed'],
        failureRows),
      '']),
      `**Vault requests per instance per hour** (four instances at once for ${fmt(windowS, 0)} s, no load, default check interval ` +
      '10 s, leases 1 h / max 24 h, counts × 3600 / window). The service\'s columns come from its ' +
      '`saas_vault_requests_total` (difference over the window, all outcomes); the agent\'s own calls from the audit log by its ' +
      'token\'s accessor, as counts in the window (lease renewals / database/creds reads / token renewals / KV reads).',
      '',
      mdTable(['instance', ...operations, 'service /h', 'agent calls in window', 'all /h', 'lease-related /h'], costRows),
      '',
      `Dynamic minus KV, all requests per hour: SDK ${fmt(total('sdk-dynamic') - total('sdk-kv'), 0)}, ` +
      `agent ${fmt(total('agent-dynamic') - total('agent-kv'), 0)}.`,
      '',
      `KV interval: ${kvInterval ?? '5s'} (${intervals}). Leases revoked after the window: sdk-dynamic had new credentials ` +
      `${sdkReplacedMs === undefined ? 'not within 15 s' : `${sdkReplacedMs} ms`} after, agent-dynamic halted ` +
      `${agentHaltedMs === undefined ? 'not within 15 s' : `${agentHaltedMs} ms`} after (target ≤ 11 s: ` +
      `${verdict(sdkReplacedMs !== undefined && sdkReplacedMs <= 11_000 && agentHaltedMs !== undefined && agentHaltedMs <= 11_000)}).`,
      '',
      ...(all.length === 0 ? [] : [`All changes: p50 ${fmt(percentile(all, 50), 0)} ms, p95 ${fmt(percentile(all, 95), 0)} ms.`]),
    ].join('\n');
    await writeResult('credential-rollover', md, {
      machine: m, wanted, seconds, rate, windowS,
      rollovers: rollovers.map((r) => ({ ...r, changes: r.changes.map((c) => ({
        issuedAt: new Date(c.issuedAt).toISOString(),
        changeToFirstRequestMs: c.firstConnectionAt - c.issuedAt,
        changeToLoadedMs: c.loadedAt === undefined ? null : c.loadedAt - c.issuedAt,
      })) })),
      serviceCalls: Object.fromEntries(serviceCalls), agentCalls: Object.fromEntries(agentCalls),
    });
  } finally {
    await client.end();
  }
});
