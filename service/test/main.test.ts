import { expect } from 'chai';
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readFile, writeFile } from 'node:fs/promises';
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';
import { join } from 'node:path';
import { startDevServer, waitForHttp, type DevServer, vaultServer } from './support/bao.js';
import { runBootstrap } from './support/bootstrap.js';
import { freePort } from './support/ports.js';
import { startTestPostgres, type TestPostgres } from './support/postgres.js';
import { renderedDocument, renderLikeAgent, sampleSecrets } from './support/rendered-secrets.js';
import { spawnService, startService, type ServiceProcess } from './support/service.js';
import { addIdentityProvider, devRedirectUrl, type IdentityProvider } from './support/sign-in.js';
import { tempDir } from './support/temp-dirs.js';
import { untilSecretIdExpired, unwrapSecretId, vaultData, vaultRequest } from './support/vault-http.js';

type LogLine = Record<string, unknown> & { msg: string };

function logLines(output: string): LogLine[] {
  return output.trim().split('\n').map((l) => JSON.parse(l) as LogLine);
}

/** Resolves once the child prints a log line with `msg`; rejects if it ends first. */
function untilLogged(child: ChildProcess, msg: string): Promise<void> {
  return new Promise((resolve, reject) => {
    let partial = '';
    const onData = (chunk: Buffer) => {
      const lines = (partial + chunk.toString('utf8')).split('\n');
      partial = lines.pop() ?? '';
      if (lines.some((l) => l.includes(`"msg":${JSON.stringify(msg)}`))) {
        stopListening();
        resolve();
      }
    };
    const onClose = () => {
      stopListening();
      reject(new Error(`the service ended before logging "${msg}"`));
    };
    const stopListening = () => {
      child.stdout?.off('data', onData);
      child.off('close', onClose);
    };
    child.stdout?.on('data', onData);
    child.once('close', onClose);
  });
}

function listProjects(url: string, cookie: string): Promise<Response> {
  return fetch(`${url}/api/projects`, { headers: { Cookie: cookie } });
}

interface HoldingProxy {
  readonly port: number;
  /** From now on, keeps what the service sends to PostgreSQL; resolves once something is kept. */
  hold(): Promise<void>;
  /** Sends what was kept, in order, and lets everything through again. */
  release(): void;
  close(): Promise<void>;
}

/** A TCP proxy to PostgreSQL: holding it keeps a query, so its request stays in flight as long as a test needs. */
async function startHoldingProxy(targetPort: number): Promise<HoldingProxy> {
  const sockets = new Set<Socket>();
  let kept: (() => void)[] | undefined;
  let onKept: () => void = () => undefined;
  const server = createServer((client) => {
    const upstream = connect(targetPort, '127.0.0.1');
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.once('close', () => { sockets.delete(socket); client.destroy(); upstream.destroy(); });
      socket.on('error', () => { client.destroy(); upstream.destroy(); });
    }
    upstream.pipe(client);
    client.on('data', (chunk: Buffer) => {
      if (kept === undefined) {
        upstream.write(chunk);
        return;
      }
      kept.push(() => upstream.write(chunk));
      onKept();
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    port: (server.address() as AddressInfo).port,
    hold() {
      kept = [];
      return new Promise((resolve) => { onKept = resolve; });
    },
    release() {
      const queue = kept ?? [];
      kept = undefined;
      for (const send of queue) send();
    },
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

describe(`service/src/main.ts in agent mode, against a real ${vaultServer.name} dev server`, function () {
  this.timeout(30_000);
  let server: DevServer;
  let tokenFile: string;

  before(async function () {
    server = await startDevServer();
    // Stands in for the agent's sink: a real token the service can check with lookup-self.
    const created = await vaultRequest(server.addr, server.rootToken, 'POST', 'auth/token/create', { ttl: '1h' });
    tokenFile = join(await tempDir('sink'), 'token');
    await writeFile(tokenFile, (created.body as { auth: { client_token: string } }).auth.client_token);
  });
  after(async function () {
    await server.stop();
  });

  const agentEnv = (file: string, extra: NodeJS.ProcessEnv = {}) => ({
    SECRETS_MODE: 'agent', APP_ENV: 'dev', SECRETS_FILE: file, VAULT_ADDR: server.addr, VAULT_TOKEN_FILE: tokenFile, ...extra,
  });

  it('listens once the rendered file holds valid secrets, and answers /readyz 200', async function () {
    const file = join(await tempDir('secrets'), 'app.json');
    await renderLikeAgent(file, JSON.stringify(renderedDocument('staging', 2)));
    const service = await startService(agentEnv(file, { APP_ENV: 'staging' }));
    const health = await fetch(`${service.url}/healthz`);
    expect(health.status).to.equal(200);
    await service.process.stop();
  });

  describe('shutdown with a request in flight, on a real PostgreSQL behind a proxy the test holds', function () {
    let postgres: TestPostgres;
    let secrets: ReturnType<typeof sampleSecrets>;
    let proxy: HoldingProxy;
    let identity: IdentityProvider;

    before(async function () {
      postgres = await startTestPostgres();
      secrets = sampleSecrets();
      await postgres.provision(secrets.database.username, secrets.database.password);
      // Sign-in through the dev server's own OpenID Connect provider: its client in the rendered oidc group.
      identity = await addIdentityProvider(server, devRedirectUrl);
      secrets.oidc = await identity.credentials();
    });
    beforeEach(async function () {
      proxy = await startHoldingProxy(postgres.layout.port);
    });
    afterEach(async function () {
      await proxy.close();
    });
    after(async function () {
      await postgres.stop();
    });

    /** A service whose GET /api/projects waits on its PostgreSQL query until the test releases the proxy. */
    async function serviceWithRequestInFlight(drainDelayMs = 0) {
      const file = join(await tempDir('secrets'), 'app.json');
      await renderLikeAgent(file, JSON.stringify(renderedDocument('dev', 1, secrets)));
      const service = await startService(agentEnv(file, {
        DATABASE_PORT: String(proxy.port), DRAIN_DELAY_MS: String(drainDelayMs), ...identity.serviceEnv,
      }));
      const { tenant, cookieHeader: cookie } = await identity.signIn(service.url, 'acme');
      expect(tenant).to.equal('acme');
      // Opens the pool's connection and creates the table: the held request then waits on its query only.
      expect((await listProjects(service.url, cookie)).status).to.equal(200);
      const reached = proxy.hold();
      const inFlight = listProjects(service.url, cookie).then(
        async (response) => ({ status: response.status, body: await response.json(), connection: response.headers.get('connection') }),
        (error: unknown) => error as Error);
      await reached;
      return { service, inFlight };
    }

    /** SIGTERM (or SIGINT), then once the drain delay is over and the server no longer accepts. */
    async function terminateAndWaitForDrain(service: ServiceProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
      const closing = untilLogged(service.process.child, 'not accepting connections: finishing requests in flight');
      service.process.child.kill(signal);
      await closing;
    }

    it('shuts down gracefully on SIGTERM: stops listening, finishes the request in flight with 200, exits 0', async function () {
      const { service, inFlight } = await serviceWithRequestInFlight();
      // A keep-alive connection left open must not hold the shutdown up.
      expect((await fetch(`${service.url}/healthz`, { keepalive: true })).status).to.equal(200);
      await terminateAndWaitForDrain(service);
      expect(await fetch(`${service.url}/healthz`).then(() => 'answered', () => 'refused')).to.equal('refused');
      expect(service.process.child.exitCode, 'still draining').to.equal(null);

      proxy.release();
      expect(await inFlight).to.deep.include({ status: 200, body: { projects: [] } });
      expect(await service.process.exited).to.equal(0);
      const lines = logLines(await service.process.log());
      const signal = lines.findIndex((l) => l.msg === 'shutting down');
      expect(signal).to.be.greaterThan(-1);
      expect(lines.slice(signal + 1).map(({ msg, path, status }) => ({ msg, path, status })),
        'the held request finished after the signal, then the service stopped').to.deep.equal([
        { msg: 'draining: /readyz answers 503, still serving until the load balancers let go', path: undefined, status: undefined },
        { msg: 'not accepting connections: finishing requests in flight', path: undefined, status: undefined },
        { msg: 'request', path: '/api/projects', status: 200 },
        { msg: 'stopped', path: undefined, status: undefined },
      ]);
    });

    it('on SIGTERM answers /readyz 503 at once, serves on for DRAIN_DELAY_MS with Connection: close, then finishes ' +
      'the request in flight and exits 0 without waiting for keep-alive connections; "stopped" is the last line', async function () {
      const { service, inFlight } = await serviceWithRequestInFlight(3000);
      const draining = untilLogged(service.process.child, 'draining: /readyz answers 503, still serving until the load balancers let go');
      const closing = untilLogged(service.process.child, 'not accepting connections: finishing requests in flight');
      service.process.child.kill('SIGTERM');
      await draining;
      const ready = await fetch(`${service.url}/readyz`);
      expect(ready.status).to.equal(503);
      expect(await ready.json()).to.deep.include({ error: { code: 'draining', message: 'the service is shutting down' } });
      const served = await fetch(`${service.url}/healthz`);
      expect(served.status, 'still serving during the delay').to.equal(200);
      expect(served.headers.get('connection')).to.equal('close');
      await closing;
      expect(await fetch(`${service.url}/healthz`).then(() => 'answered', () => 'refused')).to.equal('refused');

      const released = Date.now();
      proxy.release();
      const finished = await inFlight;
      expect(finished).to.deep.equal({ status: 200, body: { projects: [] }, connection: 'close' });
      expect(await service.process.exited).to.equal(0);
      // Node would keep the in-flight request's connection open 5 s (its keep-alive timeout) without Connection: close.
      expect(Date.now() - released).to.be.below(4000);
      const lines = logLines(await service.process.log());
      expect(lines.at(-1)?.msg).to.equal('stopped');
      expect(lines.find((l) => l.msg === 'request' && l.path === '/readyz' && l.status === 503)).to.have.property('reqId');
    });

    it('drains the same way on SIGINT, exits 0, and "stopped" is the last line', async function () {
      const { service, inFlight } = await serviceWithRequestInFlight();
      await terminateAndWaitForDrain(service, 'SIGINT');
      proxy.release();
      expect(await inFlight).to.deep.include({ status: 200 });
      expect(await service.process.exited).to.equal(0);
      expect(logLines(await service.process.log()).at(-1)).to.include({ msg: 'stopped', level: 'info' });
    });

    it('exits at once with 130 and one line saying so, the last, on SIGINT during the drain, never exit 0 mid-drain', async function () {
      const { service, inFlight } = await serviceWithRequestInFlight();
      await terminateAndWaitForDrain(service);
      const signalled = Date.now();
      service.process.child.kill('SIGINT');
      expect(await service.process.exited).to.equal(130);
      // The drain alone would last until the proxy lets go, which it never does here.
      expect(Date.now() - signalled).to.be.below(5000);
      expect(await inFlight).to.be.instanceOf(Error);
      const messages = logLines(await service.process.log()).map((l) => l.msg);
      expect(messages.slice(-3)).to.deep.equal([
        'draining: /readyz answers 503, still serving until the load balancers let go',
        'not accepting connections: finishing requests in flight',
        'second signal during shutdown: exiting now, requests in flight are dropped',
      ]);
      expect(messages).to.not.include('stopped');
    });
  });

  it('waits for the first render when the agent is slower than the service', async function () {
    const file = join(await tempDir('secrets'), 'app.json');
    const service = await spawnService(agentEnv(file, { SECRETS_WAIT_MS: '20000' }));
    await new Promise((r) => setTimeout(r, 1000));
    expect(service.process.child.exitCode).to.equal(null);
    await renderLikeAgent(file, JSON.stringify(renderedDocument('dev', 1)));
    await waitForHttp(`${service.url}/readyz`, 200, service.process);
    await service.process.stop();
  });

  const failures: [string, (file: string) => Promise<void>, RegExp][] = [
    ['no file ever appears', () => Promise.resolve(), /: does not exist/],
    ['the file is not JSON', (file) => renderLikeAgent(file, 'garbage'), /is not valid JSON/],
    ['the file lacks a key', (file) => renderLikeAgent(file, JSON.stringify({
      ...renderedDocument('dev', 1), app: { path: 'secret/data/saas-project/dev/app', version: 1, data: {} },
    })), /app\.session_keys: must be a non-empty list of keys/],
  ];
  for (const [what, prepare, problem] of failures) {
    it(`exits 1 without listening when ${what}, naming the file and the problem`, async function () {
      const file = join(await tempDir('secrets'), 'app.json');
      await prepare(file);
      const service = await spawnService(agentEnv(file, { SECRETS_WAIT_MS: '500' }));
      expect(await service.process.exited).to.equal(1);
      const lines = (await service.process.log()).trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
      const fatal = lines.find((l) => l.level === 'fatal');
      expect(fatal?.msg).to.equal('not starting');
      expect(lines.at(-1), 'the fatal line is the last').to.equal(fatal);
      expect(fatal?.reason).to.contain(`no valid secrets in ${file} within 500 ms (SECRETS_WAIT_MS)`);
      expect(fatal?.reason).to.match(problem);
      const refused = await fetch(`${service.url}/healthz`).then(() => 'answered', () => 'refused');
      expect(refused).to.equal('refused');
    });
  }

  it('exits 1 naming the environment variable when the environment is invalid', async function () {
    const service = await spawnService({ APP_ENV: 'qa' });
    expect(await service.process.exited).to.equal(1);
    const lines = (await service.process.log()).trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines).to.have.length(1);
    expect(lines[0]).to.include({ level: 'fatal', msg: 'not starting: invalid settings', reason: 'APP_ENV must be one of dev, staging, prod' });
  });
});

describe(`service/src/main.ts in SDK mode, against a real ${vaultServer.name} dev server`, function () {
  this.timeout(30_000);
  let server: DevServer;
  let roleId: string;
  let secretId: string;

  before(async function () {
    server = await startDevServer();
    const credentials = await tempDir('credentials');
    const run = await runBootstrap(server, 'dev', credentials, { ROLE_SECRET_ID_NUM_USES: '0' });
    expect(run.code, run.stderr).to.equal(0);
    roleId = await readFile(join(credentials, 'role-id'), 'utf8');
    secretId = await unwrapSecretId(server.addr, await readFile(join(credentials, 'secret-id'), 'utf8'));
  });
  after(async function () {
    await server.stop();
  });

  const sdkEnv = (target: { addr: string }, extra: NodeJS.ProcessEnv = {}) => ({
    SECRETS_MODE: 'sdk', APP_ENV: 'dev', VAULT_ADDR: target.addr, VAULT_ROLE_ID: roleId, VAULT_SECRET_ID: secretId,
    VAULT_CONNECT_TIMEOUT_MS: '1500', ...extra,
  });

  /** Exit 1, one fatal line matching `reason`, nothing listening, no credential in the output. */
  async function expectRefusal(env: NodeJS.ProcessEnv, reason: RegExp): Promise<void> {
    const service = await spawnService(env);
    expect(await service.process.exited).to.equal(1);
    const output = await service.process.log();
    const fatal = output.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>)
      .find((l) => l.level === 'fatal');
    expect(fatal?.msg).to.equal('not starting');
    expect(fatal?.reason).to.match(reason);
    expect(output).to.not.contain(secretId);
    const answered = await fetch(`${service.url}/healthz`).then(() => true, () => false);
    expect(answered, 'nothing may listen').to.be.false;
  }

  it('retries while Vault is sealed, without listening, and starts once it is unsealed', async function () {
    await vaultData(server.addr, server.rootToken, 'PUT', 'sys/seal');
    const service = await spawnService(sdkEnv(server, { VAULT_CONNECT_TIMEOUT_MS: '20000' }));
    try {
      // Until the service has met the sealed Vault (its start-up takes a while on a busy machine).
      for (const end = Date.now() + 20_000; !(await service.process.log()).includes('Vault cannot be reached yet; retrying');) {
        expect(Date.now(), 'no "retrying" line within 20 s').to.be.below(end);
        expect(service.process.child.exitCode).to.equal(null);
        await new Promise((r) => setTimeout(r, 100));
      }
      expect(await fetch(`${service.url}/healthz`).then(() => true, () => false), 'listening while sealed').to.be.false;
    } finally {
      await vaultRequest(server.addr, undefined, 'PUT', 'sys/unseal', { key: await server.unsealKey() });
    }
    await waitForHttp(`${service.url}/readyz`, 200, service.process);
    await service.process.stop();
  });

  it('exits 1 naming VAULT_ADDR when Vault cannot be reached within VAULT_CONNECT_TIMEOUT_MS', async function () {
    const nowhere = { addr: `http://127.0.0.1:${await freePort()}` };
    await expectRefusal(sdkEnv(nowhere), new RegExp(
      `^cannot reach Vault at ${nowhere.addr} \\(VAULT_ADDR\\) within 1500 ms \\(VAULT_CONNECT_TIMEOUT_MS\\): ECONNREFUSED$`));
  });

  it('exits 1 naming the credentials when the role id is wrong', async function () {
    await expectRefusal(sdkEnv(server, { VAULT_ROLE_ID: 'not-the-role-id' }),
      /AppRole login refused by Vault at .*: invalid role or secret ID\. The role id \(VAULT_ROLE_ID or VAULT_ROLE_ID_FILE\) is wrong, or the secret id is wrong, expired or used up/);
  });

  it('exits 1 naming the credentials when the secret id is wrong', async function () {
    await expectRefusal(sdkEnv(server, { VAULT_SECRET_ID: '00000000-0000-0000-0000-000000000000' }),
      /AppRole login refused .* the secret id is wrong, expired or used up/);
  });

  it('exits 1 naming the path when a secret path does not exist', async function () {
    await vaultData(server.addr, server.rootToken, 'DELETE', 'secret/metadata/saas-project/dev/app');
    try {
      await expectRefusal(sdkEnv(server), /^secret\/data\/saas-project\/dev\/app does not exist in Vault at .* \(404\)$/);
    } finally {
      await vaultData(server.addr, server.rootToken, 'POST', 'secret/data/saas-project/dev/app',
        { data: { session_keys: ['k'.repeat(64)] } });
    }
  });

  it('exits 1 in prod when the secret id is a plain variable, naming the wrapped and file forms', async function () {
    await expectRefusal(sdkEnv(server, { APP_ENV: 'prod' }), /^VAULT_SECRET_ID is refused with APP_ENV=prod: .*VAULT_WRAPPED_SECRET_ID.*VAULT_SECRET_ID_FILE\)$/);
  });

  it('exits 1 naming the path and the policy when a path is denied', async function () {
    // In prod a plain secret id comes in a file (a variable is refused: the test above).
    const file = join(await tempDir('secret-id'), 'secret-id');
    await writeFile(file, secretId, { mode: 0o600 });
    await expectRefusal(sdkEnv(server, { APP_ENV: 'prod', VAULT_SECRET_ID: '', VAULT_SECRET_ID_FILE: file }), new RegExp(
      '^permission denied reading secret/data/saas-project/prod/(database|api-keys|oidc|app) \\(403\\): the token\'s ' +
      'policies are \\[default, saas-app-dev\\]; policy saas-app-prod should grant read on secret/data/saas-project/prod/\\*$'));
  });

  it('exits 1 listing what it looked for when auto mode finds neither agent files nor a role id', async function () {
    const dir = await tempDir('nothing');
    await expectRefusal({
      SECRETS_MODE: 'auto', SECRETS_FILE: join(dir, 'app.json'), VAULT_TOKEN_FILE: join(dir, 'token'),
    }, /^SECRETS_MODE=auto found no way to get secrets: .*app\.json \(SECRETS_FILE\).*token \(VAULT_TOKEN_FILE\).*VAULT_ROLE_ID_FILE/);
  });

  describe('secret ids Vault no longer accepts', function () {
    let limited: DevServer;
    beforeEach(async function () {
      limited = await startDevServer();
    });
    afterEach(async function () {
      await limited.stop();
    });

    async function credentialsFor(env: NodeJS.ProcessEnv) {
      const dir = await tempDir('credentials');
      const run = await runBootstrap(limited, 'dev', dir, env);
      expect(run.code, run.stderr).to.equal(0);
      return {
        role: await readFile(join(dir, 'role-id'), 'utf8'),
        secret: await unwrapSecretId(limited.addr, await readFile(join(dir, 'secret-id'), 'utf8')),
      };
    }

    it('exits 1 when the secret id has expired', async function () {
      this.timeout(30_000 + vaultServer.expiredSecretIdGraceMs);
      const { role, secret } = await credentialsFor({ ROLE_SECRET_ID_TTL: '1s' });
      await untilSecretIdExpired(limited, 'saas-app-dev', secret);
      await expectRefusal(sdkEnv(limited, { VAULT_ROLE_ID: role, VAULT_SECRET_ID: secret }),
        /AppRole login refused .* the secret id is wrong, expired or used up/);
    });

    it('exits 1 when the secret id is used up', async function () {
      const { role, secret } = await credentialsFor({ ROLE_SECRET_ID_NUM_USES: '1' });
      const first = await vaultRequest(limited.addr, undefined, 'POST', 'auth/approle/login', { role_id: role, secret_id: secret });
      expect(first.status).to.equal(200);
      await expectRefusal(sdkEnv(limited, { VAULT_ROLE_ID: role, VAULT_SECRET_ID: secret }),
        /AppRole login refused .* the secret id is wrong, expired or used up/);
    });
  });
});
