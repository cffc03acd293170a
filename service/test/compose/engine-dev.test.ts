import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { copyFile, mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { repoRoot } from '../support/repo-root.js';
import { privilege, run } from '../../../scripts/engine/engine.js';
import { playSignIn } from '../../../scripts/sign-in/play-browser.js';
import { ComposeProject, testEngine } from '../support/engine.js';
import { freePort } from '../support/ports.js';
import { registerSecret } from '../support/leak-scan.js';
import { tempDir } from '../support/temp-dirs.js';

/*
 * docker-compose.yml brought up for real on the project's engine (npm run engine:start), with
 * the offline stand-ins of the official images, as a user runs it: `docker-compose up`.
 */

const project = 'saasdev';
/**
 * Credential-named variables a user's shell may hold when they run `docker-compose up`: each set
 * to a canary for every compose command here, so a passthrough (`environment: [VAULT_TOKEN]`) or
 * an interpolation (`${VAULT_TOKEN}`) would carry it into a container or into `docker-compose config`.
 */
const shellCredentials = [
  'VAULT_TOKEN', 'BAO_TOKEN', 'VAULT_DEV_ROOT_TOKEN_ID', 'VAULT_ROLE_ID', 'VAULT_SECRET_ID', 'POSTGRES_PASSWORD',
  'PGPASSWORD', 'DATABASE_PASSWORD', 'ADMIN_TOKEN', 'WEBHOOK_SIGNING_KEY',
];
const canary = (what: string) => `canary-${what}-${randomBytes(12).toString('hex')}`;
const appServices = ['vault', 'vault-init', 'postgres', 'vault-db-init', 'vault-agent', 'app', 'secret-id-courier'];
/** The agent's healthcheck interval and secret-id-courier's DELIVERY_INTERVAL in docker-compose.yml. */
const agentCheckMs = 5_000;
const deliveryMs = 5_000;
/** A container started again (by restart or its policy) and its agent logged in: from the logs, about 2 s. */
const startAndLoginMs = 8_000;

interface Started {
  startedAt: number;
  finishedAt: number;
  exitCode: number;
}

function stateOf(inspect: Record<string, unknown>): Started {
  const state = inspect.State as { StartedAt: string; FinishedAt: string; ExitCode: number };
  return { startedAt: Date.parse(state.StartedAt), finishedAt: Date.parse(state.FinishedAt), exitCode: state.ExitCode };
}

/** fetch with a deadline: docker-proxy may accept a connection and hold it while the container starts. */
function get(url: string, init: RequestInit = {}): Promise<Response> {
  return fetch(url, { ...init, signal: AbortSignal.timeout(3_000) });
}

async function poll<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await sleep(100);
  }
}

describe('compose on the engine: docker-compose.yml up, for real', function () {
  this.timeout(120_000);
  let compose: ComposeProject;
  /** Set once the project exists on the engine: the after hook has something to save and remove. */
  let created = false;
  let appUrl: string;
  let adminUrl: string;
  /** Vault as the browser on this machine reaches it: the published port. */
  let vaultUrl: string;
  let appPort = 0;
  let upToReadyMs = 0;
  let rootToken = '';
  const shellCanaries: Record<string, string> = {};

  /** A command in the vault container with the dev root token, read there from the token file. */
  async function vaultCli(args: string, input?: string): Promise<string> {
    return compose.must(['exec', '-T', 'vault', 'sh', '-c',
      `VAULT_ADDR=http://127.0.0.1:8200 VAULT_TOKEN=$(cat /vault/home/.vault-token) vault ${args}`], input);
  }

  /** The dev root token and every KV secret the bootstrap generated, for the suite's secret scan. */
  async function registerSecrets(): Promise<void> {
    rootToken = (await compose.must(['exec', '-T', 'vault', 'cat', '/vault/home/.vault-token'])).trim();
    registerSecret('the compose dev root token', rootToken);
    for (const group of ['database', 'api-keys', 'oidc', 'app']) {
      const json = await vaultCli(`kv get -format=json -mount=secret saas-project/dev/${group}`).catch(() => '{}');
      const data = (JSON.parse(json) as { data?: { data?: Record<string, unknown> } }).data?.data ?? {};
      // The client id is no secret: every sign-in's redirect to the issuer carries it.
      delete data.client_id;
      for (const [key, value] of Object.entries(data)) registerSecret(`compose ${group}.${key}`, value, ...(Array.isArray(value) ? (value as unknown[]) : []));
    }
    const infra = await vaultCli('kv get -format=json -mount=secret saas-infra/dev/postgres');
    for (const value of Object.values((JSON.parse(infra) as { data: { data: Record<string, string> } }).data.data)) {
      registerSecret('compose postgres passwords', value);
    }
  }

  /** The token in the agent's sink now (registered with the secret scan). */
  async function sinkToken(): Promise<string> {
    const token = (await compose.must(['exec', '-T', 'vault-agent', 'cat', '/vault/agent/secrets/token'])).trim();
    registerSecret('the compose agent token', token);
    return token;
  }

  /** Whether the dev Vault accepts `token` (a lookup-self from inside the vault container). */
  async function vaultAccepts(token: string): Promise<boolean> {
    const result = await compose.compose(['exec', '-T', 'vault', 'sh', '-c',
      'VAULT_ADDR=http://127.0.0.1:8200 VAULT_TOKEN=$(cat) vault token lookup >/dev/null'], token);
    return result.code === 0;
  }

  /** secret-id-courier keeps a wrapped secret id waiting: within its interval of the last login. */
  async function secretIdWaiting(): Promise<void> {
    await poll('a secret id waiting in credentials/', deliveryMs + 1_000, async () =>
      ((await compose.compose(['exec', '-T', 'vault-agent', 'test', '-s', 'credentials/secret-id'])).code === 0 ? true : undefined));
  }

  /** The agent has logged in again: a token other than `old` in its sink, which Vault accepts. */
  async function newLogin(old: string, timeoutMs: number): Promise<string> {
    return poll('a new token in the agent\'s sink, accepted by Vault', timeoutMs, async () => {
      const token = await sinkToken();
      return token !== old && token !== '' && await vaultAccepts(token) ? token : undefined;
    });
  }

  async function state(name: string): Promise<{ id: string; restarts: number; status: string; health?: string }> {
    const found = (await compose.containers()).get(name);
    if (found === undefined) throw new Error(`no container for ${name}`);
    const inspect = found.inspect as { RestartCount: number; State: { Status: string; Health?: { Status: string } } };
    return {
      id: found.id, restarts: inspect.RestartCount, status: inspect.State.Status,
      ...(inspect.State.Health === undefined ? {} : { health: inspect.State.Health.Status }),
    };
  }

  /** SIGKILL to a container's main process from outside compose, as a crash or the OOM killer would. */
  async function crash(name: string): Promise<void> {
    const { id } = await state(name);
    const pid = (await compose.docker(['inspect', '-f', '{{.State.Pid}}', id])).stdout.trim();
    // The container's processes are the host's; root (or the engine's sudo) may signal them.
    const command = [...await privilege(), 'kill', '-KILL', pid];
    const killed = await run(command[0] ?? 'kill', command.slice(1));
    if (killed.code !== 0) throw new Error(`kill -KILL ${pid} (${name}): ${killed.stderr}`);
  }

  async function ready(timeoutMs: number): Promise<void> {
    await poll('200 from /readyz', timeoutMs, async () => ((await get(`${appUrl}/readyz`)).status === 200 ? true : undefined));
  }

  /** A demo user's password, read where docker-compose.yml's comments tell a user to read it. */
  async function demoPassword(user: string): Promise<string> {
    const password = (await compose.must(['exec', '-T', 'vault', 'cat', `/vault/keep-mounted/demo-users/${user}`])).trim();
    registerSecret(`the compose demo user ${user}'s password`, password);
    return password;
  }

  /**
   * Signs in as a demo user the way dev:sign-in does: the browser on this machine reaches the app
   * and Vault at their published ports. Resolves to the Cookie header of the session.
   */
  async function signIn(user = 'acme'): Promise<string> {
    const signedIn = await playSignIn({ appUrl, user, password: await demoPassword(user), vaultAddr: vaultUrl });
    expect(signedIn.tenant).to.equal(user);
    // Plain HTTP on loopback, dev only: the plain cookie name, not Secure.
    expect(signedIn.cookies.find((c) => c.name === 'saas_session'), signedIn.cookies.map((c) => c.name).join(', '))
      .to.deep.include({ secure: false, httpOnly: true });
    return signedIn.cookieHeader;
  }

  /** A tenant's project created, listed and read back in PostgreSQL; resolves to the database user that served it. */
  async function projectRoundTrip(name: string): Promise<string> {
    const cookie = await signIn('acme');
    const created = await get(`${appUrl}/api/projects`, {
      method: 'POST', headers: { 'content-type': 'application/json', cookie }, body: JSON.stringify({ name }),
    });
    expect(created.status).to.equal(201);
    const { id } = await created.json() as { id: string };
    const listed = await (await get(`${appUrl}/api/projects`, { headers: { cookie } })).json();
    expect(JSON.stringify(listed)).to.contain(id);
    const rows = await psql(`SELECT name FROM projects WHERE id = '${id}'`);
    expect(rows.trim()).to.equal(name);
    const users = await psql("SELECT DISTINCT usename FROM pg_stat_activity WHERE datname = 'saas' AND usename LIKE 'v-%'");
    expect(users.trim(), 'a dynamic user from database/creds/saas-app-dev').to.match(/^v-approle-saas-app-\S+$/);
    return users.trim();
  }

  async function psql(sql: string): Promise<string> {
    return compose.must(['exec', '-T', 'postgres', 'psql', '-U', 'postgres', '-d', 'saas', '-tAc', sql]);
  }

  before(async function () {
    this.timeout(900_000);
    const engine = await testEngine(this);
    const [app, admin, vault] = [await freePort(), await freePort(), await freePort()];
    for (const name of shellCredentials) shellCanaries[name] = canary(name);
    registerSecret('canaries in the shell\'s environment', ...Object.values(shellCanaries));
    compose = new ComposeProject(engine, join(repoRoot, 'docker-compose.yml'), project, {
      ...shellCanaries, APP_HOST_PORT: String(app), ADMIN_HOST_PORT: String(admin), VAULT_HOST_PORT: String(vault),
    });
    appUrl = `http://127.0.0.1:${app}`;
    adminUrl = `http://127.0.0.1:${admin}`;
    vaultUrl = `http://127.0.0.1:${vault}`;
    appPort = app;
    created = true;
    await compose.down();
    // The app's image once per suite; unchanged sources reuse every cached layer.
    await compose.must(['build', 'app']);
    const began = Date.now();
    await compose.must(['up', '-d']);
    await poll('the app ready on /readyz', 90_000, async () => ((await get(`${appUrl}/readyz`)).status === 200 ? true : undefined));
    upToReadyMs = Date.now() - began;
    console.log(`      docker-compose up -> first 200 on /readyz: ${upToReadyMs} ms (engine and images ready in ${engine.readyMs} ms)`);
    await registerSecrets();
  });

  after(async function () {
    this.timeout(120_000);
    if (!created) return;
    await compose.saveLogs('compose-dev');
    await compose.down();
  });

  it('starts the services in order, and the app answers 200 on /readyz on 127.0.0.1', async function () {
    const containers = await compose.containers();
    expect([...containers.keys()]).to.have.members(appServices);
    const at = (name: string) => {
      const found = containers.get(name);
      if (found === undefined) throw new Error(`no container for ${name}`);
      return stateOf(found.inspect);
    };
    expect(at('vault-init').exitCode, 'vault-init').to.equal(0);
    expect(at('vault-db-init').exitCode, 'vault-db-init').to.equal(0);
    expect(at('vault-init').startedAt).to.be.greaterThan(at('vault').startedAt);
    expect(at('postgres').startedAt).to.be.at.least(at('vault-init').finishedAt);
    expect(at('vault-db-init').startedAt).to.be.greaterThan(at('postgres').startedAt);
    expect(at('vault-agent').startedAt).to.be.at.least(at('vault-db-init').finishedAt);
    expect(at('app').startedAt).to.be.greaterThan(at('vault-agent').startedAt);
    const ports = (containers.get('app')?.inspect.NetworkSettings as { Ports: Record<string, { HostIp: string }[] | null> }).Ports;
    expect(ports['3000/tcp']?.[0]?.HostIp).to.equal('127.0.0.1');
    const ready = await get(`${appUrl}/readyz`);
    expect(ready.status).to.equal(200);
  });

  it('signs in with the dev Vault\'s OpenID Connect provider: a demo user\'s session over loopback HTTP, ended by logout', async function () {
    const init = await compose.must(['logs', '--no-color', 'vault-init']);
    expect(init).to.include(`provider saas-dev: issuer http://vault:8200/v1/identity/oidc/provider/saas-dev, client saas-app-dev, redirect http://localhost:${appPort}/auth/callback`);
    // The app sends the browser to the issuer it knows (Vault as the app reaches it), with the
    // loopback redirect vault-init registered.
    const login = await get(`${appUrl}/auth/login`, { redirect: 'manual' });
    await login.body?.cancel();
    expect(login.status).to.equal(302);
    const authorize = new URL(login.headers.get('location') ?? '');
    expect(authorize.origin).to.equal('http://vault:8200');
    expect(authorize.pathname).to.match(/\/identity\/oidc\/provider\/saas-dev\/authorize$/);
    expect(authorize.searchParams.get('redirect_uri')).to.equal(`http://localhost:${appPort}/auth/callback`);

    const cookie = await signIn('globex');
    const session = await get(`${appUrl}/api/session`, { headers: { cookie } });
    expect(session.status).to.equal(200);
    expect(await session.json()).to.deep.equal({ tenant: 'globex' });
    const logout = await get(`${appUrl}/auth/logout`, { method: 'POST', headers: { cookie } });
    expect(logout.status).to.equal(204);
    expect((await get(`${appUrl}/api/session`, { headers: { cookie } })).status, 'the session ended in PostgreSQL').to.equal(401);
    // A wrong password stops at Vault: no code, no session.
    const refused = await playSignIn({ appUrl, user: 'acme', password: 'not-the-password', vaultAddr: vaultUrl }).then(() => '', (e: unknown) => String(e));
    expect(refused).to.match(/signing in to Vault .* as acme: Vault answered/);
  });

  it('keeps a tenant\'s project in PostgreSQL, as a user Vault issued', async function () {
    await projectRoundTrip('Apollo');
  });

  it('takes a KV rotation (api-keys) within the agent\'s render interval (5 s) plus a second', async function () {
    const versionOf = async () => {
      const status = await (await get(`${adminUrl}/status`)).json() as { secrets: { paths: { path: string; version: number | null }[] } };
      return status.secrets.paths.find((p) => p.path.endsWith('/api-keys'))?.version ?? 0;
    };
    const before = await versionOf();
    const key = `rotated-${Date.now().toString(16)}-${Math.random().toString(16).slice(2)}`;
    registerSecret('the rotated webhook key', key);
    const began = Date.now();
    await vaultCli('kv patch -mount=secret saas-project/dev/api-keys webhook_signing_key=-', key);
    await poll('the new api-keys version in the app', 6_000, async () => ((await versionOf()) > before ? true : undefined));
    console.log(`      rotation reached the app in ${Date.now() - began} ms`);
  });

  it('runs the app as 1000:1000 with a read-only root and no capabilities', async function () {
    const app = (await compose.containers()).get('app');
    const config = app?.inspect.Config as { User: string };
    const host = app?.inspect.HostConfig as { ReadonlyRootfs: boolean; CapDrop: string[] | null; CapAdd: string[] | null; SecurityOpt: string[] | null };
    expect(config.User).to.equal('1000:1000');
    expect(host.ReadonlyRootfs).to.equal(true);
    expect(host.CapDrop).to.deep.equal(['ALL']);
    expect(host.CapAdd ?? []).to.deep.equal([]);
    expect(host.SecurityOpt).to.include('no-new-privileges:true');
    const status = await compose.must(['exec', '-T', 'app', 'cat', '/proc/1/status']);
    expect(status).to.match(/^Uid:\s+1000\s+1000\s+1000\s+1000$/m);
    expect(status).to.match(/^CapEff:\s+0{16}$/m);
    const write = await compose.compose(['exec', '-T', 'app', 'node', '-e', "require('fs').writeFileSync('/app/x', 'x')"]);
    expect(write.code, 'writing to the root filesystem').not.to.equal(0);
    expect(write.stderr).to.match(/EROFS|read-only/);
  });

  it('holds no secret in any container\'s docker inspect, and takes none from the shell into them or into docker-compose config', async function () {
    const agentToken = (await compose.must(['exec', '-T', 'vault-agent', 'cat', '/vault/agent/secrets/token'])).trim();
    registerSecret('the compose agent token', agentToken);
    const inspected = JSON.stringify([...(await compose.containers()).values()].map((c) => c.inspect));
    const config = await compose.must(['config']);
    // The same environment reached compose: the file's own variables are interpolated from it.
    expect(config).to.contain(`127.0.0.1:${compose.env.APP_HOST_PORT ?? '?'}`);
    // What only exists at run time, generated inside the containers: never copied into their configuration.
    const infra = JSON.parse(await vaultCli('kv get -format=json -mount=secret saas-infra/dev/postgres')) as { data: { data: Record<string, string> } };
    const secrets = [rootToken, agentToken, ...Object.values(infra.data.data), await demoPassword('acme'), await demoPassword('globex')];
    for (const group of ['api-keys', 'oidc', 'app']) {
      const data = (JSON.parse(await vaultCli(`kv get -format=json -mount=secret saas-project/dev/${group}`)) as { data: { data: Record<string, unknown> } }).data.data;
      delete data.client_id;
      for (const value of Object.values(data)) secrets.push(...(Array.isArray(value) ? value.map(String) : [String(value)]));
    }
    expect(secrets.filter((s) => s.length >= 12).length).to.be.greaterThan(4);
    for (const secret of secrets.filter((s) => s.length >= 12)) {
      expect(inspected.includes(secret), 'a secret in docker inspect').to.equal(false);
    }
    // What the shell held when compose ran: in neither.
    for (const [name, value] of Object.entries(shellCanaries)) {
      expect(inspected.includes(value), `the shell's ${name} in docker inspect`).to.equal(false);
      expect(config.includes(value), `the shell's ${name} in docker-compose config`).to.equal(false);
    }
  });

  it('sends the daemon no file .dockerignore excludes: canaries under .prod/, .tls/, .engine/, .stack/, .env*, credentials/, .demo-users/ stay out of the build context', async function () {
    // A copy of the context's ignore rules with a canary in each place, built with COPY . so the image holds
    // exactly what the daemon received; the real build's context is the repository root (docker-compose.test.ts).
    const context = await tempDir('build-context');
    await copyFile(join(repoRoot, '.dockerignore'), join(context, '.dockerignore'));
    const planted = ['.prod/tls/vault-key.pem', '.tls/ca-key.pem', '.engine/engine.env', '.stack/stack.env', '.env', '.env.local',
      'credentials/secret-id', '.demo-users/acme'];
    const values = new Map(planted.map((file) => [file, canary(file.replace(/\W+/g, '-'))]));
    registerSecret('canaries in ignored files', ...values.values());
    for (const [file, value] of values) {
      await mkdir(dirname(join(context, file)), { recursive: true });
      await writeFile(join(context, file), `${value}\n`);
    }
    await mkdir(join(context, 'service/src'), { recursive: true });
    await writeFile(join(context, 'service/src/control.txt'), 'sent\n');
    const tag = `saas-context-probe:${randomBytes(4).toString('hex')}`;
    const built = await compose.docker(['build', '-q', '-t', tag, '-f', '-', context],
      `FROM ${compose.env.NODE_IMAGE ?? ''}\nCOPY . /context\n`);
    expect(built.code, built.stderr).to.equal(0);
    try {
      const listed = await compose.docker(['run', '--rm', '--network', 'none', '--entrypoint', 'sh', tag, '-c',
        'cd /context && find . -type f | sort && cat $(find . -type f)']);
      expect(listed.code, listed.stderr).to.equal(0);
      expect(listed.stdout, 'the probe sees what was sent').to.contain('./service/src/control.txt');
      for (const [file, value] of values) {
        expect(listed.stdout.includes(value), `${file} reached the build context`).to.equal(false);
      }
    } finally {
      await compose.docker(['rmi', '-f', tag]);
    }
  });

  it('builds the app image in stages: dist/ and production dependencies only, no secret', async function () {
    const app = (await compose.containers()).get('app');
    const image = (app?.inspect as { Image: string }).Image;
    const files = await compose.docker(['run', '--rm', '--network', 'none', '--entrypoint', 'sh', image, '-c',
      'ls /app; ls /app/node_modules; ls /app/node_modules/.bin 2>/dev/null; test -f /app/dist/main.js && echo has-main']);
    expect(files.code, files.stderr).to.equal(0);
    const names = files.stdout.split('\n');
    expect(names).to.include('has-main');
    expect(names, 'the build stage\'s sources').not.to.include.members(['service', 'tsconfig.json']);
    for (const dev of ['typescript', 'mocha', 'eslint', 'tsx', 'chai', 'sinon', 'autocannon', 'typescript-eslint']) expect(names, dev).not.to.include(dev);
    expect(names).to.include.members(['koa', 'pg']);
    const history = (await compose.docker(['history', '--no-trunc', '--format', '{{.CreatedBy}}', image])).stdout;
    expect(history.match(/npm ci --omit=dev/g)?.length, 'the runtime stage installs production dependencies').to.equal(1);
    expect(history, 'the build stage\'s npm ci and tsc are not layers of this image').not.to.match(/npm run build/);
    const config = (JSON.parse((await compose.docker(['image', 'inspect', image])).stdout) as { Config: { Env: string[]; User: string } }[])[0]?.Config;
    expect(config?.User).to.equal('node');
    for (const entry of config?.Env ?? []) expect(entry).not.to.match(/PASSWORD|TOKEN|SECRET|KEY=/);
  });

  it('restart vault-agent: the agent logs in again at once with the secret id secret-id-courier keeps waiting', async function () {
    // The agent removed vault-init's file at its first login; the courier drops the next one.
    await secretIdWaiting();
    const old = await sinkToken();
    const began = Date.now();
    await compose.must(['restart', 'vault-agent']);
    await newLogin(old, startAndLoginMs);
    console.log(`      logged in again ${Date.now() - began} ms after docker-compose restart`);
    await ready(1_000);
    expect((await compose.must(['logs', '--no-color', 'vault-agent'])).match(/no known secret ID/g) ?? [], 'a login without a secret id').to.have.length(0);
  });

  it('restart app: back to ready; and a crashed app (SIGKILL) is started again by its restart policy', async function () {
    const began = Date.now();
    await compose.must(['restart', 'app']);
    await ready(15_000);
    console.log(`      ready ${Date.now() - began} ms after docker-compose restart app`);
    const before = await state('app');
    await crash('app');
    await poll('the app started again by its restart policy', 5_000, async () => {
      const now = await state('app');
      return now.restarts > before.restarts && now.status === 'running' ? true : undefined;
    });
    await ready(15_000);
  });

  it('a crashed agent (SIGKILL) is started again by its restart policy, logs in again, and the app sees it on time', async function () {
    // `docker-compose kill` is a stop by hand, which Docker's restart policies never undo
    // (`docker-compose up -d` starts it again); a process that dies is restarted.
    await secretIdWaiting();
    const old = await sinkToken();
    const before = await state('vault-agent');
    await crash('vault-agent');
    await newLogin(old, startAndLoginMs);
    expect((await state('vault-agent')).restarts).to.equal(before.restarts + 1);
    await ready(1_000);
    // The app's sink watch (25 ms) and one lookup of the new token, + 1 s: the agent on time, no step by hand.
    const agentState = async () => ((await (await get(`${adminUrl}/status`)).json()) as { agent: { state: string } | null }).agent?.state;
    await poll('the agent on time in the app\'s /status', 25 + 1000 + 1000, async () => (await agentState() === 'on_time' ? true : undefined));
    expect(/^saas_agent_overdue 0$/m.test(await (await get(`${adminUrl}/metrics`)).text()), 'saas_agent_overdue 0').to.be.true;
  });

  it('a revoked agent token: the agent logs in again within the healthcheck\'s interval, by itself or restarted by the check', async function () {
    await secretIdWaiting();
    const token = await sinkToken();
    const before = await state('vault-agent');
    await vaultCli('write auth/token/revoke token=-', token);
    const began = Date.now();
    // The check runs every 5 s; then the restart and the login. HashiCorp Vault's agent logs in
    // again by itself as soon as a render is refused, often before the check (OpenBao's would
    // wait for its next renewal, minutes away: the check is what brings it back in time).
    await newLogin(token, agentCheckMs + startAndLoginMs);
    const restarts = (await state('vault-agent')).restarts - before.restarts;
    console.log(`      logged in again ${Date.now() - began} ms after the revocation, ${restarts === 0 ? 'by itself' : 'restarted by its healthcheck'}`);
    expect(restarts).to.be.oneOf([0, 1]);
    // The revocation took the database lease with the token: the new login renders a new user.
    await ready(15_000);
    await projectRoundTrip('Gemini');
  });

  it('restart vault (dev: it forgets everything), then up -d: back to ready as a new Vault-issued user, no old dynamic user left', async function () {
    const oldUsers = (await psql("SELECT rolname FROM pg_roles WHERE rolname LIKE 'v-%'")).split('\n').filter((u) => u !== '');
    expect(oldUsers.length, 'dynamic users issued by this Vault').to.be.greaterThan(0);
    const oldRoot = rootToken;
    const oldPassword = await demoPassword('acme');
    const began = Date.now();
    await compose.must(['restart', 'vault']);
    await poll('the app halted: its token is unknown to the new server', 30_000, async () =>
      ((await get(`${appUrl}/readyz`)).status === 503 ? true : undefined));
    const upBegan = Date.now();
    const up = await compose.compose(['up', '-d']);
    const upMs = Date.now() - upBegan;
    if (up.code !== 0) {
      // docker-compose 1.29 checks the app's dependencies after starting the one-shots: once the
      // agent's check (every 5 s) has seen its token refused, it reports the agent unhealthy and
      // exits 1, everything started all the same. That, and only that, is let through.
      const errors = `${up.stderr}\n${up.stdout}`.split('\n').filter((line) => line.startsWith('ERROR:'));
      const agentId = (await compose.containers()).get('vault-agent')?.id ?? 'none';
      expect(errors, `up -d exited ${up.code}`).to.have.length(1);
      const unhealthy = /^ERROR: for app\s+Container "([0-9a-f]+)" is unhealthy\.$/.exec(errors[0] ?? '')?.[1] ?? '';
      expect(unhealthy !== '' && agentId.startsWith(unhealthy), `${errors[0] ?? ''} (the agent is ${agentId.slice(0, 12)})`).to.equal(true);
    }
    // The agent's check (5 s) finds its token refused with a new secret id waiting, then the
    // restart, the login, the render of new database credentials, the app's check of the new token.
    await ready(agentCheckMs + startAndLoginMs + 5_000);
    console.log(`      ready ${Date.now() - began} ms after docker-compose restart vault (up -d took ${upMs} ms)`);
    await registerSecrets();
    expect(rootToken, 'a new dev server').not.to.equal(oldRoot);
    // The demo-users volume went with the dev server that held it mounted: new users, new passwords.
    expect(await demoPassword('acme'), 'the demo user\'s password after the restart').not.to.equal(oldPassword);
    const user = await projectRoundTrip('Mercury');
    expect(oldUsers, 'served by a user the new Vault issued').not.to.include(user);
    const left = (await psql("SELECT rolname FROM pg_roles WHERE rolname LIKE 'v-%'")).split('\n').filter((u) => oldUsers.includes(u));
    expect(left, 'users the old Vault issued, still in PostgreSQL').to.deep.equal([]);
    const db = await compose.must(['logs', '--no-color', 'vault-db-init']);
    expect(db).to.include('dropped the dynamic users an earlier one left in PostgreSQL');
  });

  it('leaves no container, volume or network behind after down -v', async function () {
    await compose.saveLogs('compose-dev');
    const left = await compose.down();
    expect(left).to.deep.equal({ containers: [], volumes: [], networks: [] });
  });
});
