import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { execFile } from 'node:child_process';
import { chmod, mkdir, readdir, readFile, stat, symlink, writeFile } from 'node:fs/promises';
import { request } from 'node:https';
import { join } from 'node:path';
import { secretGroups } from '../../src/config/secret-catalogue.generated.js';
import { readSettings } from '../../src/config/settings.js';
import { startService, type RunningService } from '../../src/start.js';
import { waitForFile } from '../support/agent.js';
import { serverBin, baoEnv, repoRoot, vaultServer } from '../support/bao.js';
import {
  cliAs as bao, generateTls, httpsGet, reserveClusterPorts, runScript, startServerNode, waitForActive, type ServerNode, type Tls,
} from '../support/bao-server.js';
import { registerSecret } from '../support/leak-scan.js';
import { spawnManaged } from '../support/processes.js';
import { statusOf, timeUntil } from '../support/http-poll.js';
import { capturingLogger } from '../support/rendered-secrets.js';
import { tempDir } from '../support/temp-dirs.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface InitOutput {
  unseal_keys_b64: string[];
  root_token: string;
}

/** operator-init.sh then unseal.sh, as an operator does on a fresh server. */
async function initAndUnseal(node: ServerNode, shares = 3, threshold = 2): Promise<InitOutput & { file: string }> {
  const file = join(await tempDir('init'), 'init.json');
  const init = await runScript('scripts/prod/operator-init.sh', [file, String(shares), String(threshold)], node.cliEnv());
  expect(init.code, init.stderr).to.equal(0);
  const output = JSON.parse(await readFile(file, 'utf8')) as InitOutput;
  await unseal(node, output);
  return { ...output, file };
}

async function unseal(node: ServerNode, init: InitOutput): Promise<void> {
  const result = await runScript('scripts/prod/unseal.sh', [], node.cliEnv(), init.unseal_keys_b64.join('\n') + '\n');
  expect(result.code, result.stderr).to.equal(0);
}

/**
 * An agent from agent-config/, talking TLS to `node`, in its own working directory. With
 * `renderInterval`, env/<appEnv>.hcl is copied with that static_secret_render_interval (a
 * test that waits for a rotation cannot wait prod's 5 minutes); everything else is the file.
 */
async function agentFor(node: ServerNode, tls: Tls, appEnv: string, credentialsDir: string, renderInterval?: string) {
  const dir = await tempDir('agent');
  if (renderInterval === undefined) {
    await symlink(join(repoRoot, 'agent-config'), join(dir, 'config'));
  } else {
    await mkdir(join(dir, 'config/env'), { recursive: true });
    for (const file of ['agent.hcl', 'secrets.json.ctmpl']) await symlink(join(repoRoot, 'agent-config', file), join(dir, 'config', file));
    const shipped = await readFile(join(repoRoot, `agent-config/env/${appEnv}.hcl`), 'utf8');
    const fast = shipped.replace(/static_secret_render_interval\s*=\s*"[^"]+"/, `static_secret_render_interval = "${renderInterval}"`);
    if (fast === shipped) throw new Error(`agent-config/env/${appEnv}.hcl sets no static_secret_render_interval`);
    await writeFile(join(dir, 'config/env', `${appEnv}.hcl`), fast);
  }
  await symlink(credentialsDir, join(dir, 'credentials'));
  await mkdir(join(dir, 'secrets'), { mode: 0o750 });
  const proc = spawnManaged(serverBin, ['agent', '-config=config/agent.hcl', `-config=config/env/${appEnv}.hcl`], {
    cwd: dir, env: baoEnv(dir, { VAULT_ADDR: node.addr, VAULT_CACERT: tls.ca, APP_ENV: appEnv }), logFile: join(dir, 'agent.log'),
  });
  const rendered = join(dir, 'secrets/app.json');
  await waitForFile(rendered, proc, 30_000);
  return { dir, proc, rendered, token: join(dir, 'secrets/token') };
}

/** Test harness only: an operator token that may seal and read what the assertions need. */
const testOperatorPolicy = `
path "sys/seal" { capabilities = ["update", "sudo"] }
path "sys/policies/acl/*" { capabilities = ["read"] }
path "auth/approle/role/saas-app-prod" { capabilities = ["read"] }
path "secret/data/*" { capabilities = ["create", "update", "read"] }
`;

describe(`production path on a real non-dev ${vaultServer.name} server: Raft storage, TLS, init, unseal, first bootstrap`, function () {
  this.timeout(120_000);
  let tls: Tls;
  let node: ServerNode;
  let init: InitOutput & { file: string };
  let operatorToken: string;
  let credentials: string;
  let orchestratorTokenFile: string;
  let agent: Awaited<ReturnType<typeof agentFor>> | undefined;
  let service: RunningService | undefined;
  let log: ReturnType<typeof capturingLogger>;

  before(async function () {
    tls = await generateTls();
    node = await startServerNode(tls);
  });
  after(async function () {
    await service?.close();
    await agent?.proc.stop();
    await node.stop();
  });

  it('answers only over TLS, uninitialised and sealed', async function () {
    const health = await httpsGet(`${node.addr}/v1/sys/health`, tls);
    expect(health.status).to.equal(501);
    expect(health.body).to.include({ initialized: false, sealed: true });
    const plain = await fetch(node.addr.replace('https:', 'http:') + '/v1/sys/health').then((r) => r.status, () => 'refused');
    expect(plain).to.not.equal(200);
  });

  it('operator-init.sh writes every key only to the file chosen (0600), warns loudly, never overwrites', async function () {
    const file = join(await tempDir('init'), 'init.json');
    const first = await runScript('scripts/prod/operator-init.sh', [file, '3', '2'], node.cliEnv());
    expect(first.code, first.stderr).to.equal(0);
    expect(first.stdout).to.equal('');
    expect(first.stderr).to.contain(`${file} now holds ALL 3 unseal keys and the initial ROOT TOKEN`);
    expect(((await stat(file)).mode & 0o777).toString(8)).to.equal('600');
    const output = JSON.parse(await readFile(file, 'utf8')) as InitOutput;
    expect(output.unseal_keys_b64).to.have.length(3);
    for (const key of output.unseal_keys_b64) expect(first.stderr).to.not.contain(key);
    const again = await runScript('scripts/prod/operator-init.sh', [file, '3', '2'], node.cliEnv());
    expect(again.code).to.equal(1);
    expect(again.stderr).to.contain('already exists: refusing to overwrite unseal keys');
    init = { ...output, file };
  });

  it('unseal.sh unseals with the threshold of keys read from stdin', async function () {
    const one = await runScript('scripts/prod/unseal.sh', [], node.cliEnv(), `${init.unseal_keys_b64[0] ?? ''}\n`);
    expect(one.code).to.equal(1);
    expect(one.stderr).to.contain('still sealed after 1 key(s)');
    await unseal(node, init);
    expect((await httpsGet(`${node.addr}/v1/sys/health`, tls)).status).to.equal(200);
  });

  it('first-bootstrap.sh configures prod with single-use secret ids, then revokes the root token', async function () {
    // The harness keeps an operator token for the assertions below; production keeps none.
    const policy = await bao(node, init.root_token, ['policy', 'write', 'test-operator', '-'], testOperatorPolicy);
    expect(policy.code, policy.stderr).to.equal(0);
    // An orphan: the children of the root token go when it is revoked.
    const created = await bao(node, init.root_token, ['token', 'create', '-orphan', '-policy=test-operator', '-field=token']);
    operatorToken = created.stdout.trim();

    credentials = join(await tempDir('credentials'), 'approle');
    orchestratorTokenFile = join(await tempDir('orchestrator'), 'token');
    // The admin's password, as first-bootstrap.sh requires (admin-access.test.ts tests the admin).
    const adminPasswordFile = join(await tempDir('admin'), 'password');
    const adminPassword = randomBytes(24).toString('hex');
    registerSecret('admin password', adminPassword);
    await writeFile(adminPasswordFile, `${adminPassword}\n`, { mode: 0o600 });
    // The CLI, wrapped: each call the script and its children make writes its arguments and
    // environment to a log first, as `ps` and /proc/<pid>/environ would show them.
    const watch = await tempDir('cli-calls');
    const calls = join(watch, 'calls.log');
    const wrapper = join(watch, 'cli');
    await writeFile(wrapper, `#!/bin/sh\n{ printf 'ARGS %s\\n' "$*"; env; } >>"${calls}"\nexec "${serverBin}" "$@"\n`, { mode: 0o700 });
    const run = await runScript('scripts/prod/first-bootstrap.sh', ['prod', credentials, orchestratorTokenFile],
      node.cliEnv({ ROLE_TOKEN_TTL: '6s', ROLE_TOKEN_MAX_TTL: '1h', ADMIN_PASSWORD_FILE: adminPasswordFile, VAULT_CLI: wrapper }),
      `${init.root_token}\n`);
    expect(run.code, run.stderr).to.equal(0);
    const seen = await readFile(calls, 'utf8');
    expect(seen.split('\n').filter((line) => line.startsWith('ARGS ')).length, 'CLI calls seen').to.be.greaterThan(10);
    expect(seen.includes(init.root_token), 'the root token in a CLI call\'s arguments or environment').to.be.false;
    expect(run.stdout).to.contain('bootstrap: wrote role saas-app-prod (policy saas-app-prod');
    expect(run.stdout).to.contain('secret_id_num_uses 1');
    expect(run.stdout).to.contain('the root token is revoked');

    const rootLookup = await httpsGet(`${node.addr}/v1/auth/token/lookup-self`, tls, init.root_token);
    expect(rootLookup.status).to.equal(403);
    const role = await httpsGet(`${node.addr}/v1/auth/approle/role/saas-app-prod`, tls, operatorToken);
    expect(role.body).to.nested.include({ 'data.secret_id_num_uses': 1, 'data.token_ttl': 6 });
    expect(((await stat(orchestratorTokenFile)).mode & 0o777).toString(8)).to.equal('400');
  });

  it('the orchestrator token mints only wrapped secret ids, and nothing else', async function () {
    const orchestrator = (await readFile(orchestratorTokenFile, 'utf8')).trim();
    const unwrapped = await bao(node, orchestrator, ['write', '-f', 'auth/approle/role/saas-app-prod/secret-id']);
    expect(unwrapped.code).to.not.equal(0);
    const reads = await httpsGet(`${node.addr}/v1/secret/data/saas-project/prod/database`, tls, orchestrator);
    expect(reads.status).to.equal(403);
    const out = join(await tempDir('wrapped'), 'secret-id');
    const issued = await runScript('scripts/prod/issue-wrapped-secret-id.sh', [out], node.cliEnv({ VAULT_TOKEN: orchestrator, APP_ENV: 'prod' }));
    expect(issued.code, issued.stderr).to.equal(0);
    expect(((await stat(out)).mode & 0o777).toString(8)).to.equal('400');
  });

  it('brings the agent (wrapped secret id, TLS) and the service (VAULT_CACERT) up ready', async function () {
    agent = await agentFor(node, tls, 'prod', credentials);
    log = capturingLogger();
    service = await startService(readSettings({
      SECRETS_MODE: 'agent', APP_ENV: 'prod', PORT: '0', ADMIN_PORT: '0', DRAIN_DELAY_MS: '0', VAULT_ADDR: node.addr, VAULT_CACERT: tls.ca,
      SECRETS_FILE: agent.rendered, VAULT_TOKEN_FILE: agent.token, TOKEN_CHECK_MAX_INTERVAL_MS: '500',
      VAULT_REQUEST_TIMEOUT_MS: '1000',
    }), {}, log.logger);
    expect(await statusOf(`http://127.0.0.1:${service.port}/readyz`)).to.equal(200);
    expect(await stat(join(credentials, 'secret-id')).then(() => true, () => false), 'wrapped secret id consumed').to.be.false;
  });

  it('the file audit device (on the data volume, as configured) logs the service\'s reads, with no secret, token or secret id in clear', async function () {
    if (service === undefined || agent === undefined) this.skip();
    // A secret id in clear, for the assertion: minted wrapped by the orchestrator, unwrapped here.
    const orchestrator = (await readFile(orchestratorTokenFile, 'utf8')).trim();
    const wrappedFile = join(await tempDir('wrapped'), 'secret-id');
    const issued = await runScript('scripts/prod/issue-wrapped-secret-id.sh', [wrappedFile], node.cliEnv({ VAULT_TOKEN: orchestrator, APP_ENV: 'prod' }));
    expect(issued.code, issued.stderr).to.equal(0);
    const wrappingToken = (await readFile(wrappedFile, 'utf8')).trim();
    const unwrapped = await bao(node, wrappingToken, ['unwrap', '-field=secret_id']);
    expect(unwrapped.code, unwrapped.stderr).to.equal(0);
    const secretId = unwrapped.stdout.trim();
    const agentToken = (await readFile(agent.token, 'utf8')).trim();
    const roleId = (await readFile(join(credentials, 'role-id'), 'utf8')).trim();
    const rendered = JSON.parse(await readFile(agent.rendered, 'utf8')) as Record<string, { data: Record<string, unknown> }>;
    const values = Object.entries(rendered).flatMap(([group, { data }]) => Object.entries(data)
      .filter(([key]) => key !== 'username').flatMap(([key, value]) => [value].flat().map((v) => [`${group}.${key}`, String(v)])));
    const clear: [string, string][] = [['secret id', secretId], ['wrapping token', wrappingToken], ['agent token', agentToken],
      ['orchestrator token', orchestrator], ['operator token', operatorToken], ['role id', roleId], ...values as [string, string][]];
    // The suite's scan reads every *.log under the temp folders, the audit file included.
    for (const [what, value] of clear) registerSecret(`audit test: ${what}`, value);

    const text = await readFile(node.auditFile, 'utf8');
    const entries = text.trim().split('\n').map((line) => JSON.parse(line) as
      { type: string; auth?: { client_token?: string }; request: { path: string; operation: string } });
    const reads = entries.filter((e) => e.type === 'response' && e.request.operation === 'read' &&
      e.request.path.startsWith('secret/data/saas-project/prod/'));
    expect(new Set(reads.map((e) => e.request.path)), 'a read of every group of the catalogue').to.have.keys(
      secretGroups.map((group) => `secret/data/saas-project/prod/${group}`));
    for (const read of reads) expect(read.auth?.client_token).to.match(/^hmac-sha256:/);
    expect(entries.some((e) => e.request.path === 'sys/wrapping/unwrap')).to.be.true;
    for (const [what, value] of clear) {
      expect(value.length, what).to.be.at.least(12);
      expect(text.includes(value), `${what} in clear in the audit log`).to.be.false;
    }
  });

  it('halts once the sealed Vault lets the token\'s known expiry pass, and recovers after unseal', async function () {
    if (service === undefined || agent === undefined) this.skip();
    const url = `http://127.0.0.1:${service.port}/readyz`;
    const sealed = await httpsPut(node, tls, 'sys/seal', operatorToken);
    expect(sealed).to.equal(204);
    const sealedAt = Date.now();
    const halted = await timeUntil(url, 503, 8000);
    expect(halted, 'not before the token could still be valid').to.be.greaterThan(300);
    expect(Date.now() - sealedAt).to.be.at.most(6000 + 1500);
    expect(log.lines.filter((l) => l.level === 'fatal').at(-1)).to.include({ code: 'vault_token_expired' });

    await unseal(node, init);
    // The token expired while Vault was sealed; with single-use secret ids the agent needs a
    // fresh wrapped one, which the orchestrator drops.
    const orchestrator = (await readFile(orchestratorTokenFile, 'utf8')).trim();
    const issued = await runScript('scripts/prod/issue-wrapped-secret-id.sh', [join(credentials, 'secret-id')],
      node.cliEnv({ VAULT_TOKEN: orchestrator, APP_ENV: 'prod' }));
    expect(issued.code, issued.stderr).to.equal(0);
    await timeUntil(url, 200, 30_000);
  });
});

async function httpsPut(node: ServerNode, tls: Tls, path: string, token: string): Promise<number> {
  const ca = await readFile(tls.ca);
  return new Promise((resolve, reject) => {
    const req = request(`${node.addr}/v1/${path}`, { method: 'PUT', ca, headers: { 'X-Vault-Token': token } }, (res) => {
      res.resume();
      res.on('end', () => { resolve(res.statusCode ?? 0); });
    });
    req.on('error', reject);
    req.end();
  });
}

describe(`a three-node Raft cluster of real ${vaultServer.name} servers, taken from nothing to a serving app by the plan's production commands`, function () {
  this.timeout(150_000);
  let tls: Tls;
  const nodes: ServerNode[] = [];
  let init: InitOutput;
  let adminPassword: string;
  let agent: Awaited<ReturnType<typeof agentFor>> | undefined;
  let service: RunningService | undefined;

  before(async function () {
    tls = await generateTls();
    // deploy/ha/vault-{1,2,3}.hcl as operators run them (retry_join to the two other nodes),
    // on loopback ports chosen up front.
    const cluster = await reserveClusterPorts();
    const leader = await startServerNode(tls, 'vault-1', cluster);
    nodes.push(leader);
    init = await initAndUnseal(leader);
    for (const id of ['vault-2', 'vault-3']) {
      const follower = await startServerNode(tls, id, cluster);
      nodes.push(follower);
      // retry_join first brings the node into the cluster (initialised, still sealed); then it
      // takes the cluster's unseal keys.
      const deadline = Date.now() + 30_000;
      while (!((await httpsGet(`${follower.addr}/v1/sys/health`, tls)).body as { initialized: boolean }).initialized) {
        if (Date.now() > deadline) throw new Error(`${id} did not join ${leader.addr}:\n${await follower.process.log()}`);
        await sleep(200);
      }
      // The keys can arrive while the node is still joining: it then stays sealed a moment
      // after the threshold, and unseal.sh says so. The operator waits for the join.
      const result = await runScript('scripts/prod/unseal.sh', [], follower.cliEnv(), init.unseal_keys_b64.join('\n') + '\n');
      if (result.code !== 0) {
        expect(result.stderr, result.stderr).to.contain('still sealed');
        const unsealedBy = Date.now() + 30_000;
        while (((await httpsGet(`${follower.addr}/v1/sys/health`, tls)).body as { sealed: boolean }).sealed) {
          if (Date.now() > unsealedBy) throw new Error(`${id} stayed sealed after the threshold of keys:\n${await follower.process.log()}`);
          await sleep(200);
        }
      }
    }
    // Standbys answer health with 429 once they have joined and unsealed.
    for (const follower of nodes.slice(1)) {
      const deadline = Date.now() + 30_000;
      while ((await httpsGet(`${follower.addr}/v1/sys/health`, tls)).status !== 429) {
        if (Date.now() > deadline) throw new Error(`${follower.nodeId} did not join as a standby`);
        await sleep(200);
      }
    }
    // Autopilot promotes joined nodes to voters after a stabilisation time; before that, losing
    // the leader would leave no quorum.
    const voters = async () => {
      const config = await httpsGet(`${leader.addr}/v1/sys/storage/raft/configuration`, tls, init.root_token);
      return (config.body as { data: { config: { servers: { voter: boolean }[] } } }).data.config.servers
        .filter((server) => server.voter).length;
    };
    const votersBy = Date.now() + 60_000;
    while (await voters() < 3) {
      if (Date.now() > votersBy) throw new Error('the followers never became voters');
      await sleep(500);
    }
    // The first bootstrap, once for the whole cluster: the root token is used, then revoked.
    const credentials = join(await tempDir('credentials'), 'approle');
    adminPassword = randomBytes(24).toString('hex');
    registerSecret('admin password (HA)', adminPassword);
    const adminPasswordFile = join(await tempDir('admin'), 'password');
    await writeFile(adminPasswordFile, `${adminPassword}\n`, { mode: 0o600 });
    const boot = await runScript('scripts/prod/first-bootstrap.sh', ['prod', credentials, join(await tempDir('orchestrator'), 'token')],
      leader.cliEnv({ ROLE_TOKEN_TTL: '30s', ADMIN_PASSWORD_FILE: adminPasswordFile }), `${init.root_token}\n`);
    expect(boot.code, boot.stderr).to.equal(0);
    expect(boot.stdout).to.contain('the root token is revoked');
    // The agent and the service talk to a standby: it forwards to whichever node leads.
    const standby = nodes[1] as ServerNode;
    agent = await agentFor(standby, tls, 'prod', credentials, '1s');
    service = await startService(readSettings({
      SECRETS_MODE: 'agent', APP_ENV: 'prod', PORT: '0', ADMIN_PORT: '0', DRAIN_DELAY_MS: '0', VAULT_ADDR: standby.addr, VAULT_CACERT: tls.ca,
      SECRETS_FILE: agent.rendered, VAULT_TOKEN_FILE: agent.token, TOKEN_CHECK_MAX_INTERVAL_MS: '500',
      VAULT_REQUEST_TIMEOUT_MS: '2000',
    }), {}, capturingLogger().logger);
  });
  after(async function () {
    await service?.close();
    await agent?.proc.stop();
    for (const node of nodes) await node.stop();
  });

  it('stays ready when the leader stops; the admin rotates a secret through the new leader and it reaches the service', async function () {
    if (service === undefined) this.skip();
    const url = `http://127.0.0.1:${service.port}`;
    expect(await statusOf(`${url}/readyz`)).to.equal(200);
    await (nodes[0] as ServerNode).stop();

    const statuses: number[] = [];
    const end = Date.now() + 12_000;
    while (Date.now() < end) {
      statuses.push(await statusOf(`${url}/readyz`));
      await sleep(200);
    }
    expect(statuses.filter((s) => s !== 200), statuses.join(',')).to.deep.equal([]);

    const leaderNow = async () => ((await httpsGet(`${(nodes[1] as ServerNode).addr}/v1/sys/leader`, tls)).body as
      { leader_address: string }).leader_address;
    const electedBy = Date.now() + 15_000;
    while (![nodes[1]?.addr, nodes[2]?.addr].includes(await leaderNow())) {
      if (Date.now() > electedBy) throw new Error('no new leader elected');
      await sleep(200);
    }

    // Root is gone: the admin logs in (userpass, password on stdin) and rotates a secret after
    // the failover; it reaches the service through the new leader.
    const survivor = nodes[1] as ServerNode;
    const login = await bao(survivor, '', ['login', '-method=userpass', '-token-only', 'username=admin', 'password=-'], adminPassword);
    expect(login.code, login.stderr).to.equal(0);
    const adminToken = login.stdout.trim();
    registerSecret('admin token (HA)', adminToken);
    const key = randomBytes(32).toString('hex');
    registerSecret('rotated key (HA)', key);
    const write = await bao(survivor, adminToken,
      ['kv', 'patch', '-mount=secret', 'saas-project/prod/api-keys', 'webhook_signing_key=-'], key);
    expect(write.code, write.stderr).to.equal(0);
    expect((await bao(survivor, init.root_token, ['token', 'lookup'])).code, 'root stays revoked').to.not.equal(0);
    const deadline = Date.now() + 8000;
    let version: number | undefined;
    while (Date.now() < deadline) {
      const status = await (await fetch(`http://127.0.0.1:${service.adminPort}/status`)).json() as { secrets: { paths: { path: string; version: number }[] } };
      version = status.secrets.paths.find((p) => p.path.endsWith('/api-keys'))?.version;
      if (version === 2) break;
      await sleep(200);
    }
    expect(version).to.equal(2);
  });
});

describe(`operator-init.sh with custodians' PGP keys, on a fresh non-dev ${vaultServer.name} server`, function () {
  this.timeout(120_000);
  let tls: Tls;
  let node: ServerNode;
  let gnupg: string;
  const gpg = (args: string[], input?: Buffer) => new Promise<Buffer>((resolve, reject) => {
    const child = execFile('gpg', ['--batch', '--homedir', gnupg, ...args], { encoding: 'buffer', maxBuffer: 1 << 20 }, (error, stdout, stderr) => {
      if (error !== null) reject(new Error(`gpg ${args.join(' ')}: ${stderr.toString()}`));
      else resolve(stdout);
    });
    child.stdin?.end(input);
  });
  /** A custodian: a key pair in the test's keyring, its public half in a file as an operator hands it over. */
  async function custodian(name: string): Promise<string> {
    const uid = `${name} <${name}@custodians.example>`;
    await gpg(['--passphrase', '', '--quick-gen-key', uid, 'rsa2048', 'sign', 'never']);
    const fingerprint = /^fpr:+([0-9A-F]{40}):/m.exec((await gpg(['--with-colons', '--list-keys', uid])).toString())?.[1] ?? '';
    await gpg(['--passphrase', '', '--quick-add-key', fingerprint, 'rsa2048', 'encr', 'never']);
    const file = join(gnupg, `${name}.pub`);
    await writeFile(file, await gpg(['--export', `${name}@custodians.example`]));
    return file;
  }
  const decrypt = async (b64: string) => (await gpg(['--quiet', '--decrypt'], Buffer.from(b64, 'base64'))).toString('utf8').trim();

  before(async function () {
    gnupg = await tempDir('gnupg');
    await chmod(gnupg, 0o700);
    tls = await generateTls();
    node = await startServerNode(tls);
  });
  after(async function () {
    await node.stop();
  });

  it('refuses a key count that is not one per share, naming UNSEAL_PGP_KEYS, and leaves the server uninitialised', async function () {
    const one = await custodian('alone');
    const file = join(await tempDir('init'), 'init.json');
    const refused = await runScript('scripts/prod/operator-init.sh', [file, '3', '2'], node.cliEnv({ UNSEAL_PGP_KEYS: one }));
    expect(refused.code).to.equal(1);
    expect(refused.stderr).to.contain('UNSEAL_PGP_KEYS names 1 key(s) for 3 key shares: one per share');
    expect((await httpsGet(`${node.addr}/v1/sys/health`, tls)).body).to.include({ initialized: false });
  });

  it('encrypts each share to its custodian and the root token to its key: none is readable in the file, each opens Vault', async function () {
    const keys = [await custodian('ada'), await custodian('brian'), await custodian('chloe')];
    const rootKey = await custodian('root-holder');
    const file = join(await tempDir('init'), 'init.json');
    const init = await runScript('scripts/prod/operator-init.sh', [file, '3', '2'],
      node.cliEnv({ UNSEAL_PGP_KEYS: keys.join(','), ROOT_TOKEN_PGP_KEY: rootKey }));
    expect(init.code, init.stderr).to.equal(0);
    expect(init.stderr).to.contain('each encrypted to its custodian\'s PGP key').and.not.contain('in clear');
    const output = JSON.parse(await readFile(file, 'utf8')) as InitOutput;
    expect(output.unseal_keys_b64).to.have.length(3);
    // What the file holds is PGP messages: the shares and the token come out of gpg only.
    const shares = await Promise.all(output.unseal_keys_b64.map(decrypt));
    const rootToken = await decrypt(output.root_token);
    for (const value of [...shares, rootToken]) registerSecret('a decrypted init output', value);
    const text = await readFile(file, 'utf8');
    for (const value of [...shares, rootToken]) expect(text.includes(value), 'in clear in the file').to.be.false;
    // Two custodians' shares unseal; the decrypted root token works.
    const unsealed = await runScript('scripts/prod/unseal.sh', [], node.cliEnv(), `${shares[0] ?? ''}\n${shares[2] ?? ''}\n`);
    expect(unsealed.code, unsealed.stderr).to.equal(0);
    await waitForActive(node, tls);
    const lookup = await httpsGet(`${node.addr}/v1/auth/token/lookup-self`, tls, rootToken);
    expect(lookup.status).to.equal(200);
    expect((lookup.body as { data: { policies: string[] } }).data.policies).to.deep.equal(['root']);
  });
});

describe(`two audit devices on a real non-dev ${vaultServer.name} server: a full audit volume, and its rotation`, function () {
  this.timeout(120_000);
  let tls: Tls;
  let node: ServerNode;
  let root: string;
  let mounted = false;
  const auditDir = () => join(node.dir, 'audit');
  const lookup = async () => (await httpsGet(`${node.addr}/v1/auth/token/lookup-self`, tls, root)).status;
  const requestsIn = async (file: string) => (await readFile(file, 'utf8').catch(() => '')).split('\n')
    .filter((line) => line.includes('"type":"request"') && line.includes('auth/token/lookup-self')).length;

  before(async function () {
    if (process.getuid?.() !== 0) this.skip(); // the full volume is a tmpfs of 64 KiB, which only root mounts
    tls = await generateTls();
    node = await startServerNode(tls);
    // The second device's volume, tiny, before the server opens its file.
    await new Promise<void>((resolve, reject) => {
      execFile('mount', ['-t', 'tmpfs', '-o', 'size=64k,mode=0700', 'tmpfs', auditDir()], (error) => {
        if (error === null) resolve();
        else reject(new Error(`mount a tmpfs on ${auditDir()}: ${error.message}`));
      });
    });
    mounted = true;
    const init = await initAndUnseal(node);
    root = init.root_token;
    registerSecret('root token (audit test)', root);
    // HashiCorp Vault ignores the config's audit blocks: enable both, as first-bootstrap.sh does.
    const listed = await bao(node, root, ['audit', 'list']);
    if (!listed.stdout.includes('file-audit/')) {
      for (const args of [['file', 'file_path=data/audit.log'], ['-path=file-audit', 'file', 'file_path=audit/audit.log']]) {
        const enabled = await bao(node, root, ['audit', 'enable', ...args]);
        expect(enabled.code, enabled.stderr).to.equal(0);
      }
    }
    await waitForActive(node, tls);
  });
  after(async function () {
    if (mounted) await node.stop();
    if (mounted) await new Promise((resolve) => { execFile('umount', [auditDir()], resolve); });
  });

  it('keeps answering when one audit volume is full: the other device logs every request', async function () {
    const statuses: number[] = [];
    for (let i = 0; i < 150; i++) statuses.push(await lookup());
    expect(statuses.filter((status) => status !== 200), 'requests refused').to.deep.equal([]);
    // The 64 KiB volume holds a few dozen entries: it is full, and its device fails each write.
    const full = await requestsIn(join(auditDir(), 'audit.log'));
    expect(full, 'requests logged on the full volume').to.be.within(1, 99);
    expect(await requestsIn(node.auditFile), 'requests logged on the other').to.be.at.least(150);
  });

  it('rotate-audit-log.sh renames the file, has Vault reopen it (SIGHUP) and keeps the newest: the freed volume logs again', async function () {
    const file = join(auditDir(), 'audit.log');
    const rotated = await runScript('scripts/prod/rotate-audit-log.sh', [file, String(node.process.child.pid), '0'], node.cliEnv());
    expect(rotated.code, rotated.stderr).to.equal(0);
    expect(rotated.stdout).to.match(/rotated to .*audit\.log\.\d{8}T\d{6}Z; Vault \(\d+\) told to reopen/).and.to.contain('deleted');
    for (let i = 0; i < 5; i++) expect(await lookup()).to.equal(200);
    expect(await requestsIn(file), 'requests in the new file').to.be.at.least(5);
    const again = await runScript('scripts/prod/rotate-audit-log.sh', [file, String(node.process.child.pid), '3'], node.cliEnv());
    expect(again.code, again.stderr).to.equal(0);
    for (let i = 0; i < 2; i++) expect(await lookup()).to.equal(200);
    const kept = (await readdir(auditDir())).filter((name) => /^audit\.log\.\d{8}T\d{6}Z$/.test(name));
    expect(kept, 'the rotated file kept (keep 3)').to.have.length(1);
    expect(await requestsIn(file)).to.be.at.least(2);
  });
});
