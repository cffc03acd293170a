import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { open, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { readSettings } from '../../src/config/settings.js';
import type { AgentStatus } from '../../src/report/agent-report.js';
import { startService, type RunningService } from '../../src/start.js';
import { renewalPeriodMs } from '../../src/vault/agent-renewal.js';
import { prepareAgentDir, startAgent, waitForFile, type AgentDir } from '../support/agent.js';
import { wrappedSecretId } from '../support/approle-admin.js';
import { repoRoot, startDevServer, type DevServer, vaultServer } from '../support/bao.js';
import { statusOf } from '../support/http-poll.js';
import type { ManagedProcess } from '../support/processes.js';
import { capturingLogger, randomKey } from '../support/rendered-secrets.js';
import { asDuration, durationMs, scaleDurations, shippedProduction, type ProductionDurations } from '../support/shipped-durations.js';
import { vaultData } from '../support/vault-http.js';

const run = promisify(execFile);

/** Every shipped duration divided by this one factor, as in vault/agent-overdue-bao.test.ts. */
const factor = 30;

const apiKeysPath = 'secret/data/saas-project/dev/api-keys';

/** The dev re-read interval, from the env file the agent runs with (unscaled: the agent runs it unchanged). */
async function devRenderIntervalMs(): Promise<number> {
  const hcl = await readFile(join(repoRoot, 'agent-config/env/dev.hcl'), 'utf8');
  const match = /static_secret_render_interval\s*=\s*"([^"]+)"/.exec(hcl);
  if (match?.[1] === undefined) throw new Error('env/dev.hcl sets no static_secret_render_interval');
  return durationMs(match[1]);
}

/** Writes to `dir` until its filesystem refuses with ENOSPC; returns the filler's path. */
async function fill(dir: string): Promise<string> {
  const path = join(dir, 'filler');
  const file = await open(path, 'w');
  const chunk = Buffer.alloc(1024);
  try {
    for (;;) await file.write(chunk);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOSPC') throw error;
  } finally {
    await file.close();
  }
  return path;
}

/**
 * A full filesystem under the rendered file, with the real agent (the dev configuration,
 * unchanged) and the service on the shipped token TTL, max TTL and check interval divided by
 * 30. Both servers' agents exit 1 on the first render they cannot write, without retrying
 * (consul-template's render errors are not fetch errors: vault.retry does not apply to them):
 * the service keeps its last good snapshot, and sees the dead agent by its token, which nobody
 * renews any more. A supervisor's restart, once there is space, renders the new secrets.
 */
describe(`a full filesystem under the rendered file, with a real ${vaultServer.name} agent and server (1/${factor} time)`, function () {
  this.timeout(120_000);
  let server: DevServer;
  let agentDir: AgentDir;
  let agent: ManagedProcess;
  let service: RunningService;
  let durations: ProductionDurations;
  let log: ReturnType<typeof capturingLogger>;
  let periodMs: number;
  let mounted = false;
  let filler: string;
  let lastGood: number;
  let rotated: number;

  before(async function () {
    const uid = process.getuid?.();
    if (process.platform !== 'linux' || uid !== 0) {
      console.log(`      skipped: a tiny tmpfs under the rendered file needs root on Linux (this is ${process.platform}, uid ${String(uid)})`);
      this.skip();
    }
    durations = scaleDurations((await shippedProduction()).durations, factor);
    periodMs = renewalPeriodMs(durations.tokenTtl / 1000, durations.tokenTtl / 1000);
    server = await startDevServer();
    agentDir = await prepareAgentDir(server, 'dev', {
      ROLE_TOKEN_TTL: asDuration(durations.tokenTtl), ROLE_TOKEN_MAX_TTL: asDuration(durations.tokenMaxTtl), ROLE_SECRET_ID_NUM_USES: '0',
    });
    // The token sink and the rendered file share it, as they share the secrets/ tmpfs in production.
    await run('mount', ['-t', 'tmpfs', '-o', 'size=64k,mode=0750', 'tmpfs', agentDir.secretsDir]);
    mounted = true;
    agent = startAgent(server, agentDir);
    await waitForFile(agentDir.renderedFile, agent);
    log = capturingLogger();
    service = await startService(readSettings({
      SECRETS_MODE: 'agent', APP_ENV: 'dev', PORT: '0', ADMIN_PORT: '0', DRAIN_DELAY_MS: '0', VAULT_ADDR: server.addr,
      SECRETS_FILE: agentDir.renderedFile, VAULT_TOKEN_FILE: agentDir.tokenFile, TOKEN_CHECK_MAX_INTERVAL_MS: String(durations.checkInterval),
    }), {}, log.logger);
  });
  after(async function () {
    // Undefined where before() skipped or failed early.
    await (service as RunningService | undefined)?.close();
    await (agent as ManagedProcess | undefined)?.stop();
    await (server as DevServer | undefined)?.stop();
    if (mounted) await run('umount', [agentDir.secretsDir]).catch(() => run('umount', ['-l', agentDir.secretsDir]));
  });

  const admin = () => `http://127.0.0.1:${service.adminPort}`;
  interface Status { agent: AgentStatus; secrets: { paths: { path: string; version: number }[] } }
  const status = async (): Promise<Status> => (await (await fetch(`${admin()}/status`)).json()) as Status;
  const apiKeysVersion = async () => (await status()).secrets.paths.find((p) => p.path === apiKeysPath)?.version;
  const overdueGauge = async (): Promise<number> => Number(/^saas_agent_overdue (\S+)$/m.exec(await (await fetch(`${admin()}/metrics`)).text())?.[1]);

  async function timeUntilAgent(state: AgentStatus['state'], limitMs: number, what: string): Promise<number> {
    const start = Date.now();
    while ((await status()).agent.state !== state) {
      if (Date.now() - start > limitMs) throw new Error(`${what}: not ${state} within ${limitMs} ms; the agent's log:\n${(await agent.log()).slice(-3000)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    return Date.now() - start;
  }

  async function rotate(): Promise<number> {
    const written = await vaultData<{ version: number }>(server.addr, server.rootToken, 'POST', apiKeysPath,
      { data: { webhook_signing_key: randomKey() } });
    return written.version;
  }

  it('before: the agent renders, the service loads it, the agent is on time', async function () {
    await timeUntilAgent('on_time', durations.tokenTtl, 'the agent');
    lastGood = (await apiKeysVersion()) as number;
    expect(lastGood).to.be.a('number');
    expect(await overdueGauge()).to.equal(0);
  });

  it('full, then a KV rotation: the agent exits 1 at its next re-read, without retrying, and leaves the last good file', async function () {
    filler = await fill(agentDir.secretsDir);
    const before = await readFile(agentDir.renderedFile, 'utf8');
    rotated = await rotate();
    const started = Date.now();
    const limitMs = (await devRenderIntervalMs()) + 1000;
    const exit = await Promise.race([agent.exited, new Promise((r) => { setTimeout(() => { r('still running'); }, limitMs); })]);
    console.log(`      the agent exited (${String(exit)}) ${Date.now() - started} ms after the rotation (re-read interval: ${limitMs - 1000} ms)`);
    expect(exit, `the agent's log:\n${(await agent.log()).slice(-3000)}`).to.equal(1);
    const agentLog = await agent.log();
    expect(agentLog).to.match(/template server error: error=".*failed writing file: .*no space left on device"/);
    expect(agentLog).to.match(/runtime error encountered: .*no space left on device" exitCode=1/);
    expect(agentLog, 'no template retry before the exit').to.not.match(/retry attempt/);
    expect(await readFile(agentDir.renderedFile, 'utf8')).to.equal(before);
  });

  it('the service keeps serving the last good secrets, and shows the dead agent as overdue within one renewal period + 1 s', async function () {
    const tookMs = await timeUntilAgent('overdue', periodMs + 1000, 'the agent that exited on ENOSPC');
    console.log(`      overdue ${tookMs} ms after the agent's exit (one renewal period: ${periodMs} ms)`);
    expect(await overdueGauge()).to.equal(1);
    expect(log.lines.filter((l) => String(l.msg).startsWith('Vault Agent is overdue'))).to.have.length(1);
    expect(await apiKeysVersion(), 'the last good version, not the one the agent could not write').to.equal(lastGood);
    expect(await statusOf(`http://127.0.0.1:${service.port}/readyz`), 'serving: the token has not expired').to.equal(200);
  });

  it('restarted while still full (a supervisor\'s immediate restart): exits 1 at once at its sink\'s write check, and stays overdue', async function () {
    await writeFile(join(agentDir.credentialsDir, 'secret-id'), await wrappedSecretId(server));
    const started = Date.now();
    agent = startAgent(server, agentDir);
    expect(await agent.exited).to.equal(1);
    console.log(`      the restarted agent exited (1) ${Date.now() - started} ms after its start`);
    expect(await agent.log()).to.match(/error creating file sink: error during write check: .*no space left on device/);
    const secretIdLeft = await stat(join(agentDir.credentialsDir, 'secret-id')).then(() => true, () => false);
    expect(secretIdLeft, 'it exits before its login: the delivered secret id waits for the next start').to.be.true;
    expect((await status()).agent.state).to.equal('overdue');
    expect(await overdueGauge()).to.equal(1);
    expect(await apiKeysVersion()).to.equal(lastGood);
  });

  it('space freed, the agent restarted as a supervisor does (the secret id delivered before, still unread): the new version loads, overdue clears', async function () {
    await rm(filler);
    // The secret id delivered for the failed start is still there, unread.
    agent = startAgent(server, agentDir);
    const started = Date.now();
    await timeUntilAgent('on_time', durations.tokenTtl, 'the restarted agent');
    while (await apiKeysVersion() !== rotated) {
      if (Date.now() - started > durations.tokenTtl) throw new Error(`version ${rotated} not loaded within ${durations.tokenTtl} ms`);
      await new Promise((r) => setTimeout(r, 100));
    }
    console.log(`      version ${rotated} loaded and on time ${Date.now() - started} ms after the restart`);
    expect(await overdueGauge()).to.equal(0);
    expect(log.lines.filter((l) => String(l.msg).startsWith('Vault Agent renewed its token again'))).to.have.length(1);
    expect(await statusOf(`http://127.0.0.1:${service.port}/readyz`)).to.equal(200);
  });
});
