import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, openSync, closeSync } from 'node:fs';
import { chmod, mkdir, readFile, realpath, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { Supervisor } from './supervise.js';
import {
  ensurePostgres, initPostgres, postgresCommand, provisionAppRole, serverUser, superuserEnv, waitForPostgres,
  type PostgresLayout,
} from './postgres.js';
import { freePort } from './ports.js';

const run = promisify(execFile);
export const repoRoot = resolve(import.meta.dirname, '../..');

/**
 * The local stack: the compose topology as processes on loopback, running the same scripts
 * (vault-init's, the database engine's, secret-id-courier's), agent configuration and service
 * build, with the dev sign-in (demo-identity.sh), supervised as compose's restart policies do
 * (supervise.ts). Everything lives in one folder (.stack/ by default, STACK_DIR to move it):
 * logs, data, credentials, the pids it started.
 */
export interface StackPaths {
  readonly root: string;
  /** The agent's folder: credentials/, secrets/ (its token sink and the rendered file), config/. */
  readonly agent: string;
  readonly logs: string;
  /** The supervisor's own log: what it started, restarted and stopped. */
  readonly stackLog: string;
  readonly pids: string;
  readonly env: string;
}

export function stackPaths(root = process.env.STACK_DIR ?? join(repoRoot, '.stack')): StackPaths {
  const logs = join(root, 'logs');
  return { root, agent: join(root, 'agent'), logs, stackLog: join(logs, 'stack.log'), pids: join(root, 'pids.json'), env: join(root, 'stack.env') };
}

/** The process that runs `up` and then supervises: recorded in pids.json under this name. */
export const supervisorName = 'supervisor';

interface Started {
  name: string;
  pid: number;
  /** When the process started, checked again before stopping: a reused pid is never signalled. */
  startedAt: string;
}

/** A process's start time, which with its pid names it uniquely; undefined once it is gone. */
async function startTimeOf(pid: number): Promise<string | undefined> {
  try {
    // Field 22 of /proc/<pid>/stat, counted after the command name (which may hold spaces).
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    try {
      return (await run('ps', ['-o', 'lstart=', '-p', String(pid)])).stdout.trim() || undefined;
    } catch {
      return undefined;
    }
  }
}

/** Every long-running process, as started: how to start it again. */
interface Spec {
  readonly name: string;
  readonly command: string;
  readonly args: string[];
  readonly options: SpawnOptions;
}

interface SpawnOptions {
  env: NodeJS.ProcessEnv;
  cwd?: string;
  user?: { uid: number; gid: number } | undefined;
}

/** The tmpfs mounted at `path`, if any (/proc/mounts; its paths escape spaces and such as octal). */
export async function tmpfsAt(path: string): Promise<boolean> {
  const mounts = await readFile('/proc/mounts', 'utf8').catch(() => '');
  const real = await realpath(path).catch(() => path);
  return mounts.split('\n').some((line) => {
    const [, target, type] = line.split(' ');
    return type === 'tmpfs' && target?.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8))) === real;
  });
}

/**
 * The agent's folder on a tmpfs, as compose's `secrets` and `credentials` volumes: its token
 * and the rendered secrets never touch the disk. Mounting needs root on Linux; elsewhere, or
 * when the mount fails, the folder stays on the persistent filesystem, which the log says once.
 */
export const agentTmpfsOptions = 'size=1m,mode=0700,nosuid,nodev,noexec';

export async function agentFolder(path: string, log: (line: string) => void): Promise<void> {
  await mkdir(path, { mode: 0o700 });
  const where = `${path} is on the persistent filesystem, not a tmpfs`;
  if (process.platform !== 'linux' || process.getuid?.() !== 0) {
    log(`vault-agent  ${where}: mounting one needs root on Linux (here uid ${String(process.getuid?.())} on ${process.platform})`);
    return;
  }
  try {
    await run('mount', ['-t', 'tmpfs', '-o', agentTmpfsOptions, 'tmpfs', path]);
    log(`vault-agent  ${path} is a tmpfs (${agentTmpfsOptions})`);
  } catch (error) {
    log(`vault-agent  ${where}: mount failed (${(error as { stderr?: string }).stderr?.trim() ?? (error as Error).message})`);
  }
}

/** Unmounts the agent's tmpfs, once nothing uses it. */
export async function unmountAgentFolder(path: string, log: (line: string) => void): Promise<void> {
  if (!await tmpfsAt(path)) return;
  try {
    await run('umount', [path]);
    log(`vault-agent  ${path} unmounted`);
  } catch (error) {
    log(`vault-agent  ${path} could not be unmounted: ${(error as { stderr?: string }).stderr?.trim() ?? (error as Error).message}`);
  }
}

async function waitFor(what: string, check: () => Promise<boolean>, child: ChildProcess | undefined, logFile: string,
  timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child !== undefined && child.exitCode !== null) {
      throw new Error(`${what} exited (code ${child.exitCode}) before it was ready: see ${logFile}`);
    }
    if (await check().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${what} was not ready within ${timeoutMs / 1000} s: see ${logFile}`);
}

/** DATABASE_CREDENTIALS from the caller's environment: dynamic unless it says kv, as in docker-compose.yml. */
export function databaseCredentials(env: NodeJS.ProcessEnv = process.env): 'dynamic' | 'kv' {
  const value = env.DATABASE_CREDENTIALS ?? 'dynamic';
  if (value !== 'dynamic' && value !== 'kv') throw new Error(`DATABASE_CREDENTIALS must be dynamic or kv (got '${value}')`);
  return value;
}

async function httpStatus(url: string): Promise<number> {
  const response = await fetch(url, { signal: AbortSignal.timeout(1000) });
  await response.body?.cancel();
  return response.status;
}

export class Stack {
  readonly paths: StackPaths;
  readonly #started: Started[] = [];
  readonly #children = new Map<string, { spec: Spec; child: ChildProcess; startedAtMs: number }>();
  #supervisor: Supervisor | undefined;
  #writing: Promise<void> = Promise.resolve();

  constructor(paths: StackPaths) {
    this.paths = paths;
  }

  /** Before `up`, in the process that runs the CLI: refuses a running stack, then empties the folder. */
  async prepare(): Promise<void> {
    if (await this.#anyAlive()) {
      throw new Error(`a stack is already running (${this.paths.pids}): run "npm run stack:down" first`);
    }
    // A stack that was never taken down (its supervisor killed outright) may have left its tmpfs.
    await unmountAgentFolder(this.paths.agent, () => undefined);
    await rm(this.paths.root, { recursive: true, force: true });
    await mkdir(this.paths.logs, { recursive: true });
    await chmod(this.paths.root, 0o755); // PostgreSQL runs as its own user when the stack runs as root
  }

  /** Brings the whole stack up and resolves once the service answers /readyz 200. */
  async up(log: (line: string) => void): Promise<{ appUrl: string; vaultAddr: string }> {
    const { root } = this.paths;
    const credentials = databaseCredentials();
    // The process running this supervises the others: stack:down signals it first.
    const self = await startTimeOf(process.pid);
    if (self === undefined) throw new Error('cannot read this process\'s start time');
    this.#started.push({ name: supervisorName, pid: process.pid, startedAt: self });
    await this.#record();
    const bao = (await run('sh', [join(repoRoot, 'scripts/install-openbao.sh')])).stdout.trim();
    const dist = join(repoRoot, 'dist/main.js');
    if (!existsSync(dist)) throw new Error(`${dist} is missing: run "npm run build" (npm run stack does)`);

    // The dev server's HOME, where it stores its root token (~/.vault-token), as compose's vault-home.
    const home = join(root, 'home');
    await mkdir(home, { recursive: true, mode: 0o700 });
    const vaultPort = await freePort();
    const vaultAddr = `http://127.0.0.1:${vaultPort}`;
    const vaultEnv = { PATH: process.env.PATH, HOME: home, VAULT_ADDR: vaultAddr };
    // The dev server makes its own root token and keeps it in its HOME: no token on any
    // command line (ps shows every process's arguments to every user).
    const vault = await this.#spawn('vault', bao, ['server', '-dev', `-dev-listen-address=127.0.0.1:${vaultPort}`], { env: vaultEnv });
    await waitFor('vault', async () => await httpStatus(`${vaultAddr}/v1/sys/health`) === 200, vault, this.#log('vault'));
    const tokenFile = join(home, '.vault-token');
    await waitFor('vault', () => Promise.resolve(existsSync(tokenFile)), vault, this.#log('vault'));
    const rootToken = (await readFile(tokenFile, 'utf8')).trim();
    log(`vault        ${vaultAddr}`);

    // vault-init: the script compose's vault-init runs, with bao as the CLI: bootstrap.sh (the
    // role id and a wrapped secret id in credentials/), postgres-credentials.sh (pg-init/) and
    // the orchestrator token secret-id-courier uses (orchestrator/token). It reads the root
    // token where the dev server stored it. credentials/ and orchestrator/ are this user's
    // only (0700, their files 0400), as compose's tmpfs volumes are the vault user's.
    const agentDir = this.paths.agent;
    const credentialsDir = join(agentDir, 'credentials');
    const orchestratorDir = join(root, 'orchestrator');
    const pgInit = join(root, 'pg-init');
    await agentFolder(agentDir, log);
    await mkdir(join(agentDir, 'secrets'), { mode: 0o750 });
    await mkdir(credentialsDir, { mode: 0o700 });
    await mkdir(orchestratorDir, { mode: 0o700 });
    await symlink(join(repoRoot, 'agent-config'), join(agentDir, 'config'));
    const init = await run('sh', [join(repoRoot, 'scripts/compose-vault-init.sh')], {
      env: {
        PATH: process.env.PATH, VAULT_ADDR: vaultAddr, VAULT_CLI: bao, APP_ENV: 'dev',
        VAULT_TOKEN_FILE_PATH: join(home, '.vault-token'), CREDENTIALS_DIR: credentialsDir, PG_INIT_DIR: pgInit,
        ORCHESTRATOR_DIR: orchestratorDir,
      },
    });
    await writeFile(this.#log('vault-init'), init.stdout);
    log('vault-init   bootstrap done');
    const operatorEnv = { ...vaultEnv, VAULT_TOKEN: rootToken, VAULT_CLI: bao, APP_ENV: 'dev' };

    // The sign-in: Vault's own OpenID Connect provider with the demo users (demo-identity.sh,
    // after bootstrap: it writes the client's id and secret to the oidc group, which the agent
    // renders). The provider registers the app's /auth/callback, so the app's port is chosen here.
    const appPort = await freePort();
    const appUrl = `http://127.0.0.1:${appPort}`;
    const redirectUrl = `${appUrl}/auth/callback`;
    const demoUsersDir = join(root, 'demo-users');
    const identity = await run('sh', [join(repoRoot, 'scripts/demo-identity.sh'), 'dev', redirectUrl, demoUsersDir], { env: operatorEnv })
      .catch(async (error: unknown) => {
        const { stdout = '', stderr = '' } = error as { stdout?: string; stderr?: string };
        await writeFile(this.#log('demo-identity'), `${stdout}${stderr}`);
        throw new Error(`demo-identity.sh failed: ${stderr.trim() || (error as Error).message} (see ${this.#log('demo-identity')})`);
      });
    await writeFile(this.#log('demo-identity'), identity.stdout);
    const issuerUrl = `${vaultAddr}/v1/identity/oidc/provider/saas-dev`;
    log(`demo-identity sign-in at ${issuerUrl}: demo users acme and globex (passwords in ${demoUsersDir})`);

    // secret-id-courier: the orchestrator production ships, as compose runs it (a look every
    // 5 s): one wrapped secret id always waiting in credentials/, which the agent removes at
    // each login, so an agent the supervisor starts again logs in at once.
    await this.#spawn('secret-id-courier', 'sh', [
      join(repoRoot, 'scripts/prod/deliver-secret-ids.sh'), credentialsDir, join(orchestratorDir, 'token'),
    ], { env: { PATH: process.env.PATH, VAULT_ADDR: vaultAddr, VAULT_CLI: bao, APP_ENV: 'dev', DELIVERY_INTERVAL: '5s' } });
    log(`secret-id-courier keeps a wrapped secret id waiting in ${credentialsDir}`);

    const layout: PostgresLayout = {
      bindir: await ensurePostgres(), dataDir: join(root, 'postgres/data'), socketDir: join(root, 'postgres/socket'),
      port: await freePort(),
    };
    await initPostgres(layout);
    const pg = postgresCommand(layout);
    const postgres = await this.#spawn('postgres', pg.command, pg.args, { env: { PATH: process.env.PATH }, user: await serverUser() });
    await waitFor('postgres', async () => { await waitForPostgres(layout, 1000); return true; }, postgres, this.#log('postgres'));
    await provisionAppRole(layout, pgInit);
    log(`postgres     127.0.0.1:${layout.port}`);

    // vault-db-init: the database engine issues the app's users (dynamic, the default), or the
    // app keeps the KV user (DATABASE_CREDENTIALS=kv), as in docker-compose.yml.
    if (credentials === 'dynamic') {
      const adminPassword = join(pgInit, 'vault-admin-password');
      const engine = await run('sh', [join(repoRoot, 'scripts/database-engine.sh'), 'dev'], {
        env: { ...operatorEnv, DATABASE_ADDRESS: `127.0.0.1:${layout.port}`, DATABASE_ADMIN_PASSWORD_FILE: adminPassword },
      });
      await writeFile(this.#log('vault-db-init'), engine.stdout);
      // Vault rotated it: the file now holds nothing anyone can use, and goes.
      await rm(adminPassword, { force: true });
      log('vault-db-init database engine ready (database/creds/saas-app-dev)');
    }

    const agent = await this.#spawn('vault-agent', bao, ['agent', '-config=config/agent.hcl', '-config=config/env/dev.hcl'],
      { cwd: agentDir, env: { PATH: process.env.PATH, HOME: home, VAULT_ADDR: vaultAddr, APP_ENV: 'dev', DATABASE_CREDENTIALS: credentials } });
    const rendered = join(agentDir, 'secrets/app.json');
    await waitFor('vault-agent', () => Promise.resolve(existsSync(rendered)), agent, this.#log('vault-agent'));
    log('vault-agent  rendered secrets/app.json');

    // The app's environment, as in docker-compose.yml: addresses, paths, mode; no secret.
    const adminPort = await freePort();
    const adminUrl = `http://127.0.0.1:${adminPort}`;
    const app = await this.#spawn('app', process.execPath, [dist], {
      cwd: repoRoot,
      env: {
        PATH: process.env.PATH, NODE_ENV: 'production', SECRETS_MODE: 'agent', APP_ENV: 'dev', DATABASE_CREDENTIALS: credentials,
        PORT: String(appPort),
        ADMIN_PORT: String(adminPort),
        VAULT_ADDR: vaultAddr, SECRETS_FILE: rendered, VAULT_TOKEN_FILE: join(agentDir, 'secrets/token'),
        DATABASE_HOST: '127.0.0.1', DATABASE_PORT: String(layout.port), DATABASE_NAME: 'saas',
        OIDC_ISSUER_URL: issuerUrl, OIDC_REDIRECT_URL: redirectUrl,
      },
    });
    await waitFor('app', async () => await httpStatus(`${appUrl}/readyz`) === 200, app, this.#log('app'));

    const pgEnv = superuserEnv(layout);
    await writeFile(this.paths.env, [
      '# Written by the local stack. For the operator only: VAULT_TOKEN is the dev root token.',
      `VAULT_ADDR=${vaultAddr}`, `VAULT_TOKEN=${rootToken}`, `VAULT_CLI=${bao}`, `APP_URL=${appUrl}`, `ADMIN_URL=${adminUrl}`, 'APP_ENV=dev', `DATABASE_CREDENTIALS=${credentials}`,
      `DEMO_USERS_DIR=${demoUsersDir}`,
      `PGHOST=${String(pgEnv.PGHOST)}`, `PGPORT=${String(pgEnv.PGPORT)}`, 'PGUSER=postgres', '',
    ].join('\n'), { mode: 0o600 });
    log(`app          ${appUrl}`);
    log(`admin        ${adminUrl}  (GET /status, GET /metrics)`);
    return { appUrl, vaultAddr };
  }

  /**
   * From here on, a process that exits is started again (supervise.ts: bounded backoff, a
   * bounded count per window), until stopAll(). One that exited during `up` counts too.
   */
  supervise(log: (line: string) => void): void {
    const supervisor = new Supervisor(log);
    this.#supervisor = supervisor;
    for (const { spec, child, startedAtMs } of this.#children.values()) {
      supervisor.watch(spec.name, child, () => this.#restart(spec), startedAtMs);
    }
  }

  /**
   * In the supervisor (or with none left): no more restarts, then stops exactly the processes
   * pids.json names, newest first, each only if it still has the start time recorded.
   */
  async stopAll(log: (line: string) => void): Promise<void> {
    await this.#supervisor?.stop();
    await this.#writing;
    // The supervisor knows what it started; another process reads it from pids.json.
    const recorded = this.#started.length > 0 ? [...this.#started] : await this.#recorded();
    for (const started of recorded.reverse()) {
      if (started.name === supervisorName) continue;
      if (await startTimeOf(started.pid) !== started.startedAt) {
        log(`${started.name.padEnd(12)} not running`);
        continue;
      }
      await stopPid(started.pid);
      log(`${started.name.padEnd(12)} stopped (pid ${started.pid})`);
    }
    await unmountAgentFolder(this.paths.agent, log);
    await rm(this.paths.pids, { force: true });
  }

  /**
   * `stack:down`, from another process: stops the supervisor first (which stops what it
   * started, restarted ones included, and writes so in logs/stack.log, relayed here), then
   * whatever pids.json still names (a supervisor killed outright leaves its processes there).
   */
  async down(log: (line: string) => void): Promise<void> {
    const supervisor = (await this.#recorded()).find((started) => started.name === supervisorName);
    if (supervisor !== undefined && supervisor.pid !== process.pid && await startTimeOf(supervisor.pid) === supervisor.startedAt) {
      const from = await stat(this.paths.stackLog).then((s) => s.size, () => 0);
      await stopPid(supervisor.pid, 90_000);
      const said = await readFile(this.paths.stackLog).then((b) => b.subarray(from).toString('utf8'), () => '');
      for (const line of said.split('\n')) if (line.startsWith('stack: ')) log(line.slice('stack: '.length));
      log(`${supervisorName.padEnd(12)} stopped (pid ${supervisor.pid})`);
    }
    await this.stopAll(log);
  }

  #log(name: string): string {
    return join(this.paths.logs, `${name}.log`);
  }

  async #spawn(name: string, command: string, args: string[], options: SpawnOptions): Promise<ChildProcess> {
    const spec = { name, command, args, options };
    const { child, started } = await this.#start(spec);
    this.#started.push(started);
    await this.#record();
    return child;
  }

  /** Starts a supervised process again, as it was first started, and records its new pid in place of the old one. */
  async #restart(spec: Spec): Promise<ChildProcess> {
    const at = this.#started.findIndex((started) => started.name === spec.name);
    const old = this.#started[at];
    // What it left in its process group (PostgreSQL's backends after a SIGKILL): gone first.
    if (old !== undefined) killGroup(old.pid);
    const { child, started } = await this.#start(spec);
    this.#started.splice(at, 1, started);
    await this.#record();
    return child;
  }

  async #start(spec: Spec): Promise<{ child: ChildProcess; started: Started }> {
    const { name, command, args, options } = spec;
    const out = openSync(this.#log(name), 'a');
    // Its own process group: a Ctrl-C in the terminal reaches the CLI, which stops them in order.
    const child = spawn(command, args, { cwd: options.cwd ?? '/', env: options.env, detached: true, stdio: ['ignore', out, out], ...options.user });
    closeSync(out);
    const startedAtMs = Date.now();
    if (child.pid === undefined) throw new Error(`${name} could not be started (${command})`);
    const startedAt = await startTimeOf(child.pid);
    if (startedAt === undefined) throw new Error(`${name} exited at once (${command}): see ${this.#log(name)}`);
    this.#children.set(name, { spec, child, startedAtMs });
    return { child, started: { name, pid: child.pid, startedAt } };
  }

  /** pids.json, rewritten one write after the other. */
  #record(): Promise<void> {
    const text = JSON.stringify(this.#started, null, 2);
    this.#writing = this.#writing.then(() => writeFile(this.paths.pids, text));
    return this.#writing;
  }

  async #recorded(): Promise<Started[]> {
    try {
      return JSON.parse(await readFile(this.paths.pids, 'utf8')) as Started[];
    } catch {
      return [];
    }
  }

  async #anyAlive(): Promise<boolean> {
    for (const process of await this.#recorded()) {
      if (await startTimeOf(process.pid) === process.startedAt) return true;
    }
    return false;
  }
}

/** SIGKILL to what is left of a process group (the stack starts each process as the leader of its own). */
function killGroup(pid: number): void {
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    // Nothing left.
  }
}

/** SIGTERM, then SIGKILL after `graceMs`; then whatever it left in its process group (a shell's sleep). */
async function stopPid(pid: number, graceMs = 10_000): Promise<void> {
  const alive = () => { try { process.kill(pid, 0); return true; } catch { return false; } };
  process.kill(pid, 'SIGTERM');
  const deadline = Date.now() + graceMs;
  while (alive() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  if (alive()) process.kill(pid, 'SIGKILL');
  // Until it is reaped (a zombie still answers signal 0), for at most 5 s more.
  const reaped = Date.now() + 5000;
  while (alive() && Date.now() < reaped) await new Promise((r) => setTimeout(r, 20));
  killGroup(pid);
}
