import { expect } from 'chai';
import { readFile, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { TLSSocket } from 'node:tls';
import { join } from 'node:path';
import { readSettings } from '../../src/config/settings.js';
import { databaseTls } from '../../src/db/tls.js';
import { startDevServer, type DevServer } from '../support/bao.js';
import { freePort } from '../support/ports.js';
import { startTestPostgres, type TestPostgres } from '../support/postgres.js';
import { enableTls, generateTls, type TlsFiles } from '../support/postgres-tls.js';
import { capturingLogger, renderedDocument, renderLikeAgent, sampleSecrets } from '../support/rendered-secrets.js';
import { spawnService, startService } from '../support/service.js';
import { addIdentityProvider, devRedirectUrl, type IdentityProvider } from '../support/sign-in.js';
import { tempDir } from '../support/temp-dirs.js';
import { vaultRequest } from '../support/vault-http.js';

type Fatal = { level?: string; msg?: string; reason?: string };

async function fatalOf(service: Awaited<ReturnType<typeof spawnService>>): Promise<Fatal | undefined> {
  expect(await service.process.exited).to.equal(1);
  const lines = (await service.process.log()).trim().split('\n').map((l) => JSON.parse(l) as Fatal);
  return lines.find((l) => l.level === 'fatal');
}

describe('TLS to PostgreSQL: DATABASE_SSL_MODE=verify-full on a real PostgreSQL with ssl = on', function () {
  this.timeout(60_000);
  let server: DevServer;
  let postgres: TestPostgres;
  let tls: TlsFiles;
  let otherCa: TlsFiles;
  let tokenFile: string;
  let secrets: ReturnType<typeof sampleSecrets>;
  let identity: IdentityProvider;

  before(async function () {
    [server, postgres, tls, otherCa] = await Promise.all([
      startDevServer(), startTestPostgres(), generateTls('localhost', '127.0.0.1'), generateTls('localhost', '127.0.0.1'),
    ]);
    await enableTls(postgres, tls);
    secrets = sampleSecrets();
    await postgres.provision(secrets.database.username, secrets.database.password);
    // Sign-in through the dev server's own OpenID Connect provider: its client in the rendered oidc group.
    identity = await addIdentityProvider(server, devRedirectUrl);
    secrets.oidc = await identity.credentials();
    // Stands in for the agent's sink: a real token the service checks with lookup-self.
    const created = await vaultRequest(server.addr, server.rootToken, 'POST', 'auth/token/create', { ttl: '1h' });
    tokenFile = join(await tempDir('sink'), 'token');
    await writeFile(tokenFile, (created.body as { auth: { client_token: string } }).auth.client_token);
  });
  after(async function () {
    await Promise.all([server.stop(), postgres.stop()]);
  });

  async function agentEnv(extra: NodeJS.ProcessEnv): Promise<NodeJS.ProcessEnv> {
    const file = join(await tempDir('secrets'), 'app.json');
    await renderLikeAgent(file, JSON.stringify(renderedDocument('dev', 1, secrets)));
    return {
      SECRETS_MODE: 'agent', APP_ENV: 'dev', SECRETS_FILE: file, VAULT_ADDR: server.addr, VAULT_TOKEN_FILE: tokenFile,
      DATABASE_HOST: 'localhost', DATABASE_PORT: String(postgres.layout.port), DATABASE_SSL_MODE: 'verify-full',
      ...identity.serviceEnv, ...extra,
    };
  }

  it('serves from PostgreSQL over TLS, its certificate verified against DATABASE_CA_FILE and DATABASE_HOST', async function () {
    const service = await startService(await agentEnv({ DATABASE_CA_FILE: tls.ca }));
    try {
      // The callback opens the session in PostgreSQL, over TLS too.
      const { tenant, cookieHeader: cookie } = await identity.signIn(service.url);
      expect(tenant).to.equal('acme');
      const projects = await fetch(`${service.url}/api/projects`, { headers: { Cookie: cookie } });
      expect(projects.status, await projects.text()).to.equal(200);
      // PostgreSQL's own view of the app's sessions: every one of them is encrypted.
      const sessions = await postgres.query(`SELECT s.ssl FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid)
        WHERE a.usename = '${secrets.database.username}'`);
      expect(sessions.split('\n')).to.include('t').and.not.include('f');
      const lines = (await service.process.log()).trim().split('\n').map((l) => JSON.parse(l) as Fatal);
      expect(lines.map((l) => l.msg)).to.include('PostgreSQL\'s certificate verified against DATABASE_CA_FILE');
    } finally {
      await service.process.stop();
    }
  });

  it('does not start when PostgreSQL\'s certificate does not chain to DATABASE_CA_FILE, naming the setting and the file', async function () {
    const service = await spawnService(await agentEnv({ DATABASE_CA_FILE: otherCa.ca }));
    const fatal = await fatalOf(service);
    expect(fatal?.msg).to.equal('not starting');
    expect(fatal?.reason).to.equal(`PostgreSQL at localhost:${postgres.layout.port} (DATABASE_HOST, DATABASE_PORT) presents a ` +
      `certificate that DATABASE_CA_FILE (${otherCa.ca}) does not verify (UNABLE_TO_VERIFY_LEAF_SIGNATURE)`);
    expect(await fetch(`${service.url}/healthz`).then(() => 'answered', () => 'refused')).to.equal('refused');
  });

  it('does not start when DATABASE_CA_FILE cannot be read, naming the setting and the path', async function () {
    const missing = join(tls.dir, 'no-such-ca.pem');
    const fatal = await fatalOf(await spawnService(await agentEnv({ DATABASE_CA_FILE: missing })));
    expect(fatal?.reason).to.equal(`DATABASE_CA_FILE names ${missing}, which cannot be read (ENOENT)`);
    const notPem = join(tls.dir, 'not-a-cert.pem');
    await writeFile(notPem, 'not a certificate\n');
    expect((await fatalOf(await spawnService(await agentEnv({ DATABASE_CA_FILE: notPem }))))?.reason)
      .to.equal(`DATABASE_CA_FILE names ${notPem}, which holds no PEM certificate`);
  });

  it('refuses verify-full without a CA file, and a CA file without verify-full', function () {
    expect(() => readSettings({ DATABASE_SSL_MODE: 'verify-full' })).to.throw(
      /^DATABASE_CA_FILE must name the CA certificate \(PEM\) when DATABASE_SSL_MODE is verify-full$/);
    expect(() => readSettings({ DATABASE_CA_FILE: '/run/ca.pem' })).to.throw(
      /^DATABASE_CA_FILE is set but DATABASE_SSL_MODE is not verify-full: set both, or neither$/);
    expect(() => readSettings({ DATABASE_SSL_MODE: 'require' })).to.throw(/^DATABASE_SSL_MODE must be one of disable, verify-full$/);
    expect(readSettings({})).to.include({ databaseSslMode: 'disable', databaseCaFile: '' });
  });
});

/** A stand-in that answers PostgreSQL's SSLRequest with `answer`, then (for 'S') speaks TLS with `tls`'s certificate. */
async function sslRequestServer(answer: 'S' | 'N', tls?: TlsFiles): Promise<{ port: number; server: Server }> {
  const [cert, key] = tls === undefined ? [] : await Promise.all([readFile(tls.cert), readFile(tls.key)]);
  const server = createServer((socket) => {
    socket.once('data', () => {
      socket.write(answer);
      if (answer === 'N') {
        socket.end();
        return;
      }
      const secure = new TLSSocket(socket, { isServer: true, cert, key });
      secure.on('error', () => undefined);
    });
    socket.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  return { port: typeof address === 'object' && address !== null ? address.port : 0, server };
}

describe('databaseTls: the start-up check of PostgreSQL\'s certificate (stand-in servers)', function () {
  this.timeout(20_000);
  let tls: TlsFiles;
  const servers: Server[] = [];

  before(async function () {
    tls = await generateTls('db.internal');
  });
  after(function () {
    for (const server of servers) server.close();
  });

  const settings = (port: number, host = '127.0.0.1') => ({
    databaseHost: host, databasePort: port, databaseSslMode: 'verify-full' as const, databaseCaFile: tls.ca,
  });

  it('refuses a certificate that chains to the CA but does not name DATABASE_HOST', async function () {
    const { port, server } = await sslRequestServer('S', tls);
    servers.push(server);
    let error: Error | undefined;
    await databaseTls(settings(port), capturingLogger().logger).catch((caught: unknown) => { error = caught as Error; });
    expect(error?.message).to.equal(`PostgreSQL at 127.0.0.1:${port} (DATABASE_HOST, DATABASE_PORT) presents a certificate ` +
      'that does not name DATABASE_HOST (127.0.0.1) (ERR_TLS_CERT_ALTNAME_INVALID)');
  });

  it('refuses a server that does not speak TLS', async function () {
    const { port, server } = await sslRequestServer('N');
    servers.push(server);
    let error: Error | undefined;
    await databaseTls(settings(port), capturingLogger().logger).catch((caught: unknown) => { error = caught as Error; });
    expect(error?.message).to.equal(`PostgreSQL at 127.0.0.1:${port} (DATABASE_HOST, DATABASE_PORT) does not accept TLS, ` +
      'and DATABASE_SSL_MODE is verify-full');
  });

  it('starts when PostgreSQL does not answer yet, saying so: every connection checks the certificate', async function () {
    const log = capturingLogger();
    const port = await freePort();
    const ssl = await databaseTls(settings(port, 'localhost'), log.logger);
    expect(ssl).to.include({ servername: 'localhost', rejectUnauthorized: true });
    expect(ssl === false ? undefined : ssl.ca).to.equal((await readFile(tls.ca, 'utf8')).trim());
    expect(log.lines.map((l) => l.msg)).to.include(
      'PostgreSQL does not answer yet: its certificate is checked against DATABASE_CA_FILE at every connection');
  });

  it('stays in clear with DATABASE_SSL_MODE=disable, reading no file', async function () {
    expect(await databaseTls({ ...settings(1), databaseSslMode: 'disable', databaseCaFile: '/nowhere' }, capturingLogger().logger))
      .to.equal(false);
  });
});
