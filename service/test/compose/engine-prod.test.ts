import { expect } from 'chai';
import { secretGroups } from '../../src/config/secret-catalogue.generated.js';
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { run, type RunResult } from '../../../scripts/engine/engine.js';
import { serverBin, repoRoot, vaultServers } from '../support/bao.js';
import { ComposeProject, testEngine } from '../support/engine.js';
import { freePort } from '../support/ports.js';
import { registerSecret } from '../support/leak-scan.js';
import { killHoldReopen, killHoldReopenBoundMs } from '../support/kill-switch-hold.js';
import { shippedProduction } from '../support/shipped-durations.js';
import { addIdentityProvider, tlsRedirectUrl, type IdentityProvider } from '../support/sign-in.js';
import { tempDir } from '../support/temp-dirs.js';

/*
 * docker-compose.prod.yml on the project's engine, the operator's way: every step below is a
 * command of the file's header (and of the plan's sections 5 and 6), run from the host with
 * the real scripts, bao as the CLI, and a PROD_DIR of the test's own instead of .prod/.
 */

const project = 'saasprod';
/**
 * The operator's sign-in settings (docker-compose.prod.yml's header): the issuer is this Vault's
 * own provider, as the app reaches it, behind the CA the file mounts for Vault; the redirect is
 * the TLS proxy's https URL on this machine.
 */
const signInSettings = {
  OIDC_ISSUER_URL: 'https://vault:8200/v1/identity/oidc/provider/saas-prod', OIDC_REDIRECT_URL: tlsRedirectUrl, OIDC_CA_FILE: '/vault/tls/ca.pem',
};
/** What the TLS proxy on this machine adds to what it forwards to the app's loopback port. */
const overTls = { 'X-Forwarded-Proto': 'https' };

function get(url: string, init: RequestInit = {}): Promise<Response> {
  return fetch(url, { ...init, signal: AbortSignal.timeout(3_000) });
}

async function poll<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await sleep(200);
  }
}

describe('compose on the engine: docker-compose.prod.yml, init to restart', function () {
  this.timeout(180_000);
  let compose: ComposeProject;
  let created = false;
  let prodDir: string;
  let appUrl: string;
  let adminUrl: string;
  let vaultEnv: NodeJS.ProcessEnv;
  let unsealKeys: string[] = [];
  let adminToken = '';
  /** The bearer token of the app's operator port (PROD_DIR/admin/token), as Prometheus presents it. */
  let portToken = '';
  const bearer = () => ({ Authorization: `Bearer ${portToken}` });
  let identity: IdentityProvider;
  const outputs: string[] = [];

  /** A repository script, its output kept for the secret scan; throws with it on failure. */
  async function script(args: string[], env: NodeJS.ProcessEnv = {}, input?: string): Promise<RunResult> {
    const result = await run('sh', args, { env: { ...vaultEnv, ...env }, ...(input === undefined ? {} : { input }) });
    outputs.push(`$ sh ${args.join(' ')}\n${result.stdout}${result.stderr}`);
    if (result.code !== 0) throw new Error(`sh ${args.join(' ')} exited ${result.code}: ${result.stderr.trim()}`);
    return result;
  }

  async function bao(args: string[], token: string, input?: string): Promise<string> {
    const result = await run(serverBin, args, { env: { ...vaultEnv, VAULT_TOKEN: token }, ...(input === undefined ? {} : { input }) });
    if (result.code !== 0) throw new Error(`bao ${args.join(' ')} exited ${result.code}: ${result.stderr.trim()}`);
    return result.stdout;
  }

  async function sealed(): Promise<boolean | undefined> {
    const status = await run(serverBin, ['status', '-format=json'], { env: vaultEnv });
    if (status.code === 1 || status.stdout === '') return undefined;
    return (JSON.parse(status.stdout) as { sealed: boolean }).sealed;
  }

  async function unseal(): Promise<void> {
    await poll('Vault answering', 60_000, async () => ((await sealed()) === undefined ? undefined : true));
    await script([join(repoRoot, 'scripts/prod/unseal.sh')], {}, `${unsealKeys.join('\n')}\n`);
  }

  async function appReady(timeoutMs: number): Promise<void> {
    await poll('the app ready on /readyz', timeoutMs, async () => ((await get(`${appUrl}/readyz`)).status === 200 ? true : undefined));
  }

  async function kvSnapshot(): Promise<string> {
    const groups = await Promise.all(secretGroups.map((g) => bao(['kv', 'get', '-format=json', '-mount=secret', `saas-project/prod/${g}`], adminToken)
      .then((json) => JSON.stringify((JSON.parse(json) as { data: { data: unknown } }).data.data), () => '')));
    return groups.join('\n');
  }

  before(async function () {
    this.timeout(900_000);
    const engine = await testEngine(this);
    prodDir = await tempDir('compose-prod');
    const [app, admin, vault] = [await freePort(), await freePort(), await freePort()];
    compose = new ComposeProject(engine, join(repoRoot, 'docker-compose.prod.yml'), project, {
      PROD_DIR: prodDir, APP_HOST_PORT: String(app), ADMIN_HOST_PORT: String(admin), VAULT_HOST_PORT: String(vault), ...signInSettings,
    });
    appUrl = `http://127.0.0.1:${app}`;
    adminUrl = `http://127.0.0.1:${admin}`;
    vaultEnv = {
      PATH: process.env.PATH, VAULT_ADDR: `https://127.0.0.1:${vault}`, VAULT_CACERT: join(prodDir, 'tls/ca.pem'), VAULT_CLI: serverBin,
    };
    created = true;
    await compose.down();
    await compose.must(['build', 'app']);
  });

  after(async function () {
    this.timeout(120_000);
    if (!created) return;
    const logs = await compose.saveLogs('compose-prod');
    await writeFile(join(logs, 'operator-scripts.log'), outputs.join('\n'));
    await compose.down();
  });

  it('initialises, unseals and bootstraps a Vault whose Raft data, TLS key and credentials its uid 100 owns', async function () {
    await script([join(repoRoot, 'scripts/prod/generate-tls.sh'), join(prodDir, 'tls'), 'localhost', '127.0.0.1', 'vault']);
    await script([join(repoRoot, 'scripts/prod/generate-tls.sh'), join(prodDir, 'postgres/tls'), 'postgres']);
    await mkdir(join(prodDir, 'postgres'), { recursive: true });
    await mkdir(join(prodDir, 'credentials'), { recursive: true });
    await mkdir(join(prodDir, 'orchestrator'), { recursive: true });
    await mkdir(join(prodDir, 'admin'), { recursive: true, mode: 0o700 });
    portToken = randomBytes(32).toString('hex');
    registerSecret('prod admin port token', portToken);
    await writeFile(join(prodDir, 'admin/token'), `${portToken}\n`, { mode: 0o600 });
    for (const file of ['superuser-password', 'vault-admin-password', 'admin-password']) {
      const value = randomBytes(24).toString('hex');
      registerSecret(`prod ${file}`, value);
      await writeFile(join(prodDir, file === 'admin-password' ? file : `postgres/${file}`), `${value}\n`, { mode: 0o600 });
    }
    await compose.must(['up', '-d', 'vault', 'postgres']);
    expect(await poll('Vault answering, uninitialised', 60_000, async () => ((await sealed()) === true ? true : undefined))).to.equal(true);

    await script([join(repoRoot, 'scripts/prod/operator-init.sh'), join(prodDir, 'init.json'), '3', '2']);
    const init = JSON.parse(await readFile(join(prodDir, 'init.json'), 'utf8')) as { unseal_keys_b64: string[]; root_token: string };
    registerSecret('prod unseal keys', ...init.unseal_keys_b64);
    registerSecret('prod root token', init.root_token);
    unsealKeys = init.unseal_keys_b64.slice(0, 2);
    await unseal();
    expect(await sealed()).to.equal(false);

    await script([join(repoRoot, 'scripts/prod/first-bootstrap.sh'), 'prod', join(prodDir, 'credentials'), join(prodDir, 'orchestrator/token')],
      { ADMIN_PASSWORD_FILE: join(prodDir, 'admin-password') }, `${init.root_token}\n`);
    registerSecret('prod orchestrator token', await readFile(join(prodDir, 'orchestrator/token'), 'utf8'));
    const password = (await readFile(join(prodDir, 'admin-password'), 'utf8')).trim();
    adminToken = (await bao(['write', '-field=token', 'auth/userpass/login/admin', 'password=-'], '', password)).trim();
    registerSecret('prod admin token', adminToken);

    const data = await compose.must(['exec', '-T', 'vault', 'sh', '-c', 'stat -c "%u:%g %a" /vault/data /vault/tls/server-key.pem; id -u']);
    expect(data.trim().split('\n')).to.deep.equal(['100:1000 700', '100:1000 400', '100']);
  });

  it('lets the admin set up the database engine against PostgreSQL, which took its passwords from the operator\'s files', async function () {
    await poll('postgres healthy', 60_000, async () => {
      const ps = await compose.compose(['ps', 'postgres']);
      return /healthy/.test(ps.stdout) && !/unhealthy|starting/.test(ps.stdout) ? true : undefined;
    });
    const out = await script([join(repoRoot, 'scripts/database-engine.sh'), 'prod'], {
      VAULT_TOKEN: adminToken, DATABASE_ADDRESS: 'postgres:5432', DATABASE_ADMIN_PASSWORD_FILE: join(prodDir, 'postgres/vault-admin-password'),
      DATABASE_SSLMODE: 'verify-full', DATABASE_SSLROOTCERT: '/vault/tls/postgres-ca.pem',
    });
    // The connection written with PostgreSQL's certificate verified, and the role that issues users.
    expect(out.stdout).to.match(/^database-engine: wrote connection saas-prod \(postgres:5432\/saas as vault_admin, sslmode verify-full, /m);
    expect(out.stdout).to.match(/^database-engine: wrote role saas-app-prod /m);
    const pgInit = await compose.must(['exec', '-T', 'postgres', 'sh', '-c', 'stat -c "%u:%g %a %n" /pg-init /pg-init/superuser-password']);
    expect(pgInit.trim().split('\n')).to.deep.equal(['0:70 750 /pg-init', '0:70 440 /pg-init/superuser-password']);
  });

  it('makes this Vault the issuer, as an operator whose issuer it is: an emergency root token, demo-identity.sh prod, the root token revoked', async function () {
    // Root is gone after first-bootstrap.sh, and the admin may enable no auth method nor write
    // identity/: a quorum of unseal keys and the admin make a root token for the occasion. With
    // HashiCorp Vault's own CLI: the compose file runs HashiCorp Vault, and OpenBao's CLI starts a
    // root generation at a path only OpenBao serves (unsupported path).
    const rootFile = join(await tempDir('compose-prod-root'), 'root-token');
    await script([join(repoRoot, 'scripts/prod/generate-root.sh'), rootFile], { VAULT_TOKEN: adminToken, VAULT_CLI: vaultServers.vault.bin },
      `${unsealKeys.join('\n')}\n`);
    const root = (await readFile(rootFile, 'utf8')).trim();
    registerSecret('prod emergency root token', root);
    const home = await tempDir('compose-prod-identity');
    identity = await addIdentityProvider({ addr: String(vaultEnv.VAULT_ADDR), rootToken: root, dir: home }, tlsRedirectUrl,
      { appEnv: 'prod', caFile: String(vaultEnv.VAULT_CACERT), extraEnv: { ISSUER_ADDR: 'https://vault:8200' } });
    expect(identity.issuerUrl, 'the issuer the app is given').to.equal(signInSettings.OIDC_ISSUER_URL);
    // The client's id and secret are in the oidc group before the agent's first render.
    expect((await identity.credentials()).client_id).to.not.equal('set-by-the-issuer');
    await bao(['token', 'revoke', '-self'], root);
    expect(await bao(['token', 'lookup'], root).then(() => 'accepted', () => 'refused'), 'the root token after its revocation').to.equal('refused');
  });

  it('brings the agent and the app up over TLS, with the secret id moved out of the operator\'s folder', async function () {
    await compose.must(['up', '-d']);
    await appReady(120_000);
    expect(await readdir(join(prodDir, 'credentials')), 'the wrapped secret id left the host').to.deep.equal(['role-id']);
    const status = await (await get(`${adminUrl}/status`, { headers: bearer() })).json() as { appEnv: string; token: { lastCheckOk: boolean } };
    expect(status.appEnv).to.equal('prod');
    expect(status.token.lastCheckOk).to.equal(true);
    const env = (await compose.must(['exec', '-T', 'app', 'sh', '-c', 'echo $VAULT_ADDR'])).trim();
    expect(env).to.equal('https://vault:8200');
  });

  it('asks for the bearer token on the operator\'s port: 401 without it or with another, /status and /metrics with it', async function () {
    for (const path of ['/status', '/metrics']) {
      const without = await get(`${adminUrl}${path}`);
      await without.body?.cancel();
      expect(without.status, `${path} without the token`).to.equal(401);
      const wrong = await get(`${adminUrl}${path}`, { headers: { Authorization: `Bearer ${randomBytes(32).toString('hex')}` } });
      await wrong.body?.cancel();
      expect(wrong.status, `${path} with another token`).to.equal(401);
    }
    // Prometheus' scrape: the token from the operator's file.
    const scrape = await get(`${adminUrl}/metrics`, { headers: bearer() });
    expect(scrape.status).to.equal(200);
    expect(await scrape.text()).to.match(/^# TYPE \S+ /m);
    // The app's own copy, 0400 and the app user's, in a folder no other container mounts.
    const copy = await compose.must(['exec', '-T', 'app', 'sh', '-c', 'stat -c "%u:%g %a" /admin /admin/token']);
    expect(copy.trim().split('\n')).to.deep.equal(['1000:1000 500', '1000:1000 400']);
  });

  it('runs every container with no capability left, no-new-privileges and a read-only root, and each still works', async function () {
    const running = await compose.containers(false);
    expect([...running.keys()].sort()).to.deep.equal(['app', 'postgres', 'secret-id-courier', 'vault', 'vault-agent']);
    for (const [name, { inspect }] of running) {
      const host = inspect.HostConfig as { CapDrop?: string[]; CapAdd?: string[] | null; SecurityOpt?: string[]; ReadonlyRootfs?: boolean };
      expect(host.CapDrop, name).to.deep.equal(['ALL']);
      expect(host.CapAdd ?? [], name).to.deep.equal([]);
      expect(host.SecurityOpt, name).to.include('no-new-privileges:true');
      expect(host.ReadonlyRootfs, name).to.equal(true);
      const status = await compose.must(['exec', '-T', name, 'cat', '/proc/1/status']);
      expect(status, `${name}: no effective capability`).to.match(/^CapEff:\s+0{16}$/m);
      expect(status, `${name}: not root`).to.not.match(/^Uid:\s+0\s/m);
      expect(status, `${name}: no-new-privileges`).to.match(/^NoNewPrivs:\s+1$/m);
      const write = await compose.compose(['exec', '-T', name, 'sh', '-c', 'echo x >/x-probe']);
      expect(write.code, `${name}: writing to the root filesystem`).to.not.equal(0);
      expect(write.stderr, name).to.match(/Read-only file system/i);
    }
    // They work so: the app is ready (above), the agent healthy, the courier delivering, Vault and PostgreSQL answering.
    const ps = await compose.must(['ps']);
    for (const name of ['vault', 'vault-agent', 'postgres', 'app']) expect(ps, name).to.match(new RegExp(`${project}_${name}_1 .*\\(healthy\\)`));
  });

  it('refuses a plain TCP connection to PostgreSQL (hostssl only) and offers TLS 1.3 alone', async function () {
    const psql = (conninfo: string, sql = 'SELECT 1') =>
      compose.compose(['exec', '-T', 'postgres', 'psql', '-X', '-w', '-tA', '-d', conninfo, '-c', sql]);
    const plain = await psql('host=127.0.0.1 port=5432 user=postgres dbname=postgres sslmode=disable');
    expect(plain.code, 'sslmode=disable').to.not.equal(0);
    expect(plain.stderr).to.match(/no pg_hba\.conf entry for host "127\.0\.0\.1", user "postgres", database "postgres", no encryption/);
    // Over TLS the same connection reaches the password check: the line matched, only the password is missing.
    const tls = await psql('host=127.0.0.1 port=5432 user=postgres dbname=postgres sslmode=require');
    expect(tls.code).to.not.equal(0);
    expect(tls.stderr).to.match(/no password supplied|password authentication failed/);
    expect(tls.stderr).to.not.match(/no pg_hba\.conf entry/);
    const settings = await psql('dbname=postgres user=postgres', 'SHOW ssl_min_protocol_version');
    expect(settings.stdout.trim(), settings.stderr).to.equal('TLSv1.3');
  });

  it('signs in through Vault\'s provider over TLS behind the TLS proxy it trusts: __Host- cookies, a tenant round trip; plain HTTP refused', async function () {
    // The host's TLS proxy reaches the app from the network's gateway, which TRUSTED_PROXIES names.
    const env = (await compose.must(['exec', '-T', 'app', 'sh', '-c', 'echo "$TRUSTED_PROXIES $OIDC_CA_FILE"'])).trim();
    const network = (await compose.docker(['network', 'inspect', '-f', '{{range .IPAM.Config}}{{.Gateway}}{{end}}', `${project}_default`])).stdout.trim();
    expect(env).to.equal(`${network} /vault/tls/ca.pem`);
    // Without the proxy's word the request is plain HTTP: production sets no cookie over it.
    const plain = await get(`${appUrl}/auth/login`, { redirect: 'manual' });
    expect(plain.status).to.equal(400);
    expect(((await plain.json()) as { error: { code: string } }).error.code).to.equal('tls_required');
    const login = await get(`${appUrl}/auth/login`, { redirect: 'manual', headers: overTls });
    await login.body?.cancel();
    expect(login.status, 'the discovery document fetched over TLS with OIDC_CA_FILE').to.equal(302);
    const authorize = new URL(login.headers.get('location') ?? '');
    expect(authorize.origin).to.equal('https://vault:8200');
    expect(authorize.pathname).to.match(/\/identity\/oidc\/provider\/saas-prod\/authorize$/);
    expect(authorize.searchParams.get('redirect_uri')).to.equal(tlsRedirectUrl);

    // The browser reaches Vault at its published port, and the app through the proxy.
    const signedIn = await identity.signIn(appUrl, 'acme', overTls);
    expect(signedIn.tenant).to.equal('acme');
    expect(signedIn.cookies.find((c) => c.name === '__Host-saas_session'), signedIn.cookies.map((c) => c.name).join(', '))
      .to.deep.include({ secure: true, httpOnly: true });
    const session = { ...overTls, Cookie: signedIn.cookieHeader };
    expect(await (await get(`${appUrl}/api/session`, { headers: session })).json()).to.deep.equal({ tenant: 'acme' });
    const created = await get(`${appUrl}/api/projects`, {
      method: 'POST', headers: { 'Content-Type': 'application/json', ...session }, body: JSON.stringify({ name: 'Vostok' }),
    });
    expect(created.status).to.equal(201);
    const listed = (await (await get(`${appUrl}/api/projects`, { headers: session })).json()) as { projects: { name: string }[] };
    expect(listed.projects.map((p) => p.name)).to.include('Vostok');
    // The same cookie without the proxy is not read: the __Host- name belongs to TLS.
    expect((await get(`${appUrl}/api/session`, { headers: { Cookie: signedIn.cookieHeader } })).status).to.equal(401);
  });

  /** The agent's token in its sink, read inside the container (the secrets volume is the agent's and the app's only). */
  const sinkToken = async () => (await compose.must(['exec', '-T', 'vault-agent', 'cat', '/vault/agent/secrets/token'])).trim();

  it('keeps a fresh wrapped secret id waiting (secret-id-courier), so `restart vault-agent` and an agent that exits log in again with no step by hand', async function () {
    // The agent consumed the first secret id; the courier drops the next one within its interval (30 s).
    await poll('a secret id waiting for the next login', 45_000, async () => {
      const listing = await compose.compose(['exec', '-T', 'vault-agent', 'ls', '/vault/agent/credentials']);
      return listing.stdout.split('\n').includes('secret-id') ? true : undefined;
    });
    const first = await sinkToken();
    registerSecret('prod agent token', first);
    await compose.must(['restart', 'vault-agent']);
    const second = await poll('a new token from a new login after restart', 60_000, async () => {
      const token = await sinkToken().catch(() => '');
      return token !== '' && token !== first ? token : undefined;
    });
    registerSecret('prod agent token', second);
    await appReady(30_000);
    // An agent that exits on its own (SIGTERM from inside, as when it gives up its retries):
    // the restart policy starts it, and it logs in with the next secret id the courier dropped.
    await poll('the next secret id waiting', 45_000, async () => {
      const listing = await compose.compose(['exec', '-T', 'vault-agent', 'ls', '/vault/agent/credentials']);
      return listing.stdout.split('\n').includes('secret-id') ? true : undefined;
    });
    // The shell's own kill: the images need not carry /bin/kill.
    await compose.must(['exec', '-T', 'vault-agent', 'sh', '-c', 'kill -TERM 1']);
    const third = await poll('a new token after the restart policy brought the agent back', 60_000, async () => {
      const token = await sinkToken().catch(() => '');
      return token !== '' && token !== second ? token : undefined;
    });
    registerSecret('prod agent token', third);
    await appReady(30_000);
  });

  it('kill-switch.sh halts the app within the check interval + 1 s, keeps it halted through a restarted agent\'s refused logins and two courier intervals, and --reopen brings it back with the same app container', async function () {
    const { durations: d } = await shippedProduction();
    const platform = {
      appEnv: 'prod', checkMs: d.checkInterval, tokenTtlMs: d.tokenTtl, maxBackoffMs: d.maxBackoff, deliveryMs: d.deliveryInterval,
      readyz: async () => (await get(`${appUrl}/readyz`)).status,
      agentLog: () => compose.must(['logs', '--no-log-prefix', 'vault-agent']),
      courierLog: () => compose.must(['logs', '--no-log-prefix', 'secret-id-courier']),
      killSwitch: async (args: string[]) => (await script([join(repoRoot, 'scripts/prod/kill-switch.sh'), ...args], { VAULT_TOKEN: adminToken })).stdout,
      // Stopped from inside, as when it gives up its retries: its restart policy starts it again.
      restartAgent: async () => { await compose.must(['exec', '-T', 'vault-agent', 'sh', '-c', 'kill -TERM 1']); },
    };
    this.timeout(killHoldReopenBoundMs(platform));
    const before = await compose.containers(false);
    const restarts = (containers: typeof before, service: string) => Number(containers.get(service)?.inspect.RestartCount ?? -1);
    // The agent's own renewal would find the revocation minutes later (215 s in a run that waited
    // for it, RELIABILITY.md): restarted, it logs in at once.
    const { haltedMs, refusedAfterMs, readyMs } = await killHoldReopen(platform);
    const after = await compose.containers(false);
    expect(after.get('app')?.id, 'the same app container').to.equal(before.get('app')?.id);
    expect(restarts(after, 'app'), 'the app never restarted').to.equal(restarts(before, 'app'));
    console.log(`      halted ${haltedMs} ms; first failed login ${refusedAfterMs} ms after the kill; ready ${readyMs} ms after the reopen; vault-agent restarts ${restarts(before, 'vault-agent')} -> ${restarts(after, 'vault-agent')}, same container: ${String(after.get('vault-agent')?.id === before.get('vault-agent')?.id)}`);
  });

  // That the app then halts once the token's known expiry passes unverified is shown on processes
  // (prod/production.test.ts: "halts once the sealed Vault lets the token's known expiry pass").
  it('comes back sealed after `restart vault`: the app keeps serving while sealed (its token\'s known expiry not passed), unsealing brings Vault back and a token check succeeds', async function () {
    await compose.must(['restart', 'vault']);
    expect(await poll('Vault answering after restart', 60_000, async () => (await sealed()) ?? undefined)).to.equal(true);
    const during = await get(`${appUrl}/readyz`);
    expect(during.status, 'still within the token\'s known expiry').to.equal(200);
    const unsealedAt = Date.now();
    await unseal();
    expect(await sealed()).to.equal(false);
    await poll('a successful token check after unsealing', 60_000, async () => {
      const status = await (await get(`${adminUrl}/status`, { headers: bearer() })).json() as { token: { lastCheckAt: string; lastCheckOk: boolean } };
      return Date.parse(status.token.lastCheckAt) > unsealedAt && status.token.lastCheckOk ? true : undefined;
    });
    await appReady(10_000);
  });

  it('keeps every secret across `down` and `up` without -v (persistent Raft storage)', async function () {
    const before = await kvSnapshot();
    expect(before).to.match(/webhook_signing_key/);
    // The vault image's anonymous volumes go with their containers: nothing piles up on the engine.
    const anonymous = await compose.downKeepingData();
    expect(anonymous, 'the vault image\'s /vault/file and /vault/logs').to.have.length.greaterThan(0);
    expect(await compose.existingVolumes(anonymous)).to.deep.equal([]);
    await compose.must(['up', '-d', 'vault', 'postgres']);
    await unseal();
    // The agent's secret ids are single-use: the courier delivers the next one, nobody by hand.
    await compose.must(['up', '-d']);
    await appReady(120_000);
    expect(await kvSnapshot()).to.equal(before);
  });
});
