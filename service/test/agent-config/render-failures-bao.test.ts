import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { open, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { AgentStatus } from '../../src/report/agent-report.js';
import { startAgent } from '../support/agent.js';
import { wrappedSecretId } from '../support/approle-admin.js';
import { repoRoot, vaultServer } from '../support/bao.js';
import { statusOf } from '../support/http-poll.js';
import { randomKey } from '../support/rendered-secrets.js';
import { agentTimeFactor, startScaledAgent, type ScaledAgent } from '../support/scaled-agent.js';
import { durationMs } from '../support/shipped-durations.js';
import { vaultData } from '../support/vault-http.js';

const run = promisify(execFile);

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
describe(`a full filesystem under the rendered file, with a real ${vaultServer.name} agent and server (1/${agentTimeFactor} time)`, function () {
  this.timeout(120_000);
  let ctx: ScaledAgent;
  /** The tmpfs under the rendered file, once mounted: unmounted even when the start fails after it. */
  let mountedDir: string | undefined;
  let filler: string;
  let lastGood: number;
  let rotated: number;

  before(async function () {
    const uid = process.getuid?.();
    if (process.platform !== 'linux' || uid !== 0) {
      console.log(`      skipped: a tiny tmpfs under the rendered file needs root on Linux (this is ${process.platform}, uid ${String(uid)})`);
      this.skip();
    }
    // The token sink and the rendered file share it, as they share the secrets/ tmpfs in production.
    ctx = await startScaledAgent(async (dir) => {
      await run('mount', ['-t', 'tmpfs', '-o', 'size=64k,mode=0750', 'tmpfs', dir.secretsDir]);
      mountedDir = dir.secretsDir;
    });
  });
  after(async function () {
    // Undefined where before() skipped or failed early.
    await (ctx as ScaledAgent | undefined)?.stop();
    const dir = mountedDir;
    if (dir !== undefined) await run('umount', [dir]).catch(() => run('umount', ['-l', dir]));
  });

  interface Status { agent: AgentStatus; secrets: { paths: { path: string; version: number }[] } }
  const apiKeysVersion = async () => (await ctx.status<Status>()).secrets.paths.find((p) => p.path === apiKeysPath)?.version;

  async function rotate(): Promise<number> {
    const written = await vaultData<{ version: number }>(ctx.server.addr, ctx.server.rootToken, 'POST', apiKeysPath,
      { data: { webhook_signing_key: randomKey() } });
    return written.version;
  }

  it('before: the agent renders, the service loads it, the agent is on time', async function () {
    await ctx.timeUntilAgent('on_time', ctx.durations.tokenTtl, 'the agent');
    lastGood = (await apiKeysVersion()) as number;
    expect(lastGood).to.be.a('number');
    expect(await ctx.overdueGauge()).to.equal(0);
  });

  it('full, then a KV rotation: the agent exits 1 at its next re-read, without retrying, and leaves the last good file', async function () {
    filler = await fill(ctx.agentDir.secretsDir);
    const before = await readFile(ctx.agentDir.renderedFile, 'utf8');
    rotated = await rotate();
    const started = Date.now();
    const limitMs = (await devRenderIntervalMs()) + 1000;
    const exit = await Promise.race([ctx.agent.exited, new Promise((r) => { setTimeout(() => { r('still running'); }, limitMs); })]);
    console.log(`      the agent exited (${String(exit)}) ${Date.now() - started} ms after the rotation (re-read interval: ${limitMs - 1000} ms)`);
    expect(exit, `the agent's log:\n${(await ctx.agent.log()).slice(-3000)}`).to.equal(1);
    const agentLog = await ctx.agent.log();
    expect(agentLog).to.match(/template server error: error=".*failed writing file: .*no space left on device"/);
    expect(agentLog).to.match(/runtime error encountered: .*no space left on device" exitCode=1/);
    expect(agentLog, 'no template retry before the exit').to.not.match(/retry attempt/);
    expect(await readFile(ctx.agentDir.renderedFile, 'utf8')).to.equal(before);
  });

  it('the service keeps serving the last good secrets, and shows the dead agent as overdue within one renewal period + 1 s', async function () {
    const tookMs = await ctx.timeUntilAgent('overdue', ctx.periodMs + 1000, 'the agent that exited on ENOSPC');
    console.log(`      overdue ${tookMs} ms after the agent's exit (one renewal period: ${ctx.periodMs} ms)`);
    expect(await ctx.overdueGauge()).to.equal(1);
    expect(ctx.log.lines.filter((l) => String(l.msg).startsWith('Vault Agent is overdue'))).to.have.length(1);
    expect(await apiKeysVersion(), 'the last good version, not the one the agent could not write').to.equal(lastGood);
    expect(await statusOf(`http://127.0.0.1:${ctx.service.port}/readyz`), 'serving: the token has not expired').to.equal(200);
  });

  it('restarted while still full (a supervisor\'s immediate restart): exits 1 at once at its sink\'s write check, and stays overdue', async function () {
    await writeFile(join(ctx.agentDir.credentialsDir, 'secret-id'), await wrappedSecretId(ctx.server));
    const started = Date.now();
    ctx.agent = startAgent(ctx.server, ctx.agentDir);
    expect(await ctx.agent.exited).to.equal(1);
    console.log(`      the restarted agent exited (1) ${Date.now() - started} ms after its start`);
    expect(await ctx.agent.log()).to.match(/error creating file sink: error during write check: .*no space left on device/);
    const secretIdLeft = await stat(join(ctx.agentDir.credentialsDir, 'secret-id')).then(() => true, () => false);
    expect(secretIdLeft, 'it exits before its login: the delivered secret id waits for the next start').to.be.true;
    expect((await ctx.status()).agent.state).to.equal('overdue');
    expect(await ctx.overdueGauge()).to.equal(1);
    expect(await apiKeysVersion()).to.equal(lastGood);
  });

  it('space freed, the agent restarted as a supervisor does (the secret id delivered before, still unread): the new version loads, overdue clears', async function () {
    await rm(filler);
    // The secret id delivered for the failed start is still there, unread.
    ctx.agent = startAgent(ctx.server, ctx.agentDir);
    const started = Date.now();
    await ctx.timeUntilAgent('on_time', ctx.durations.tokenTtl, 'the restarted agent');
    while (await apiKeysVersion() !== rotated) {
      if (Date.now() - started > ctx.durations.tokenTtl) throw new Error(`version ${rotated} not loaded within ${ctx.durations.tokenTtl} ms`);
      await new Promise((r) => setTimeout(r, 100));
    }
    console.log(`      version ${rotated} loaded and on time ${Date.now() - started} ms after the restart`);
    expect(await ctx.overdueGauge()).to.equal(0);
    expect(ctx.log.lines.filter((l) => String(l.msg).startsWith('Vault Agent renewed its token again'))).to.have.length(1);
    expect(await statusOf(`http://127.0.0.1:${ctx.service.port}/readyz`)).to.equal(200);
  });
});
