import { expect } from 'chai';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { readSettings } from '../../src/config/settings.js';
import type { AgentStatus } from '../../src/report/agent-report.js';
import { startService, type RunningService } from '../../src/start.js';
import { renewalPeriodMs } from '../../src/vault/agent-renewal.js';
import { prepareAgentDir, startAgent, waitForFile, type AgentDir } from '../support/agent.js';
import { wrappedSecretId } from '../support/approle-admin.js';
import { startDevServer, type DevServer, vaultServer } from '../support/bao.js';
import { statusOf, timeUntil } from '../support/http-poll.js';
import type { ManagedProcess } from '../support/processes.js';
import { capturingLogger } from '../support/rendered-secrets.js';
import { asDuration, scaleDurations, shippedProduction, type ProductionDurations } from '../support/shipped-durations.js';

/** Every shipped duration divided by this one factor (the soak's and the cluster's, support/shipped-durations.ts). */
const factor = 30;

/**
 * A real agent (the dev configuration, unchanged) and the service, on the shipped token TTL,
 * max TTL and check interval, each divided by 30: a dead agent is seen late from its token,
 * and a restarted one clears it.
 */
describe(`a dead Vault Agent is seen within one renewal period, with a real ${vaultServer.name} agent and server (1/${factor} time)`, function () {
  this.timeout(120_000);
  let server: DevServer;
  let agentDir: AgentDir;
  let agent: ManagedProcess;
  let service: RunningService;
  let durations: ProductionDurations;
  let log: ReturnType<typeof capturingLogger>;
  /** The longest the agent may take between two renewals of the full TTL. */
  let periodMs: number;

  before(async function () {
    durations = scaleDurations((await shippedProduction()).durations, factor);
    periodMs = renewalPeriodMs(durations.tokenTtl / 1000, durations.tokenTtl / 1000);
    server = await startDevServer();
    agentDir = await prepareAgentDir(server, 'dev', {
      ROLE_TOKEN_TTL: asDuration(durations.tokenTtl), ROLE_TOKEN_MAX_TTL: asDuration(durations.tokenMaxTtl), ROLE_SECRET_ID_NUM_USES: '0',
    });
    agent = startAgent(server, agentDir);
    await waitForFile(agentDir.renderedFile, agent);
    log = capturingLogger();
    service = await startService(readSettings({
      SECRETS_MODE: 'agent', APP_ENV: 'dev', PORT: '0', ADMIN_PORT: '0', DRAIN_DELAY_MS: '0', VAULT_ADDR: server.addr,
      SECRETS_FILE: agentDir.renderedFile, VAULT_TOKEN_FILE: agentDir.tokenFile, TOKEN_CHECK_MAX_INTERVAL_MS: String(durations.checkInterval),
    }), {}, log.logger);
  });
  after(async function () {
    await service.close();
    await agent.stop();
    await server.stop();
  });

  const admin = () => `http://127.0.0.1:${service.adminPort}`;
  const agentStatus = async (): Promise<AgentStatus> => ((await (await fetch(`${admin()}/status`)).json()) as { agent: AgentStatus }).agent;
  const overdueGauge = async (): Promise<number> => Number(/^saas_agent_overdue (\S+)$/m.exec(await (await fetch(`${admin()}/metrics`)).text())?.[1]);
  const lines = (msg: string) => log.lines.filter((l) => String(l.msg).startsWith(msg));

  /** Polls /status every 100 ms until the agent's state is `state`; returns the time it took. */
  async function timeUntilAgent(state: AgentStatus['state'], limitMs: number, what: string): Promise<number> {
    const start = Date.now();
    while ((await agentStatus()).state !== state) {
      if (Date.now() - start > limitMs) throw new Error(`${what}: not ${state} within ${limitMs} ms; the agent's log:\n${(await agent.log()).slice(-3000)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    return Date.now() - start;
  }

  it('an agent alive through two renewal periods is on time all along', async function () {
    const states = new Set<string>();
    for (const end = Date.now() + 2 * periodMs; Date.now() < end;) {
      states.add((await agentStatus()).state);
      await new Promise((r) => setTimeout(r, 200));
    }
    expect([...states]).to.deep.equal(['on_time']);
    expect(await overdueGauge()).to.equal(0);
    expect(lines('Vault Agent is overdue')).to.deep.equal([]);
  });

  it('SIGKILL: overdue in /status and /metrics within one renewal period + 1 s, said once in the log', async function () {
    agent.child.kill('SIGKILL');
    const tookMs = await timeUntilAgent('overdue', periodMs + 1000, 'the killed agent');
    console.log(`      overdue ${tookMs} ms after the SIGKILL (one renewal period: ${periodMs} ms)`);
    expect(await overdueGauge()).to.equal(1);
    expect(lines('Vault Agent is overdue')).to.have.length(1);
    expect(await statusOf(`http://127.0.0.1:${service.port}/readyz`), 'no outage yet: the token still works').to.equal(200);
  });

  it('restarted with a fresh wrapped secret id (as a supervisor and the courier do): logs in, and overdue clears with no other step', async function () {
    await agent.stop();
    await writeFile(join(agentDir.credentialsDir, 'secret-id'), await wrappedSecretId(server));
    agent = startAgent(server, agentDir);
    // The agent's first login, the sink's watch and one lookup: within its TTL.
    await timeUntilAgent('on_time', durations.tokenTtl, 'the restarted agent');
    expect(await overdueGauge()).to.equal(0);
    expect(lines('Vault Agent renewed its token again')).to.have.length(1);
  });

  it('dead until its token expires: traffic halts with vault_token_expired at the known expiry, never vault_token_invalid', async function () {
    const before = log.lines.filter((l) => l.level === 'fatal').length;
    agent.child.kill('SIGKILL');
    // What is left of the token, then one check interval + 1 s for the lookup that finds it gone.
    await timeUntil(`http://127.0.0.1:${service.port}/readyz`, 503, durations.tokenTtl + durations.checkInterval + 1000);
    await new Promise((r) => setTimeout(r, 2 * durations.checkInterval + 1000));
    const fatal = log.lines.filter((l) => l.level === 'fatal').slice(before);
    expect(fatal.map((l) => l.code)).to.deep.equal(['vault_token_expired']);
    expect((await agentStatus()).state).to.equal('overdue');
  });
});
