import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { chmod, readdir, readFile, readlink, realpath, stat, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { vaultServers } from '../support/bao.js';
import { repoRoot } from '../support/repo-root.js';
import { randomKey } from '../support/rendered-secrets.js';
import { killHoldReopen, killHoldReopenBoundMs } from '../support/kill-switch-hold.js';
import { shippedAgentDurationMs, shippedProduction } from '../support/shipped-durations.js';
import { tempDir } from '../support/temp-dirs.js';
import { vaultData } from '../support/vault-http.js';
import { stackRestartBounds } from '../../../scripts/stack/supervise.js';

const run = promisify(execFile);

/** The local stack's CLI, as `npm run stack` runs it, in a folder of its own. */
function stackCli(stackDir: string, ...args: string[]) {
  return run(process.execPath, ['--import', 'tsx', join(repoRoot, 'scripts/stack/cli.ts'), ...args], {
    cwd: repoRoot, env: { ...process.env, STACK_DIR: stackDir }, timeout: 180_000, maxBuffer: 1 << 22,
  });
}

function parseEnv(text: string): Record<string, string> {
  return Object.fromEntries(text.split('\n').filter((l) => /^[A-Z_]+=/.test(l)).map((l) => {
    const at = l.indexOf('=');
    return [l.slice(0, at), l.slice(at + 1)];
  }));
}

describe('the local stack end to end: real bao server and agent, PostgreSQL, the built service', function () {
  this.timeout(240_000);
  let stackDir: string;
  let env: Record<string, string>;
  let appUrl: string;
  const responses: string[] = [];

  before(async function () {
    await run('npm', ['run', '--silent', 'build'], { cwd: repoRoot });
    const dir = await tempDir('stack');
    await chmod(dir, 0o755); // PostgreSQL runs as its own user when the tests run as root
    stackDir = join(dir, 'stack');
    const up = await stackCli(stackDir, 'up', '--detach');
    expect(up.stdout).to.match(/stack: ready: http:\/\/127\.0\.0\.1:\d+/);
    env = parseEnv(await readFile(join(stackDir, 'stack.env'), 'utf8'));
    appUrl = env.APP_URL ?? '';
  });
  after(async function () {
    // The last test brings it down; a failure before it leaves this to do.
    if (await readFile(join(stackDir, 'pids.json')).then(() => true, () => false)) await stackCli(stackDir, 'down');
  });

  interface Recorded { name: string; pid: number; startedAt: string }
  /** Every pid pids.json has named so far: the stack:down test looks for any of them, and what they started. */
  const everRecorded = new Set<number>();
  async function recorded(): Promise<Recorded[]> {
    const list = JSON.parse(await readFile(join(stackDir, 'pids.json'), 'utf8')) as Recorded[];
    for (const { pid } of list) everRecorded.add(pid);
    return list;
  }
  const pidOf = async (name: string) => (await recorded()).find((p) => p.name === name)?.pid;
  const alive = (pid: number) => { try { process.kill(pid, 0); return true; } catch { return false; } };

  async function call(path: string, init: { method?: string; body?: unknown; cookie?: string } = {}) {
    const response = await fetch(`${appUrl}${path}`, {
      method: init.method ?? 'GET',
      headers: { 'Content-Type': 'application/json', ...(init.cookie === undefined ? {} : { Cookie: init.cookie }) },
      body: init.body === undefined ? null : JSON.stringify(init.body),
    });
    const text = await response.text();
    responses.push(JSON.stringify([...response.headers.entries()]), text);
    return { status: response.status, text, cookie: response.headers.getSetCookie().map((c) => c.split(';')[0]).join('; ') };
  }

  /** This environment without the variables that name a stack: the stack's own come from its folder or its stack.env. */
  function withoutStack(): NodeJS.ProcessEnv {
    const named = new Set(['APP_URL', 'ADMIN_URL', 'VAULT_ADDR', 'VAULT_TOKEN', 'DEMO_USERS_DIR', 'STACK_DIR']);
    return Object.fromEntries(Object.entries(process.env).filter(([name]) => !named.has(name)));
  }

  let jars = 0;
  /**
   * Signs in as the README's user does: `npm run --silent dev:sign-in -- <user> <jar>` (Vault's
   * OpenID Connect provider, played as a browser plays it) with `env` in its environment, then
   * the jar's cookies, as `curl -b <jar>` sends them.
   */
  async function signInWith(user: string, env: NodeJS.ProcessEnv): Promise<string> {
    jars += 1;
    const jar = join(dirname(stackDir), `jar-${String(jars)}`);
    const signedIn = await run('npm', ['run', '--silent', 'dev:sign-in', '--', user, jar], { cwd: repoRoot, env, timeout: 60_000 });
    // What the command printed is scanned for secrets with the HTTP responses.
    responses.push(signedIn.stdout, signedIn.stderr);
    expect(signedIn.stdout).to.contain(`signed in to ${appUrl} as ${user} (tenant ${user})`);
    expect((await stat(jar)).mode & 0o777, 'the jar\'s mode').to.equal(0o600);
    // curl's format: domain, subdomains, path, secure, expiry, name, value; an HttpOnly cookie's line starts #HttpOnly_.
    const cookies = (await readFile(jar, 'utf8')).split('\n').filter((line) => line !== '' && (!line.startsWith('#') || line.startsWith('#HttpOnly_')))
      .map((line) => line.split('\t'));
    // Over plain HTTP (dev, loopback) the session cookie has the plain name, signed, HttpOnly, not Secure.
    expect(cookies.map((fields) => fields[5])).to.include.members(['saas_session', 'saas_session.sig']);
    for (const fields of cookies) expect([fields[0], fields[3]]).to.deep.equal(['#HttpOnly_127.0.0.1', 'FALSE']);
    return cookies.map((fields) => `${fields[5] ?? ''}=${fields[6] ?? ''}`).join('; ');
  }

  /** As the README: stack.env sourced (`set -a; . .stack/stack.env; set +a`), then dev:sign-in. */
  const signIn = (user: string) => signInWith(user, { ...withoutStack(), ...env });

  async function loadedVersion(group: string): Promise<number | undefined> {
    const status = await (await fetch(`${env.ADMIN_URL ?? ''}/status`)).json() as { secrets: { paths: { path: string; version: number }[] } };
    return status.secrets.paths.find((p) => p.path.endsWith(`/${group}`))?.version;
  }

  /** The users connected to the app's database, but Vault's own (vault_admin makes and drops the others). */
  async function appDatabaseUsers(): Promise<string[]> {
    const sessions = await run('psql', ['-X', '-tAc',
      "SELECT DISTINCT usename FROM pg_stat_activity WHERE datname = 'saas' AND usename NOT IN ('vault_admin', 'postgres')"], {
      env: { ...process.env, PGHOST: env.PGHOST, PGPORT: env.PGPORT, PGUSER: 'postgres', PGDATABASE: 'postgres' },
    });
    return sessions.stdout.trim().split('\n').filter((u) => u !== '');
  }

  async function until(what: string, check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!(await check())) {
      if (Date.now() > deadline) throw new Error(`${what} within ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  it('writes stack.env with the Vault address, the dev root token, the app URL and the demo users\' folder', function () {
    expect(env).to.include.keys('VAULT_ADDR', 'VAULT_TOKEN', 'APP_URL', 'ADMIN_URL', 'APP_ENV', 'DEMO_USERS_DIR');
    expect(env.APP_ENV).to.equal('dev');
    expect(env.DEMO_USERS_DIR).to.equal(join(stackDir, 'demo-users'));
  });

  it('puts the root token on no command line: no process of the stack has it in its arguments or environment', async function () {
    expect(env.VAULT_TOKEN, 'the dev server\'s own token, read from its HOME').to.match(/^s\.|^hvs\.|^[\w.-]{20,}$/);
    const looked: string[] = [];
    for (const { name, pid } of await recorded()) {
      const [args, environ] = await Promise.all(['cmdline', 'environ'].map((file) =>
        readFile(`/proc/${pid}/${file}`, 'utf8').catch(() => undefined)));
      if (args === undefined) continue;
      looked.push(name);
      expect(args.includes(env.VAULT_TOKEN ?? ''), `${name}'s arguments`).to.be.false;
      expect(environ?.includes(env.VAULT_TOKEN ?? ''), `${name}'s environment`).to.not.equal(true);
    }
    expect(looked).to.include.members(['vault', 'vault-agent', 'app', 'secret-id-courier']);
  });

  it('makes Vault\'s OpenID Connect provider with the demo users (demo-identity.sh), which dev:sign-in signs in with from the stack\'s folder alone', async function () {
    const said = await readFile(join(stackDir, 'logs/stack.log'), 'utf8');
    const issuer = `${env.VAULT_ADDR ?? ''}/v1/identity/oidc/provider/saas-dev`;
    expect(said).to.contain(`stack: demo-identity sign-in at ${issuer}: demo users acme and globex (passwords in ${join(stackDir, 'demo-users')})`);
    // The provider registered the app's callback, as the script's log says.
    expect(await readFile(join(stackDir, 'logs/demo-identity.log'), 'utf8'))
      .to.contain(`demo-identity: provider saas-dev: issuer ${issuer}, client saas-app-dev, redirect ${appUrl}/auth/callback`);
    const discovery = await (await fetch(`${issuer}/.well-known/openid-configuration`)).json() as { issuer: string };
    expect(discovery.issuer).to.equal(issuer);
    // Each demo user's password: in the stack's folder only, readable by this user only.
    expect((await stat(join(stackDir, 'demo-users'))).mode & 0o777).to.equal(0o700);
    for (const user of ['acme', 'globex']) expect((await stat(join(stackDir, 'demo-users', user))).mode & 0o777, user).to.equal(0o600);
    // No variable but STACK_DIR: the command finds the app and the passwords in the stack's folder.
    const cookie = await signInWith('globex', { ...withoutStack(), STACK_DIR: stackDir });
    const session = await call('/api/session', { cookie });
    expect([session.status, JSON.parse(session.text)]).to.deep.equal([200, { tenant: 'globex' }]);
    expect((await call('/api/session')).status, 'with no cookie').to.equal(401);
  });

  it('serves the operator\'s view and metrics on ADMIN_URL (loopback), not on the public port', async function () {
    expect(env.ADMIN_URL).to.match(/^http:\/\/127\.0\.0\.1:\d+$/);
    const status = await (await fetch(`${env.ADMIN_URL ?? ''}/status`)).json() as { mode: string; gate: { state: string } };
    expect(status).to.nested.include({ mode: 'agent', 'gate.state': 'open' });
    const metrics = await (await fetch(`${env.ADMIN_URL ?? ''}/metrics`)).text();
    expect(metrics).to.match(/^saas_traffic_gate_open 1$/m);
    expect(metrics).to.match(/^saas_vault_requests_total\{operation="lookup-self",outcome="ok"\} [1-9]/m);
    expect((await call('/status')).status).to.equal(404);
    expect((await call('/metrics')).status).to.equal(404);
  });

  it('round-trips a tenant resource', async function () {
    const cookie = await signIn('acme');
    const created = await call('/api/projects', { method: 'POST', body: { name: 'Stack' }, cookie });
    expect(created.status).to.equal(201);
    const { id } = JSON.parse(created.text) as { id: string };
    expect(JSON.parse((await call(`/api/projects/${id}`, { cookie })).text)).to.include({ id, name: 'Stack' });
    expect((await call(`/api/projects/${id}`, { method: 'DELETE', cookie })).status).to.equal(204);
  });

  it('serves from a short-lived PostgreSQL user Vault issued (DATABASE_CREDENTIALS=dynamic), whose lease the operator view shows', async function () {
    expect(env.DATABASE_CREDENTIALS).to.equal('dynamic');
    const cookie = await signIn('acme');
    expect((await call('/api/projects', { cookie })).status).to.equal(200);
    const status = await (await fetch(`${env.ADMIN_URL ?? ''}/status`)).json() as {
      lease: { path: string; renewedBy: string; ttlSeconds: number } | null;
      secrets: { paths: { path: string; version: number | null }[] };
    };
    expect(status.lease).to.include({ path: 'database/creds/saas-app-dev', renewedBy: 'agent' });
    expect(status.lease?.ttlSeconds).to.be.within(3000, 3600);
    expect(status.secrets.paths).to.deep.include({ path: 'database/creds/saas-app-dev', version: null });
    // The user the app connects as: one the database engine made, under the lease.
    const users = await appDatabaseUsers();
    expect(users.length).to.be.greaterThan(0);
    for (const user of users) expect(user).to.match(/^v-/);
    // vault_admin's initial password was handed to Vault, which rotated it: no copy stays behind.
    expect(await readFile(join(stackDir, 'pg-init/vault-admin-password'), 'utf8').catch(() => 'gone')).to.equal('gone');
  });

  it('keeps old session cookies valid when a new session key is put in front', async function () {
    const old = await signIn('acme');
    const current = await vaultData<{ data: { session_keys: string[] } }>(
      env.VAULT_ADDR ?? '', env.VAULT_TOKEN ?? '', 'GET', 'secret/data/saas-project/dev/app');
    const before = await loadedVersion('app');
    await vaultData(env.VAULT_ADDR ?? '', env.VAULT_TOKEN ?? '', 'POST', 'secret/data/saas-project/dev/app',
      { data: { session_keys: [randomKey(), ...current.data.session_keys] } });
    await until('the new app version is not loaded', async () => (await loadedVersion('app')) === (before ?? 0) + 1, 7000);
    const oldSession = await call('/api/session', { cookie: old });
    expect([oldSession.status, oldSession.text]).to.deep.equal([200, '{"tenant":"acme"}']);
    const fresh = await signIn('acme');
    expect(fresh).to.not.equal(old);
    expect((await call('/api/session', { cookie: fresh })).status).to.equal(200);
  });

  it('shows no secret value in the service\'s log, demo-identity\'s log, dev:sign-in\'s output or any HTTP response', async function () {
    // Each value with what it is: a failure names that, never the value.
    const values: [string, string][] = [];
    for (const group of ['database', 'api-keys', 'app', 'oidc']) {
      const versions = await vaultData<{ versions: Record<string, unknown> }>(env.VAULT_ADDR ?? '', env.VAULT_TOKEN ?? '',
        'GET', `secret/metadata/saas-project/dev/${group}`);
      for (const version of Object.keys(versions.versions)) {
        const secret = await vaultData<{ data: Record<string, unknown> }>(env.VAULT_ADDR ?? '', env.VAULT_TOKEN ?? '',
          'GET', `secret/data/saas-project/dev/${group}?version=${version}`);
        values.push(...Object.entries(secret.data).filter(([key]) => key !== 'username' && key !== 'client_id')
          .flatMap(([key, v]) => [v].flat().map((one) => [`KV ${group} v${version} ${key}`, String(one)] as [string, string])));
      }
    }
    values.push(['the agent\'s token', (await readFile(join(stackDir, 'agent/secrets/token'), 'utf8')).trim()],
      ['the dev root token', env.VAULT_TOKEN ?? '']);
    // The database password in use: the dynamic user's, from the file the agent rendered (the KV one above is unused).
    const rendered = JSON.parse(await readFile(join(stackDir, 'agent/secrets/app.json'), 'utf8')) as {
      database: { path: string; data: { username: string; password: string } };
    };
    expect(rendered.database.path).to.equal('database/creds/saas-app-dev');
    expect(await appDatabaseUsers(), 'the rendered user is the one the app is connected as').to.include(rendered.database.data.username);
    values.push(['the dynamic database password in use', rendered.database.data.password]);
    for (const user of ['acme', 'globex']) {
      values.push([`the demo user ${user}'s password`, (await readFile(join(stackDir, 'demo-users', user), 'utf8')).trim()]);
    }
    expect(values.length).to.be.at.least(10);
    const log = await readFile(join(stackDir, 'logs/app.log'), 'utf8');
    expect(log).to.contain('"msg":"request"');
    const identityLog = await readFile(join(stackDir, 'logs/demo-identity.log'), 'utf8');
    for (const [what, value] of values) {
      expect(value, what).to.have.length.greaterThan(8);
      expect(log.includes(value), `app.log holds ${what}`).to.equal(false);
      expect(identityLog.includes(value), `demo-identity.log holds ${what}`).to.equal(false);
      expect(responses.filter((response) => response.includes(value)).length, `HTTP responses holding ${what}`).to.equal(0);
    }
  });

  /** /proc/mounts' tmpfs entries under the stack's folder: mount point and options. */
  async function tmpfsUnder(dir: string): Promise<{ target: string; options: string }[]> {
    const real = await realpath(dir);
    return (await readFile('/proc/mounts', 'utf8')).split('\n').map((line) => line.split(' '))
      .filter(([, target, type]) => type === 'tmpfs' && target !== undefined && (target === real || target.startsWith(`${real}/`)))
      .map(([, target, , options]) => ({ target: target ?? '', options: options ?? '' }));
  }

  it('keeps the agent\'s folder (token sink, rendered secrets, credentials) on a tmpfs as root on Linux, else says so once', async function () {
    const said = await readFile(join(stackDir, 'logs/stack.log'), 'utf8');
    if (process.platform !== 'linux' || process.getuid?.() !== 0) {
      expect(said.match(/is on the persistent filesystem, not a tmpfs: mounting one needs root on Linux/g)).to.have.length(1);
      return;
    }
    const agentDir = await realpath(join(stackDir, 'agent'));
    const mounts = await tmpfsUnder(stackDir);
    expect(mounts.map((m) => m.target)).to.deep.equal([agentDir]);
    expect(mounts[0]?.options.split(',')).to.include.members(['rw', 'nosuid', 'nodev', 'noexec', 'size=1024k', 'mode=700']);
    expect((await stat(agentDir)).mode & 0o777).to.equal(0o700);
    // What the agent writes is there: its sink and the rendered file.
    for (const file of ['secrets/token', 'secrets/app.json', 'credentials/role-id']) expect((await stat(join(agentDir, file))).dev).to.equal((await stat(agentDir)).dev);
    expect((await stat(agentDir)).dev).to.not.equal((await stat(stackDir)).dev);
    expect(said.match(/vault-agent {2}\S+ is a tmpfs \(size=1m,mode=0700,nosuid,nodev,noexec\)/g)).to.have.length(1);
  });

  it('keeps a wrapped secret id waiting for the agent\'s next login (secret-id-courier), readable by this user only', async function () {
    const credentials = join(stackDir, 'agent/credentials');
    const file = join(credentials, 'secret-id');
    // The agent's login at start took the bootstrap's; the courier looks every 5 s.
    await until('no secret id waiting', () => stat(file).then(() => true, () => false), 6000);
    const [fileStat, dirStat] = [await stat(file), await stat(credentials)];
    expect((fileStat.mode & 0o777).toString(8), 'secret-id mode').to.equal('400');
    expect((dirStat.mode & 0o777).toString(8), 'credentials/ mode').to.equal('700');
    expect([fileStat.uid, dirStat.uid]).to.deep.equal([process.getuid?.(), process.getuid?.()]);
    expect(await readFile(join(stackDir, 'logs/secret-id-courier.log'), 'utf8')).to.match(/delivered a wrapped secret id to .*\(none waiting; wrap TTL 10m\)/);
    if (process.getuid?.() !== 0) return; // Another user to try it as: only root can be one.
    const asNobody = (path: string) => run('cat', [path], { uid: 65534, gid: 65534 }).then(() => 'read', (error: unknown) => String(error));
    // The probe works: the same user reads a file that others may read, beside the stack.
    const open = join(dirname(stackDir), 'readable-by-all');
    await writeFile(open, 'x', { mode: 0o444 });
    expect(await asNobody(open)).to.equal('read');
    expect(await asNobody(file)).to.contain('Permission denied');
  });

  it('restarts the agent after a SIGKILL, which logs in again with the courier\'s secret id: a new token in its sink, /readyz 200 throughout', async function () {
    const secretId = join(stackDir, 'agent/credentials/secret-id');
    await until('no secret id waiting', () => stat(secretId).then(() => true, () => false), 6000);
    const before = await pidOf('vault-agent');
    expect(before).to.be.a('number');
    const tokenFile = join(stackDir, 'agent/secrets/token');
    const oldToken = await readFile(tokenFile, 'utf8');
    // The bound, from the mechanism: the supervisor's first delay, then the agent's login as it
    // took at the stack's start (from its process's start, /proc, to its token in the sink), + 1 s.
    const agentLog = await readFile(join(stackDir, 'logs/vault-agent.log'), 'utf8');
    const startTicks = Number((await recorded()).find((p) => p.name === 'vault-agent')?.startedAt);
    const uptimeMs = Number((await readFile('/proc/uptime', 'utf8')).split(' ')[0]) * 1000;
    const startedAtMs = Date.now() - (uptimeMs - startTicks * 10); // USER_HZ is 100 on Linux
    const loginMs = Math.round((await stat(tokenFile)).mtimeMs - startedAtMs);
    expect(loginMs).to.be.within(0, 5000);
    const bound = stackRestartBounds.firstDelayMs + loginMs + 1000;
    const readyz: number[] = [];
    const polling = new AbortController();
    const poll = (async () => {
      while (!polling.signal.aborted) {
        readyz.push(await fetch(`${appUrl}/readyz`).then((r) => r.status, () => 0));
        await new Promise((r) => setTimeout(r, 100));
      }
    })();
    const killedAt = Date.now();
    let took: number;
    try {
      process.kill(before ?? 0, 'SIGKILL');
      await until(`no new token in the sink (bound ${String(bound)} ms: 500 + the agent's login ${String(loginMs)} + 1000)`,
        async () => (await readFile(tokenFile, 'utf8').catch(() => oldToken)) !== oldToken, bound);
      took = Date.now() - killedAt;
      await new Promise((r) => setTimeout(r, 1000));
    } finally {
      polling.abort();
      await poll;
    }
    const after = await pidOf('vault-agent');
    expect(after).to.not.equal(before);
    expect(alive(after ?? 0)).to.equal(true);
    const said = await readFile(join(stackDir, 'logs/stack.log'), 'utf8');
    expect(said).to.contain('stack: vault-agent  was killed by SIGKILL; restarting it in 0.5 s, restart 1 of at most 5 within 60 s');
    expect(said).to.contain(`stack: vault-agent  restarted (pid ${String(after)})`);
    const restarted = (await readFile(join(stackDir, 'logs/vault-agent.log'), 'utf8')).slice(agentLog.length);
    expect(restarted).to.contain('authentication successful');
    expect(restarted).to.not.contain('no known secret ID');
    expect(readyz.length).to.be.greaterThan(5);
    expect(readyz.filter((status) => status !== 200), `/readyz during the restart (${String(took)} ms to a new token)`).to.deep.equal([]);
    // The app took the new token (its sink watch and one lookup, within the second waited above): the agent on time.
    const status = await (await fetch(`${env.ADMIN_URL ?? ''}/status`)).json() as { agent: { state: string } | null };
    expect(status.agent?.state).to.equal('on_time');
    expect(await (await fetch(`${env.ADMIN_URL ?? ''}/metrics`)).text()).to.match(/^saas_agent_overdue 0$/m);
  });

  it('kill-switch.sh (root token) halts the app within the check interval + 1 s, keeps it halted through a restarted agent\'s refused logins and two courier intervals, and --reopen brings the same app back', async function () {
    // The shipped durations: the app's check interval (the default: the stack sets none), the
    // role's token TTL, the agent's max_backoff (env/dev.hcl), the stack's courier interval.
    const { durations: d } = await shippedProduction();
    const deliveryMs = Number(/DELIVERY_INTERVAL: '(\d+)s'/.exec(await readFile(join(repoRoot, 'scripts/stack/stack.ts'), 'utf8'))?.[1]) * 1000;
    expect(deliveryMs, 'the courier\'s DELIVERY_INTERVAL in scripts/stack/stack.ts').to.be.above(0);
    const platform = {
      appEnv: 'dev', checkMs: d.checkInterval, tokenTtlMs: d.tokenTtl, maxBackoffMs: await shippedAgentDurationMs('env/dev.hcl', 'max_backoff'), deliveryMs,
      readyz: async () => (await fetch(`${appUrl}/readyz`)).status,
      agentLog: () => readFile(join(stackDir, 'logs/vault-agent.log'), 'utf8'),
      courierLog: () => readFile(join(stackDir, 'logs/secret-id-courier.log'), 'utf8'),
      killSwitch: async (args: string[]) => (await run('sh', [join(repoRoot, 'scripts/prod/kill-switch.sh'), ...args], {
        env: { PATH: process.env.PATH, VAULT_ADDR: env.VAULT_ADDR, VAULT_TOKEN: env.VAULT_TOKEN, VAULT_CLI: vaultServers.bao.bin },
      })).stdout,
      // Killed: the stack's supervisor starts it again within 0.5 s.
      restartAgent: async () => { process.kill(await pidOf('vault-agent') ?? 0, 'SIGKILL'); },
    };
    this.timeout(killHoldReopenBoundMs(platform));
    const app = await pidOf('app');
    const { haltedMs, refusedAfterMs, readyMs } = await killHoldReopen(platform);
    expect(await pidOf('app'), 'the same app process').to.equal(app);
    console.log(`      halted ${haltedMs} ms; first failed login ${refusedAfterMs} ms after the kill; ready ${readyMs} ms after the reopen`);
  });

  it('stack:down stops every process the stack started, the restarted agent too, and leaves no process behind', async function () {
    const names = (await recorded()).map((p) => p.name);
    expect(names).to.include.members(['supervisor', 'vault', 'secret-id-courier', 'postgres', 'vault-agent', 'app']);
    const down = await stackCli(stackDir, 'down');
    for (const name of names) expect(down.stdout).to.contain(`stack: ${name.padEnd(12)} stopped`);
    for (const pid of everRecorded) expect(alive(pid), `pid ${pid} still alive`).to.equal(false);
    // Nor anything they started: no process in a session the stack opened (each process leads
    // its own), working in its folder or naming it.
    const left: string[] = [];
    for (const entry of await readdir('/proc')) {
      if (!/^\d+$/.test(entry)) continue;
      const stat = await readFile(`/proc/${entry}/stat`, 'utf8').catch(() => '');
      const session = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[3]);
      const cwd = await readlink(`/proc/${entry}/cwd`).catch(() => '');
      const cmdline = await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '');
      if (everRecorded.has(session) || cwd.startsWith(stackDir) || cmdline.includes(stackDir)) left.push(`${entry}: ${cmdline}`);
    }
    expect(left).to.deep.equal([]);
    // The agent's tmpfs (as root) is unmounted, and its contents gone with it.
    expect(await tmpfsUnder(stackDir)).to.deep.equal([]);
    if (process.getuid?.() === 0) expect(down.stdout).to.match(/stack: vault-agent {2}\S+ unmounted/);
  });
});
