import { mkdir, stat, symlink } from 'node:fs/promises';
import { join } from 'node:path';
import { serverBin, baoEnv, repoRoot, type DevServer } from './bao.js';
import { runBootstrap } from './bootstrap.js';
import { spawnManaged, type ManagedProcess } from './processes.js';
import { tempDir } from './temp-dirs.js';

/**
 * A working directory laid out as agent-config/agent.hcl expects (config/, credentials/,
 * secrets/), with credentials from the real bootstrap script.
 */
export interface AgentDir {
  readonly dir: string;
  readonly credentialsDir: string;
  readonly secretsDir: string;
  readonly renderedFile: string;
  readonly tokenFile: string;
}

export async function prepareAgentDir(
  server: Pick<DevServer, 'addr' | 'rootToken' | 'dir'>,
  appEnv = 'dev',
  bootstrapEnv: NodeJS.ProcessEnv = {},
  /** The project whose agent-config and bootstrap to use: a copy (support/project-copy.ts), or this one. */
  project = repoRoot,
): Promise<AgentDir> {
  const dir = await tempDir('agent');
  const credentialsDir = join(dir, 'credentials');
  const secretsDir = join(dir, 'secrets');
  await symlink(join(project, 'agent-config'), join(dir, 'config'));
  await mkdir(secretsDir, { mode: 0o750 });
  const run = await runBootstrap(server, appEnv, credentialsDir, bootstrapEnv, join(project, 'scripts/bootstrap.sh'));
  if (run.code !== 0) throw new Error(`bootstrap failed (${run.code}): ${run.stderr}`);
  return { dir, credentialsDir, secretsDir, renderedFile: join(secretsDir, 'app.json'), tokenFile: join(secretsDir, 'token') };
}

/** Added after the shipped configuration: retries in seconds, for the tests of the agent's loud failures. */
export const fastExitConfig = join(repoRoot, 'service/test/support/agent-config/fast-exit.hcl');

/**
 * `bao agent` with the repository's agent-config, unchanged, for `appEnv`'s env file.
 * `extraEnv` adds to its environment (VAULT_CACERT for a TLS server); `extraConfigs` are
 * further configuration files, read last.
 */
export function startAgent(
  server: Pick<DevServer, 'addr'>,
  agentDir: AgentDir,
  appEnv = 'dev',
  templateEnv = appEnv,
  extraEnv: NodeJS.ProcessEnv = {},
  extraConfigs: readonly string[] = [],
): ManagedProcess {
  return spawnManaged(
    serverBin,
    ['agent', '-config=config/agent.hcl', `-config=config/env/${appEnv}.hcl`, ...extraConfigs.map((file) => `-config=${file}`)],
    {
      cwd: agentDir.dir,
      env: baoEnv(agentDir.dir, { VAULT_ADDR: server.addr, APP_ENV: templateEnv, ...extraEnv }),
      logFile: join(agentDir.dir, 'agent.log'),
    },
  );
}

export async function waitForFile(path: string, proc: ManagedProcess, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await stat(path).then(() => true, () => false)) return;
    if (proc.child.exitCode !== null) throw new Error(`agent exited before ${path} appeared:\n${await proc.log()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${path} did not appear within ${timeoutMs} ms:\n${await proc.log()}`);
}
