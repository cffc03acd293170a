import { expect } from 'chai';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { readSettings } from '../../src/config/settings.js';
import { startService, type RunningService } from '../../src/start.js';
import { checkFraction, checkSpread } from '../../src/vault/check-schedule.js';
import { prepareAgentDir, startAgent, waitForFile, type AgentDir } from '../support/agent.js';
import { startBaoDevServer, type BaoDevServer } from '../support/bao.js';
import { runBootstrap } from '../support/bootstrap.js';
import type { ManagedProcess } from '../support/processes.js';
import { poll, statusOf, timeUntil } from '../support/http-poll.js';
import { capturingLogger } from '../support/rendered-secrets.js';
import { tempDir } from '../support/temp-dirs.js';
import { vaultRequest } from '../support/vault-http.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Revokes every token AppRole has issued, as an operator responding to a leak would. */
async function revokeAppRoleTokens(server: BaoDevServer): Promise<void> {
  const response = await vaultRequest(server.addr, server.rootToken, 'PUT', 'sys/leases/revoke-prefix/auth/approle/login');
  expect(response.status).to.equal(204);
}

describe('token lifecycle in SDK mode, against a real bao dev server (4 s TTL)', function () {
  this.timeout(60_000);
  let server: BaoDevServer;
  let service: RunningService | undefined;
  let log: ReturnType<typeof capturingLogger>;

  beforeEach(async function () {
    server = await startBaoDevServer();
    log = capturingLogger();
  });
  afterEach(async function () {
    await service?.close();
    service = undefined;
    await server.stop();
  });

  async function start(roleEnv: NodeJS.ProcessEnv): Promise<{ url: string; secretIdFile: string }> {
    const credentials = await tempDir('credentials');
    const run = await runBootstrap(server, 'dev', credentials, roleEnv);
    expect(run.code, run.stderr).to.equal(0);
    const settings = readSettings({ SECRETS_MODE: 'sdk', APP_ENV: 'dev', PORT: '0', VAULT_ADDR: server.addr });
    const secretIdFile = join(credentials, 'secret-id');
    service = await startService(settings,
      { VAULT_ROLE_ID_FILE: join(credentials, 'role-id'), VAULT_WRAPPED_SECRET_ID_FILE: secretIdFile }, log.logger);
    return { url: `http://127.0.0.1:${service.port}`, secretIdFile };
  }

  it('serves 200 without a gap for longer than the 12 s max TTL: renewals, then a new login', async function () {
    const { url } = await start({ ROLE_TOKEN_TTL: '4s', ROLE_TOKEN_MAX_TTL: '12s', ROLE_SECRET_ID_NUM_USES: '0' });
    const statuses = await poll(`${url}/readyz`, 16_000);
    expect(statuses.filter((s) => s !== 200), `${statuses.length} requests`).to.deep.equal([]);
    const messages = log.lines.map((l) => l.msg);
    expect(messages).to.include('logged in to Vault again');
    expect(log.lines.filter((l) => l.level === 'fatal')).to.deep.equal([]);

    const status = await (await fetch(`${url}/status`)).json() as Record<string, Record<string, unknown>>;
    expect(status.token).to.include({ mode: 'sdk', renewable: true, lastCheckOk: true });
    expect(status.token?.ttlSeconds).to.be.within(0, 12);
    expect(status.gate).to.include({ state: 'open' });
    expect(status.secrets?.paths).to.deep.equal(['database', 'api-keys', 'app'].map((g) => (
      { path: `secret/data/saas-project/dev/${g}`, version: 1 })));
  });

  it('halts every route within one check interval + 1 s of a revocation, stays halted without a secret id, ' +
    'and recovers when a fresh one is dropped', async function () {
    const { url, secretIdFile } = await start({ ROLE_TOKEN_TTL: '4s', ROLE_TOKEN_MAX_TTL: '60s', ROLE_SECRET_ID_NUM_USES: '1' });
    expect(await statusOf(`${url}/readyz`)).to.equal(200);
    await revokeAppRoleTokens(server);
    // The check interval is two thirds of the 4 s TTL, plus its random part at most.
    const interval = 4000 * (checkFraction + checkSpread / 2);
    const halted = await timeUntil(`${url}/readyz`, 503, interval + 1000);
    expect(halted).to.be.at.most(interval + 1000);
    for (const path of ['/readyz', '/status', '/anything']) expect(await statusOf(`${url}${path}`), path).to.equal(503);
    const fatal = log.lines.filter((l) => l.level === 'fatal');
    expect(fatal).to.have.length(1);
    expect(fatal[0]).to.include({ code: 'vault_login_failed' });

    // The only secret id was used at start-up: nothing to log in with.
    expect((await poll(`${url}/readyz`, 3000)).every((s) => s === 503)).to.be.true;
    // What a trusted orchestrator does: drop a fresh response-wrapped secret id.
    const fresh = await fetch(`${server.addr}/v1/auth/approle/role/saas-app-role/secret-id`, {
      method: 'POST', headers: { 'X-Vault-Token': server.rootToken, 'X-Vault-Wrap-TTL': '60s' },
    });
    const wrappingToken = ((await fresh.json()) as { wrap_info: { token: string } }).wrap_info.token;
    await writeFile(secretIdFile, wrappingToken);
    await timeUntil(`${url}/readyz`, 200, 12_000);
    expect(log.lines.filter((l) => l.level === 'fatal'), 'still one fatal line').to.have.length(1);
    expect(log.text()).to.not.contain(wrappingToken);
  });
});

/**
 * A real agent and the service in process: `ttl` is the role's token TTL. The agent renews
 * at about two thirds of it; the service checks at least every 500 ms.
 */
function agentModeSuite(ttl: string, tests: (ctx: AgentContext) => void): void {
  const ctx = {} as AgentContext;
  before(async function () {
    ctx.server = await startBaoDevServer();
    ctx.agentDir = await prepareAgentDir(ctx.server, 'dev',
      { ROLE_TOKEN_TTL: ttl, ROLE_TOKEN_MAX_TTL: '1h', ROLE_SECRET_ID_NUM_USES: '0' });
    ctx.agent = startAgent(ctx.server, ctx.agentDir);
    await waitForFile(ctx.agentDir.renderedFile, ctx.agent);
    ctx.log = capturingLogger();
    const settings = readSettings({
      SECRETS_MODE: 'agent', APP_ENV: 'dev', PORT: '0', VAULT_ADDR: ctx.server.addr, SECRETS_FILE: ctx.agentDir.renderedFile,
      VAULT_TOKEN_FILE: ctx.agentDir.tokenFile, TOKEN_CHECK_MAX_INTERVAL_MS: '500', VAULT_REQUEST_TIMEOUT_MS: '1000',
    });
    ctx.service = await startService(settings, {}, ctx.log.logger);
    ctx.url = `http://127.0.0.1:${ctx.service.port}`;
  });
  after(async function () {
    ctx.server.process.child.kill('SIGCONT');
    await ctx.service.close();
    await ctx.agent.stop();
    await ctx.server.stop();
  });
  tests(ctx);
}

interface AgentContext {
  server: BaoDevServer;
  agentDir: AgentDir;
  agent: ManagedProcess;
  service: RunningService;
  url: string;
  log: ReturnType<typeof capturingLogger>;
}

const fatalLines = (ctx: AgentContext) => ctx.log.lines.filter((l) => l.level === 'fatal');

describe('token lifecycle in agent mode: revocation, with a real bao agent and server (6 s TTL)', function () {
  this.timeout(60_000);
  agentModeSuite('6s', (ctx) => {
    it('halts when the agent\'s token is revoked, and reopens when the agent logs in again', async function () {
      const { agent, agentDir, server, url } = ctx;
      expect(await statusOf(`${url}/readyz`)).to.equal(200);
      const tokenBefore = await readFile(agentDir.tokenFile, 'utf8');
      // Right after one of the agent's renewals, so the service sees the revocation first.
      const renewals = async () => ((await agent.log()).match(/renewed auth token/g) ?? []).length;
      const seen = await renewals();
      while (await renewals() === seen) await sleep(50);
      await revokeAppRoleTokens(server);

      await timeUntil(`${url}/readyz`, 503, 1500);
      expect(fatalLines(ctx)).to.have.length(1);
      expect(fatalLines(ctx)[0]).to.include({ code: 'vault_token_invalid' });
      // The agent notices at its next renewal (about 4 s) and logs in again with its secret id.
      await timeUntil(`${url}/readyz`, 200, 10_000);
      expect(await readFile(agentDir.tokenFile, 'utf8')).to.not.equal(tokenBefore);
      expect(ctx.log.lines.filter((l) => l.msg === 'traffic open again: the Vault token is valid')).to.have.length(1);

      const status = await (await fetch(`${url}/status`)).text();
      const secrets = ctx.service.holder.current?.secrets;
      for (const value of [await readFile(agentDir.tokenFile, 'utf8'), tokenBefore, secrets?.database.password,
        secrets?.['api-keys'].webhook_signing_key, ...(secrets?.app.session_keys ?? [])]) {
        expect(status).to.not.contain(value);
      }
      expect(JSON.parse(status)).to.nested.include({ mode: 'agent', 'gate.state': 'open', 'token.lastCheckOk': true });
    });
  });
});

describe('token lifecycle in agent mode: Vault outages, with a real bao agent and server (12 s TTL)', function () {
  this.timeout(60_000);
  agentModeSuite('12s', (ctx) => {
    it('keeps serving through a Vault outage shorter than the token\'s TTL', async function () {
      const { server, url } = ctx;
      server.process.child.kill('SIGSTOP');
      let statuses: number[];
      try {
        statuses = await poll(`${url}/readyz`, 2500);
      } finally {
        server.process.child.kill('SIGCONT');
      }
      expect(statuses.every((s) => s === 200), statuses.join(',')).to.be.true;
      expect((await poll(`${url}/readyz`, 1500)).every((s) => s === 200)).to.be.true;
      expect(fatalLines(ctx)).to.have.length(0);
      expect(ctx.log.lines.some((l) => l.msg === 'could not verify the Vault token; serving from the last good configuration until its known expiry'))
        .to.be.true;
    });

    it('halts during a Vault outage longer than the token\'s TTL', async function () {
      const { server, url } = ctx;
      server.process.child.kill('SIGSTOP');
      try {
        await timeUntil(`${url}/readyz`, 503, 14_000);
      } finally {
        server.process.child.kill('SIGCONT');
      }
      expect(fatalLines(ctx)).to.have.length(1);
      expect(fatalLines(ctx)[0]).to.include({ code: 'vault_token_expired' });
    });
  });
});
