import { expect } from 'chai';
import { secretGroups } from '../../src/config/secret-catalogue.generated.js';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { prepareAgentDir, startAgent, waitForFile, type AgentDir } from '../support/agent.js';
import { generateTls, httpsGet, runScript, startServerNode, type ServerNode, type Tls } from '../support/bao-server.js';
import { registerFromVaultJson, registerSecret } from '../support/leak-scan.js';
import { startTestPostgres, type TestPostgres } from '../support/postgres.js';
import type { ManagedProcess } from '../support/processes.js';
import { startService, type ServiceProcess } from '../support/service.js';
import { addIdentityProvider, tlsRedirectUrl, type IdentityProvider } from '../support/sign-in.js';
import { tempDir } from '../support/temp-dirs.js';
import { foreignLines, haltIntervals, parseLog, printFigures, sleep, until, violations, type Figure } from './harness.js';
import { countByStatus, SteadyLoad, type RequestSpec } from './load.js';

const appEnv = 'staging';
const ratePerSecond = 40;

describe('reliability: the Vault server stopped and started again (non-dev: Raft storage, TLS, sealed at restart), under steady load', function () {
  this.timeout(90_000);
  let tls: Tls;
  let node: ServerNode;
  let unsealKeys: string[] = [];
  let agentDir: AgentDir;
  let agent: ManagedProcess;
  let service: ServiceProcess;
  let postgres: TestPostgres;
  let identity: IdentityProvider;
  /** Outside dev the session cookie is __Host-: the service is behind a TLS proxy it trusts (TRUSTED_PROXIES). */
  const overTls = { 'X-Forwarded-Proto': 'https' };
  let cookie = '';
  const figures: Figure[] = [];
  const cleanups: (() => Promise<unknown>)[] = [];

  const health = async () => (await httpsGet(`${node.addr}/v1/sys/health`, tls).catch(() => ({ status: 0 }))).status;
  async function unseal(): Promise<void> {
    const run = await runScript('scripts/prod/unseal.sh', [], node.cliEnv(), `${unsealKeys.join('\n')}\n`);
    expect(run.code, run.stderr).to.equal(0);
    // Unsealed, then the Raft node elects itself leader: active answers 200.
    await until('the node is active', async () => await health() === 200, 15_000);
  }
  // No sign-in in the mix: the issuer is this Vault, which the test stops (a sign-in is played
  // once before and once after the outage). The session's routes stand for it: the signed
  // cookie checked with the snapshot's session keys, the session found in PostgreSQL.
  const requestFor = (i: number): RequestSpec => {
    switch (i % 4) {
      case 0: return { kind: 'readyz', path: '/readyz' };
      case 1: return { kind: 'projects', path: '/api/projects', headers: { ...overTls, Cookie: cookie } };
      case 2: return { kind: 'healthz', path: '/healthz' };
      default: return { kind: 'session', path: '/api/session', headers: { ...overTls, Cookie: cookie } };
    }
  };

  before(async function () {
    tls = await generateTls();
    node = await startServerNode(tls);
    cleanups.push(() => node.stop());
    const initFile = join(await tempDir('init'), 'init.json');
    const init = await runScript('scripts/prod/operator-init.sh', [initFile, '1', '1'], node.cliEnv());
    expect(init.code, init.stderr).to.equal(0);
    const initText = await readFile(initFile, 'utf8');
    registerFromVaultJson('operator init', initText, 'response');
    const { root_token: rootToken, unseal_keys_b64: keys } = JSON.parse(initText) as { root_token: string; unseal_keys_b64: string[] };
    unsealKeys = keys;
    await unseal();

    agentDir = await prepareAgentDir({ addr: node.addr, rootToken, dir: node.dir }, appEnv,
      { VAULT_CACERT: tls.ca, ROLE_TOKEN_TTL: '60s', ROLE_TOKEN_MAX_TTL: '1h' });
    for (const group of secretGroups) {
      const read = await httpsGet(`${node.addr}/v1/secret/data/saas-project/${appEnv}/${group}`, tls, rootToken);
      registerFromVaultJson(`staging ${group}`, JSON.stringify(read.body), 'response');
    }
    // Sessions live in PostgreSQL, with the user the database group names.
    postgres = await startTestPostgres();
    cleanups.push(() => postgres.stop());
    const database = await httpsGet(`${node.addr}/v1/secret/data/saas-project/${appEnv}/database`, tls, rootToken);
    const { username, password } = (database.body as { data: { data: { username: string; password: string } } }).data.data;
    await postgres.provision(username, password);
    // After the bootstrap, before the agent's first render: Vault's OpenID Connect provider over
    // TLS (an https issuer and redirect, as staging requires) and its client in the oidc group.
    identity = await addIdentityProvider({ addr: node.addr, rootToken, dir: node.dir }, tlsRedirectUrl, { appEnv, caFile: tls.ca });
    await identity.credentials();
    // The repository's agent configuration for staging, unchanged, over TLS.
    agent = startAgent(node, agentDir, appEnv, appEnv, { VAULT_CACERT: tls.ca });
    cleanups.push(() => agent.stop());
    await waitForFile(agentDir.renderedFile, agent);
    await waitForFile(agentDir.tokenFile, agent);
    registerSecret('agent token (staging)', await readFile(agentDir.tokenFile, 'utf8'));
    service = await startService({
      SECRETS_MODE: 'agent', APP_ENV: appEnv, VAULT_ADDR: node.addr, VAULT_CACERT: tls.ca,
      SECRETS_FILE: agentDir.renderedFile, VAULT_TOKEN_FILE: agentDir.tokenFile, DATABASE_PORT: String(postgres.layout.port),
      TOKEN_CHECK_MAX_INTERVAL_MS: '500', VAULT_REQUEST_TIMEOUT_MS: '1000', TRUSTED_PROXIES: '127.0.0.1', ...identity.serviceEnv,
    });
    cleanups.push(() => service.process.stop());
    const signedIn = await identity.signIn(service.url, 'acme', overTls);
    expect(signedIn.cookies.map((c) => c.name)).to.include('__Host-saas_session');
    cookie = signedIn.cookieHeader;
  });

  after(async function () {
    printFigures(`Vault stopped and started under ${ratePerSecond} requests/s (agent mode over TLS, Raft storage)`, figures);
    for (const cleanup of cleanups.reverse()) await cleanup();
  });

  it('keeps serving from the last good configuration while Vault is down and sealed, then verifies its token again', async function () {
    const tokenBefore = await readFile(agentDir.tokenFile, 'utf8');
    const load = new SteadyLoad(service.url, ratePerSecond, requestFor);
    const started = Date.now();
    load.start('Vault stopped, started, unsealed');
    let notes: string;
    try {
      await sleep(2000); // steady load before the fault, for comparison
      const stopping = Date.now();
      await node.stop();
      const stopped = Date.now();
      await sleep(2000); // Vault stays down this long, under load
      await node.restart();
      expect(await health(), 'sealed after a restart').to.equal(503);
      await unseal();
      const unsealed = Date.now();
      // The service's next successful check of the agent's token, on its retry schedule.
      let verifiedAt = NaN;
      await until('the service verifies its token again', async () => {
        const status = await (await fetch(`${service.adminUrl}/status`)).json() as { token: { lastCheckAt: string | null; lastCheckOk: boolean | null } };
        verifiedAt = Date.parse(status.token.lastCheckAt ?? '');
        return status.token.lastCheckOk === true && verifiedAt >= unsealed;
      }, 15_000);
      // Sign-in works again: the provider, its keys and the demo users came back with Raft's storage.
      expect((await identity.signIn(service.url, 'globex', overTls)).tenant).to.equal('globex');
      await sleep(1000); // load goes on after the recovery: no late failures
      notes = `Vault stopping ${stopped - stopping} ms, down ${((unsealed - stopped) / 1000).toFixed(1)} s until unsealed; ` +
        `token verified again ${verifiedAt - unsealed} ms after the unseal`;
    } finally {
      await load.stop();
    }
    const samples = load.samples;
    const log = parseLog(await service.process.log());
    const warnings = log.filter((e) => e.msg.startsWith('Vault said nothing about the agent\'s token') && e.t >= started).length;
    const token = (await readFile(agentDir.tokenFile, 'utf8')).trim();
    registerSecret('agent token (staging)', token);
    // Whether the agent logged in again depends on whether one of its renewals fell in the
    // outage: reported, not asserted.
    const relogin = token === tokenBefore.trim() ? 'same agent token throughout' : 'the agent logged in again';
    figures.push({ fault: 'Vault server stopped and started (sealed, then unsealed)', seconds: (Date.now() - started) / 1000,
      requests: samples.length, counts: countByStatus(samples), notes: `${notes}; ${warnings} warnings logged, no halt; ${relogin}` });

    const problems = violations(samples, haltIntervals(log));
    expect(problems.slice(0, 10), `${problems.length} broken promises in ${samples.length} answers`).to.deep.equal([]);
    expect(samples.filter((s) => s.status === 503), 'a Vault outage shorter than the TTL is invisible').to.deep.equal([]);
    expect(load.skipped).to.equal(0);
    expect(warnings).to.be.greaterThan(0);
    // State survived the restart: the agent is still running, and the token it held before
    // the outage is still valid (Raft kept it through the restart and the unseal), as is the
    // one in its sink now.
    expect(agent.child.exitCode).to.equal(null);
    const lookupBefore = await httpsGet(`${node.addr}/v1/auth/token/lookup-self`, tls, tokenBefore.trim());
    expect(lookupBefore.status, 'the token issued before the outage').to.equal(200);
    const lookupNow = await httpsGet(`${node.addr}/v1/auth/token/lookup-self`, tls, token);
    expect(lookupNow.status, 'the token in the sink now').to.equal(200);
  });

  it('never crashed and exits 0 on SIGTERM', async function () {
    expect(service.process.child.exitCode).to.equal(null);
    expect(await service.process.stop('SIGTERM')).to.equal(0);
    const text = await service.process.log();
    expect(foreignLines(text)).to.deep.equal([]);
    expect(parseLog(text).filter((e) => e.msg === 'request failed')).to.deep.equal([]);
  });
});
