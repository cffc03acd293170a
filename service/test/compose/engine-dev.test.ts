import { expect } from 'chai';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { repoRoot } from '../support/bao.js';
import { ComposeProject, freePort, testEngine } from '../support/engine.js';
import { registerSecret } from '../support/leak-scan.js';

/*
 * docker-compose.yml brought up for real on the project's engine (npm run engine:start), with
 * the offline stand-ins of the official images, as a user runs it: `docker-compose up`.
 */

const project = 'saasdev';
const appServices = ['vault', 'vault-init', 'postgres', 'vault-db-init', 'vault-agent', 'app'];

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
  let upToReadyMs = 0;
  let rootToken = '';

  /** A command in the vault container with the dev root token, read there from the token file. */
  async function vaultCli(args: string, input?: string): Promise<string> {
    return compose.must(['exec', '-T', 'vault', 'sh', '-c',
      `VAULT_ADDR=http://127.0.0.1:8200 VAULT_TOKEN=$(cat /vault/home/.vault-token) vault ${args}`], input);
  }

  before(async function () {
    this.timeout(900_000);
    const engine = await testEngine(this);
    const [app, admin, vault] = [await freePort(), await freePort(), await freePort()];
    compose = new ComposeProject(engine, join(repoRoot, 'docker-compose.yml'), project, {
      APP_HOST_PORT: String(app), ADMIN_HOST_PORT: String(admin), VAULT_HOST_PORT: String(vault),
    });
    appUrl = `http://127.0.0.1:${app}`;
    adminUrl = `http://127.0.0.1:${admin}`;
    created = true;
    await compose.down();
    // The app's image once per suite; unchanged sources reuse every cached layer.
    await compose.must(['build', 'app']);
    const began = Date.now();
    await compose.must(['up', '-d']);
    await poll('the app ready on /readyz', 90_000, async () => ((await get(`${appUrl}/readyz`)).status === 200 ? true : undefined));
    upToReadyMs = Date.now() - began;
    console.log(`      docker-compose up -> first 200 on /readyz: ${upToReadyMs} ms (engine and images ready in ${engine.readyMs} ms)`);
    rootToken = (await compose.must(['exec', '-T', 'vault', 'cat', '/vault/home/.vault-token'])).trim();
    registerSecret('the compose dev root token', rootToken);
    for (const group of ['database', 'api-keys', 'app']) {
      const json = await vaultCli(`kv get -format=json -mount=secret saas-project/dev/${group}`).catch(() => '{}');
      const data = (JSON.parse(json) as { data?: { data?: Record<string, unknown> } }).data?.data ?? {};
      for (const [key, value] of Object.entries(data)) registerSecret(`compose ${group}.${key}`, value, ...(Array.isArray(value) ? (value as unknown[]) : []));
    }
    const infra = await vaultCli('kv get -format=json -mount=secret saas-infra/dev/postgres');
    for (const value of Object.values((JSON.parse(infra) as { data: { data: Record<string, string> } }).data.data)) {
      registerSecret('compose postgres passwords', value);
    }
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

  it('keeps a tenant\'s project in PostgreSQL, as a user Vault issued', async function () {
    const session = await get(`${appUrl}/api/session`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ tenant: 'acme' }),
    });
    expect(session.status).to.be.lessThan(300);
    const cookie = (session.headers.getSetCookie()).map((c) => c.split(';')[0]).join('; ');
    const created = await get(`${appUrl}/api/projects`, {
      method: 'POST', headers: { 'content-type': 'application/json', cookie }, body: JSON.stringify({ name: 'Apollo' }),
    });
    expect(created.status).to.equal(201);
    const { id } = await created.json() as { id: string };
    const listed = await (await get(`${appUrl}/api/projects`, { headers: { cookie } })).json();
    expect(JSON.stringify(listed)).to.contain(id);
    const rows = await compose.must(['exec', '-T', 'postgres', 'psql', '-U', 'postgres', '-d', 'saas', '-tAc',
      `SELECT name FROM projects WHERE id = '${id}'`]);
    expect(rows.trim()).to.equal('Apollo');
    const users = await compose.must(['exec', '-T', 'postgres', 'psql', '-U', 'postgres', '-d', 'saas', '-tAc',
      "SELECT DISTINCT usename FROM pg_stat_activity WHERE datname = 'saas' AND usename LIKE 'v-%'"]);
    expect(users.trim(), 'a dynamic user from database/creds/saas-app-dev').to.match(/^v-approle-saas-app-/);
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

  it('holds no secret in any container\'s docker inspect, nor in docker-compose config', async function () {
    const agentToken = (await compose.must(['exec', '-T', 'vault-agent', 'cat', '/vault/agent/secrets/token'])).trim();
    registerSecret('the compose agent token', agentToken);
    const inspected = JSON.stringify([...(await compose.containers()).values()].map((c) => c.inspect));
    const config = await compose.must(['config']);
    const infra = JSON.parse(await vaultCli('kv get -format=json -mount=secret saas-infra/dev/postgres')) as { data: { data: Record<string, string> } };
    const secrets = [rootToken, agentToken, ...Object.values(infra.data.data)];
    for (const group of ['api-keys', 'app']) {
      const data = (JSON.parse(await vaultCli(`kv get -format=json -mount=secret saas-project/dev/${group}`)) as { data: { data: Record<string, unknown> } }).data.data;
      for (const value of Object.values(data)) secrets.push(...(Array.isArray(value) ? value.map(String) : [String(value)]));
    }
    expect(secrets.filter((s) => s.length >= 12).length).to.be.greaterThan(4);
    for (const secret of secrets.filter((s) => s.length >= 12)) {
      expect(inspected.includes(secret), 'a secret in docker inspect').to.equal(false);
      expect(config.includes(secret), 'a secret in docker-compose config').to.equal(false);
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
    expect(history.includes(rootToken)).to.equal(false);
  });

  it('halts the app (503) once the agent\'s token is revoked', async function () {
    const token = (await compose.must(['exec', '-T', 'vault-agent', 'cat', '/vault/agent/secrets/token'])).trim();
    registerSecret('the compose agent token', token);
    await vaultCli('write auth/token/revoke token=-', token);
    const began = Date.now();
    await poll('503 from /readyz', 30_000, async () => ((await get(`${appUrl}/readyz`)).status === 503 ? true : undefined));
    console.log(`      halted ${Date.now() - began} ms after the revocation`);
  });

  it('leaves no container, volume or network behind after down -v', async function () {
    await compose.saveLogs('compose-dev');
    const left = await compose.down();
    expect(left).to.deep.equal({ containers: [], volumes: [], networks: [] });
  });
});
