import { expect } from 'chai';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { readSettings } from '../../src/config/settings.js';
import { startService, type RunningService } from '../../src/start.js';
import { prepareAgentDir, startAgent, waitForFile, type AgentDir } from '../support/agent.js';
import { startDevServer, type DevServer, vaultServer } from '../support/bao.js';
import type { ManagedProcess } from '../support/processes.js';
import { poll, statusOf, timeUntil } from '../support/http-poll.js';
import { capturingLogger } from '../support/rendered-secrets.js';
import { destroySecretIds, revokeAppRoleTokens, unlockRoleId, wrappedSecretId } from '../support/approle-admin.js';

/**
 * A real agent and the service in process: `ttl` is the role's token TTL. The agent renews
 * at about two thirds of it; the service checks at least every `checkMs` (null: the default 10 s;
 * '0': no maximum, two thirds of the TTL decides).
 */
function agentModeSuite(ttl: string, tests: (ctx: AgentContext) => void, checkMs: string | null = '500'): void {
  const ctx = {} as AgentContext;
  before(async function () {
    ctx.server = await startDevServer();
    ctx.agentDir = await prepareAgentDir(ctx.server, 'dev',
      { ROLE_TOKEN_TTL: ttl, ROLE_TOKEN_MAX_TTL: '1h', ROLE_SECRET_ID_NUM_USES: '0' });
    ctx.agent = startAgent(ctx.server, ctx.agentDir);
    await waitForFile(ctx.agentDir.renderedFile, ctx.agent);
    ctx.log = capturingLogger();
    const settings = readSettings({
      SECRETS_MODE: 'agent', APP_ENV: 'dev', PORT: '0', ADMIN_PORT: '0', DRAIN_DELAY_MS: '0', VAULT_ADDR: ctx.server.addr, SECRETS_FILE: ctx.agentDir.renderedFile,
      VAULT_TOKEN_FILE: ctx.agentDir.tokenFile, VAULT_REQUEST_TIMEOUT_MS: '1000',
      ...(checkMs === null ? {} : { TOKEN_CHECK_MAX_INTERVAL_MS: checkMs }),
    });
    ctx.service = await startService(settings, {}, ctx.log.logger);
    ctx.url = `http://127.0.0.1:${ctx.service.port}`;
  });
  after(async function () {
    ctx.server.process.child.kill('SIGCONT');
    ctx.agent.child.kill('SIGCONT');
    await ctx.service.close();
    await ctx.agent.stop();
    await ctx.server.stop();
  });
  tests(ctx);
}

interface AgentContext {
  server: DevServer;
  agentDir: AgentDir;
  agent: ManagedProcess;
  service: RunningService;
  url: string;
  log: ReturnType<typeof capturingLogger>;
}

const fatalLines = (ctx: AgentContext) => ctx.log.lines.filter((l) => l.level === 'fatal');

/**
 * Which of the two comes first after a revocation, the service's next check or the agent's
 * new token, is a race the tests do not leave to chance: the agent is paused while the
 * service checks (it halts), or the service's next scheduled check is far off while a new
 * agent logs in (it does not).
 */
describe(`The agent's token, watched: revocation, with a real ${vaultServer.name} agent and server (6 s TTL)`, function () {
  this.timeout(60_000);
  agentModeSuite('6s', (ctx) => {
    it('halts within 500 ms + 1 s when the agent\'s token is revoked and the agent has no new one, and reopens once it has', async function () {
      const { agent, agentDir, server, url } = ctx;
      expect(await statusOf(`${url}/readyz`)).to.equal(200);
      const tokenBefore = await readFile(agentDir.tokenFile, 'utf8');
      // Paused, the agent cannot log in again before the service's next check (every 500 ms).
      agent.child.kill('SIGSTOP');
      try {
        await revokeAppRoleTokens(server);
        await timeUntil(`${url}/readyz`, 503, 500 + 1000);
        expect(await readFile(agentDir.tokenFile, 'utf8'), 'the sink while the agent is paused').to.equal(tokenBefore);
      } finally {
        agent.child.kill('SIGCONT');
      }
      expect(fatalLines(ctx)).to.have.length(1);
      expect(fatalLines(ctx)[0]).to.include({ code: 'vault_token_invalid' });
      // The agent notices at its next renewal (about 4 s) and logs in again with its secret id.
      await timeUntil(`${url}/readyz`, 200, 10_000);
      expect(await readFile(agentDir.tokenFile, 'utf8')).to.not.equal(tokenBefore);
      expect(ctx.log.lines.filter((l) => l.msg === 'traffic open again: the Vault token is valid')).to.have.length(1);

      const status = await (await fetch(`http://127.0.0.1:${ctx.service.adminPort}/status`)).text();
      const secrets = ctx.service.holder.current?.secrets;
      for (const value of [await readFile(agentDir.tokenFile, 'utf8'), tokenBefore, secrets?.database.password,
        secrets?.['api-keys'].webhook_signing_key, ...(secrets?.app.session_keys ?? [])]) {
        expect(status).to.not.contain(value);
      }
      expect(JSON.parse(status)).to.nested.include({ mode: 'agent', 'gate.state': 'open', 'token.lastCheckOk': true });
    });
  });
});

describe(`The agent's token, watched: a new token before the next check, with a real ${vaultServer.name} agent and server (1 h TTL, no check interval)`, function () {
  this.timeout(60_000);
  agentModeSuite('1h', (ctx) => {
    it('does not halt when the agent has logged in again before the service\'s next check: the new token is checked as soon as it is written',
      async function () {
        const { agentDir, server, url } = ctx;
        expect(await statusOf(`${url}/readyz`)).to.equal(200);
        const tokenBefore = await readFile(agentDir.tokenFile, 'utf8');
        // With a 1 h TTL and no maximum interval the service's next scheduled check is half an hour
        // away at the earliest: only the agent writing its sink makes it check before that.
        const statuses: number[] = [];
        const watching = { on: true };
        const readiness = (async () => {
          while (watching.on) {
            statuses.push(await statusOf(`${url}/readyz`));
            await new Promise((r) => setTimeout(r, 50));
          }
        })();
        try {
          // The agent stopped, the token it left in the sink revoked, and the operator's restart:
          // a fresh wrapped secret id, a new agent that logs in and writes a new token.
          await ctx.agent.stop();
          await revokeAppRoleTokens(server);
          await writeFile(join(agentDir.credentialsDir, 'secret-id'), await wrappedSecretId(server));
          const restarted = Date.now();
          ctx.agent = startAgent(server, agentDir);
          for (const end = Date.now() + 20_000; await readFile(agentDir.tokenFile, 'utf8') === tokenBefore;) {
            if (Date.now() > end) throw new Error(`the restarted agent wrote no new token within 20 s:\n${await ctx.agent.log()}`);
            await new Promise((r) => setTimeout(r, 50));
          }
          const written = Date.now();
          // The sink's watch (25 ms of quiet) and one lookup (VAULT_REQUEST_TIMEOUT_MS, 1000 ms), + 1 s.
          for (const end = written + 25 + 1000 + 1000; !ctx.log.lines.some((l) => l.msg === 'the agent wrote a new token');) {
            if (Date.now() > end) throw new Error('the service did not take the agent\'s new token within 25 ms + 1000 ms + 1 s of its write');
            await new Promise((r) => setTimeout(r, 50));
          }
          const { token } = await (await fetch(`http://127.0.0.1:${ctx.service.adminPort}/status`)).json() as
            { token: { lastCheckOk: boolean; lastCheckAt: string } };
          expect(token.lastCheckOk, 'the new token checked').to.equal(true);
          expect(Date.parse(token.lastCheckAt)).to.be.at.least(restarted);
        } finally {
          watching.on = false;
          await readiness;
        }
        expect(fatalLines(ctx), 'no halt').to.have.length(0);
        expect(statuses.length).to.be.greaterThan(0);
        expect(statuses.filter((s) => s !== 200), `/readyz throughout: ${statuses.join(',')}`).to.deep.equal([]);
      });
  }, '0');
});

describe(`The agent's token, watched: Vault outages, with a real ${vaultServer.name} agent and server (12 s TTL)`, function () {
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
      expect(ctx.log.lines.some((l) => String(l.msg).startsWith('Vault said nothing about the agent\'s token from '))).to.be.true;
      expect(ctx.log.lines.some((l) => String(l.msg).startsWith('Vault answers again about the agent\'s token from ')),
        'a line closes the outage').to.be.true;
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

describe(`The agent's token, watched: the kill switch, with the default 10 s check and the dev ${vaultServer.name} agent (30 s TTL)`, function () {
  this.timeout(120_000);
  agentModeSuite('30s', (ctx) => {
    const fatalSince = (count: number) => fatalLines(ctx).slice(count);

    it('rotate: revoking the token halts within 10 s + 1 s while the agent has no new one; traffic resumes by itself once it runs',
      async function () {
        const { agent, agentDir, server, url } = ctx;
        expect(await statusOf(`${url}/readyz`)).to.equal(200);
        const before = fatalLines(ctx).length;
        const tokenBefore = await readFile(agentDir.tokenFile, 'utf8');
        // Paused, the agent cannot log in again before the service's next check (10 s at most).
        agent.child.kill('SIGSTOP');
        let halted: number;
        try {
          await revokeAppRoleTokens(server);
          halted = await timeUntil(`${url}/readyz`, 503, 10_000 + 1000);
        } finally {
          agent.child.kill('SIGCONT');
        }
        expect(fatalSince(before)).to.have.length(1);
        expect(fatalSince(before)[0]).to.include({ code: 'vault_token_invalid' });
        // The agent sees the revocation at its next renewal (at most 5/6 of the 30 s TTL).
        const reopened = await timeUntil(`${url}/readyz`, 200, 35_000);
        expect(await readFile(agentDir.tokenFile, 'utf8')).to.not.equal(tokenBefore);
        expect(agent.child.exitCode, 'the dev agent did not give up on the refused renewal').to.equal(null);
        console.log(`      rotate: halted ${halted} ms after the revocation, reopened ${halted + reopened} ms after it`);
      });

    it('kill: revoking the token and the secret id halts within 10 s + 1 s and stays halted; ' +
      'a fresh secret id delivered to the agent brings traffic back', async function () {
      const { agentDir, server, url } = ctx;
      expect(await statusOf(`${url}/readyz`)).to.equal(200);
      const before = fatalLines(ctx).length;
      expect(await destroySecretIds(server)).to.be.at.least(1);
      await revokeAppRoleTokens(server);
      const halted = await timeUntil(`${url}/readyz`, 503, 11_000);
      // Until the agent has tried, and failed, to log in again with its dead secret id.
      const failedLogin = async () => /invalid role or secret ID/i.test(await ctx.agent.log());
      const statuses: number[] = [];
      for (const end = Date.now() + 40_000; !(await failedLogin()) && Date.now() < end;) {
        statuses.push(await statusOf(`${url}/readyz`));
        await new Promise((r) => setTimeout(r, 500));
      }
      statuses.push(...await poll(`${url}/readyz`, 3000, 500));
      expect(statuses.every((s) => s === 503), `stays halted: ${statuses.join(',')}`).to.be.true;
      expect(fatalSince(before), 'one fatal line for the whole halt').to.have.length(1);
      expect(String(fatalSince(before)[0]?.reason)).to.contain('fresh secret id');
      expect(await failedLogin(), 'the agent tried its dead secret id').to.be.true;

      // The operator's recovery: a fresh wrapped secret id where the agent reads it when it logs
      // in, and the role id unlocked (the agent's retries with the dead secret id locked it).
      await writeFile(join(agentDir.credentialsDir, 'secret-id'), await wrappedSecretId(server));
      await unlockRoleId(server, await readFile(join(agentDir.credentialsDir, 'role-id'), 'utf8'));
      const recovered = await timeUntil(`${url}/readyz`, 200, 60_000).catch(async (error: unknown) => {
        throw new Error(`${(error as Error).message}; the agent's log:\n${(await ctx.agent.log()).slice(-6000)}`);
      });
      console.log(`      kill: halted ${halted} ms after the revocation; back ${recovered} ms after a fresh secret id`);
    });
  }, null);
});
