import { expect } from 'chai';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { AgentStatus } from '../../src/report/agent-report.js';
import { startAgent } from '../support/agent.js';
import { wrappedSecretId } from '../support/approle-admin.js';
import { vaultServer } from '../support/bao.js';
import { statusOf, timeUntil } from '../support/http-poll.js';
import { agentTimeFactor, startScaledAgent, type ScaledAgent } from '../support/scaled-agent.js';

/**
 * A real agent (the dev configuration, unchanged) and the service, on the shipped token TTL,
 * max TTL and check interval, each divided by 30: a dead agent is seen late from its token,
 * and a restarted one clears it.
 */
describe(`a dead Vault Agent is seen within one renewal period, with a real ${vaultServer.name} agent and server (1/${agentTimeFactor} time)`, function () {
  this.timeout(120_000);
  let ctx: ScaledAgent;

  before(async function () {
    ctx = await startScaledAgent();
  });
  after(async function () {
    await (ctx as ScaledAgent | undefined)?.stop();
  });

  const agentStatus = async (): Promise<AgentStatus> => (await ctx.status()).agent;
  const lines = (msg: string) => ctx.log.lines.filter((l) => String(l.msg).startsWith(msg));

  it('an agent alive through two renewal periods is on time all along', async function () {
    const states = new Set<string>();
    for (const end = Date.now() + 2 * ctx.periodMs; Date.now() < end;) {
      states.add((await agentStatus()).state);
      await new Promise((r) => setTimeout(r, 200));
    }
    expect([...states]).to.deep.equal(['on_time']);
    expect(await ctx.overdueGauge()).to.equal(0);
    expect(lines('Vault Agent is overdue')).to.deep.equal([]);
  });

  it('SIGKILL: overdue in /status and /metrics within one renewal period + 1 s, said once in the log', async function () {
    ctx.agent.child.kill('SIGKILL');
    const tookMs = await ctx.timeUntilAgent('overdue', ctx.periodMs + 1000, 'the killed agent');
    console.log(`      overdue ${tookMs} ms after the SIGKILL (one renewal period: ${ctx.periodMs} ms)`);
    expect(await ctx.overdueGauge()).to.equal(1);
    expect(lines('Vault Agent is overdue')).to.have.length(1);
    expect(await statusOf(`http://127.0.0.1:${ctx.service.port}/readyz`), 'no outage yet: the token still works').to.equal(200);
  });

  it('restarted with a fresh wrapped secret id (as a supervisor and the courier do): logs in, and overdue clears with no other step', async function () {
    await ctx.agent.stop();
    await writeFile(join(ctx.agentDir.credentialsDir, 'secret-id'), await wrappedSecretId(ctx.server));
    ctx.agent = startAgent(ctx.server, ctx.agentDir);
    // The agent's first login, the sink's watch and one lookup: within its TTL.
    await ctx.timeUntilAgent('on_time', ctx.durations.tokenTtl, 'the restarted agent');
    expect(await ctx.overdueGauge()).to.equal(0);
    expect(lines('Vault Agent renewed its token again')).to.have.length(1);
  });

  it('dead until its token expires: traffic halts with vault_token_expired at the known expiry, never vault_token_invalid', async function () {
    const before = ctx.log.lines.filter((l) => l.level === 'fatal').length;
    ctx.agent.child.kill('SIGKILL');
    // What is left of the token, then one check interval + 1 s for the lookup that finds it gone.
    await timeUntil(`http://127.0.0.1:${ctx.service.port}/readyz`, 503, ctx.durations.tokenTtl + ctx.durations.checkInterval + 1000);
    await new Promise((r) => setTimeout(r, 2 * ctx.durations.checkInterval + 1000));
    const fatal = ctx.log.lines.filter((l) => l.level === 'fatal').slice(before);
    expect(fatal.map((l) => l.code)).to.deep.equal(['vault_token_expired']);
    expect((await agentStatus()).state).to.equal('overdue');
  });
});
