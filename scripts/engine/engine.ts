import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, open, readFile, readdir, readlink, rm, stat, statfs, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { userInfo } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

/*
 * The project's own Docker Engine (npm run engine:start / engine:stop): Debian's dockerd with
 * its own socket, exec root and data root, so it never touches (or needs) a system Docker.
 *
 *   .engine/ (git-ignored)   docker.sock, dockerd.pid, engine.env, logs/
 *   exec root                /run/saas-vault-engine/<hash of the clone's path>: runtime state
 *                            and containerd's sockets, whose paths must stay under 108 bytes
 *                            whatever the clone's path, and which nothing else may read
 *   data root                ENGINE_DATA_ROOT, default /var/lib/saas-vault-secrets/engine (or
 *                            ~/.cache/... when not root): images and volumes, outside the clone
 *                            so that a fresh clone on the same machine (CI) reuses the images
 *                            built from the same inputs (their tags are content hashes)
 *
 * Only one dockerd may use a data root at a time; a second clone finding it in use fails with
 * one line naming the process, rather than corrupting it.
 */

export const repoRoot = resolve(import.meta.dirname, '../..');

export class EngineError extends Error {
  override name = 'EngineError';
}
/** No engine can run here at all (not root, no sudo): tests skip with this line, outside CI. */
export class EngineUnavailable extends EngineError {
  override name = 'EngineUnavailable';
}

export interface EnginePaths {
  readonly dir: string;
  readonly socket: string;
  readonly pidFile: string;
  readonly envFile: string;
  readonly logs: string;
  readonly execRoot: string;
  readonly dataRoot: string;
}

/** ENGINE_DIR moves .engine/ (a second, separate engine: the fault tests use one). */
export function enginePaths(root = repoRoot): EnginePaths {
  const dir = process.env.ENGINE_DIR ?? join(root, '.engine');
  const key = createHash('sha256').update(dir).digest('hex').slice(0, 12);
  const home = userInfo().homedir;
  const defaultData = userInfo().uid === 0
    ? '/var/lib/saas-vault-secrets/engine'
    : join(process.env.XDG_CACHE_HOME ?? join(home, '.cache'), 'saas-vault-secrets/engine');
  return {
    dir,
    socket: join(dir, 'docker.sock'),
    pidFile: join(dir, 'dockerd.pid'),
    envFile: join(dir, 'engine.env'),
    logs: join(dir, 'logs'),
    execRoot: `/run/saas-vault-engine/${key}`,
    dataRoot: process.env.ENGINE_DATA_ROOT ?? defaultData,
  };
}

export interface RunResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs a command to its end; never throws for a non-zero exit (the caller names the cause). */
export function run(command: string, args: readonly string[], options: {
  env?: NodeJS.ProcessEnv; input?: string; cwd?: string; logFile?: string;
} = {}): Promise<RunResult> {
  return new Promise((resolvePromise) => {
    const child = spawn(command, args, {
      env: options.env ?? process.env,
      cwd: options.cwd ?? repoRoot,
      stdio: [options.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout?.on('data', (chunk: Buffer) => out.push(chunk));
    child.stderr?.on('data', (chunk: Buffer) => err.push(chunk));
    child.on('error', (error) => {
      resolvePromise({ code: 127, stdout: '', stderr: `${command}: ${error.message}` });
    });
    child.on('close', (code) => {
      const result = { code: code ?? 1, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() };
      const done = () => { resolvePromise(result); };
      if (options.logFile === undefined) done();
      else {
        writeFile(options.logFile, `$ ${command} ${args.join(' ')}\n${result.stdout}${result.stderr}`, { flag: 'a' })
          .then(done, done);
      }
    });
    if (options.input !== undefined) {
      child.stdin?.on('error', () => undefined);
      child.stdin?.end(options.input);
    }
  });
}

const isRoot = () => userInfo().uid === 0;

/** How privileged commands run: directly as root, through passwordless sudo, or not at all. */
export async function privilege(): Promise<readonly string[]> {
  if (isRoot()) return [];
  const sudo = await run('sudo', ['-n', 'true']);
  if (sudo.code === 0) return ['sudo', '-n'];
  throw new EngineUnavailable('no Docker engine can run here: not root, and sudo needs a password (or is missing)');
}

async function privileged(prefix: readonly string[], command: string, args: readonly string[], logFile?: string): Promise<RunResult> {
  const [head, ...rest] = [...prefix, command, ...args];
  return run(head ?? command, rest, logFile === undefined ? {} : { logFile });
}

async function onPath(name: string): Promise<boolean> {
  return (await run('sh', ['-c', `command -v ${name}`])).code === 0;
}

const enginePackages: readonly (readonly [string, string])[] = [['dockerd', 'docker.io'], ['docker', 'docker.io'], ['docker-compose', 'docker-compose'], ['debootstrap', 'debootstrap']];

/** Debian's packages providing commands (by default the engine's: dockerd, docker-compose, debootstrap), installed when missing. */
export async function ensurePackages(prefix: readonly string[], say: (line: string) => void, logFile: string,
  wanted: readonly (readonly [command: string, pkg: string])[] = enginePackages): Promise<void> {
  const missing = [...new Set((await Promise.all(wanted.map(async ([bin, pkg]) => (await onPath(bin)) ? undefined : pkg)))
    .filter((pkg): pkg is string => pkg !== undefined))];
  if (missing.length === 0) return;
  say(`installing ${missing.join(', ')} from Debian's packages`);
  const env = ['env', 'DEBIAN_FRONTEND=noninteractive'];
  const update = await privileged(prefix, env[0] ?? 'env', [...env.slice(1), 'apt-get', 'update', '-q'], logFile);
  const install = update.code === 0
    ? await privileged(prefix, 'env', [...env.slice(1), 'apt-get', 'install', '-y', '-q', '--no-install-recommends', ...missing], logFile)
    : update;
  if (install.code !== 0) {
    const cause = /(?:Failed to fetch|Could not resolve|Unable to locate package|E:)\s*(.*)/.exec(install.stderr)?.[1] ?? `exit ${install.code}`;
    throw new EngineError(`cannot install ${missing.join(', ')} with apt-get: ${cause.trim()} (log: ${logFile})`);
  }
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(() => true, () => false);
}

/** The pid a pid file holds, if it holds one. */
export async function readPid(file: string): Promise<number | undefined> {
  const text = await readFile(file, 'utf8').catch(() => '');
  const pid = Number(text.trim());
  return Number.isInteger(pid) && pid > 0 ? pid : undefined;
}

/** A process's arguments; undefined once it is gone. */
export async function cmdline(pid: number): Promise<string[] | undefined> {
  const text = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => undefined);
  return text?.split('\0').filter((arg) => arg !== '');
}

/** A dockerd other than ours using the same data root (or socket): its pid, else undefined. */
async function dockerdUsing(flag: '--data-root' | '-H', value: string, except?: number): Promise<number | undefined> {
  for (const entry of await readdir('/proc').catch(() => [])) {
    const pid = Number(entry);
    if (!Number.isInteger(pid) || pid === except) continue;
    const args = await cmdline(pid);
    if (args === undefined) continue;
    const exe = await readlink(`/proc/${pid}/exe`).catch(() => args[0] ?? '');
    if (!exe.endsWith('dockerd')) continue;
    const at = args.indexOf(flag);
    if (at !== -1 && args[at + 1] === value) return pid;
  }
  return undefined;
}

export function dockerEnv(paths: EnginePaths, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  // The legacy builder: BuildKit would try to pull its frontend and no registry is reachable.
  return { ...process.env, DOCKER_HOST: `unix://${paths.socket}`, DOCKER_BUILDKIT: '0', COMPOSE_DOCKER_CLI_BUILD: '0', ...extra };
}

export async function engineAnswers(paths: EnginePaths): Promise<boolean> {
  if (!await exists(paths.socket)) return false;
  const version = await run('docker', ['version', '--format', '{{.Server.Version}}'], { env: dockerEnv(paths) });
  return version.code === 0;
}

/** Our dockerd's pid when it is running: the pid file's process, started on our socket. */
export async function runningEngine(paths: EnginePaths): Promise<number | undefined> {
  const pid = await readPid(paths.pidFile);
  if (pid === undefined) return undefined;
  const args = await cmdline(pid);
  if (args === undefined) return undefined;
  return args.includes(`unix://${paths.socket}`) ? pid : undefined;
}

function accepts(socket: string): Promise<boolean> {
  return new Promise((resolvePromise) => {
    const connection = connect(socket);
    connection.once('connect', () => { connection.destroy(); resolvePromise(true); });
    connection.once('error', () => { resolvePromise(false); });
  });
}

const minFreeBytes = Number(process.env.ENGINE_MIN_FREE_MB ?? 4096) * 1024 * 1024;

async function checkFreeSpace(path: string): Promise<void> {
  let at = path;
  while (!await exists(at) && dirname(at) !== at) at = dirname(at);
  const fs = await statfs(at);
  const free = fs.bavail * fs.bsize;
  if (free < minFreeBytes) {
    throw new EngineError(`disk full: ${Math.floor(free / 1048576)} MB free under ${at}, the engine needs ${minFreeBytes / 1048576} MB (ENGINE_DATA_ROOT, ENGINE_MIN_FREE_MB)`);
  }
}

/** The line of dockerd's log that says why it stopped, if it wrote one. */
async function dockerdFailure(logFile: string): Promise<string> {
  const log = await readFile(logFile, 'utf8').catch(() => '');
  const lines = log.split('\n').filter((l) => /level=(fatal|error)|failed to start|address already in use|no space left/i.test(l));
  const last = lines.at(-1) ?? log.trim().split('\n').at(-1) ?? 'no log';
  return /msg="([^"]*)"/.exec(last)?.[1] ?? last.trim();
}

export interface StartedEngine {
  readonly paths: EnginePaths;
  readonly env: NodeJS.ProcessEnv;
  /** false when an engine of this clone was running already (it is left running at stop-by-tests). */
  readonly startedNow: boolean;
  readonly prefix: readonly string[];
}

/** Starts the project's dockerd, or reuses the one running; throws one line naming the cause. */
export async function startEngine(say: (line: string) => void = () => undefined, paths = enginePaths()): Promise<StartedEngine> {
  const prefix = await privilege();
  await mkdir(paths.logs, { recursive: true, mode: 0o700 });
  if (await runningEngine(paths) !== undefined && await engineAnswers(paths)) {
    return { paths, env: dockerEnv(paths), startedNow: false, prefix };
  }
  await ensurePackages(prefix, say, join(paths.logs, 'apt.log'));
  if (Buffer.byteLength(paths.socket) > 100) {
    throw new EngineError(`the socket path ${paths.socket} is longer than a unix socket allows (100 bytes): clone the repository to a shorter path`);
  }
  const other = await dockerdUsing('-H', `unix://${paths.socket}`);
  if (other !== undefined) throw new EngineError(`socket taken: dockerd pid ${other} already listens on ${paths.socket}`);
  if (await exists(paths.socket)) {
    // A socket nobody of ours owns: another program's (it accepts a connection), or a stale
    // one left by a killed dockerd (refused), which is removed.
    if (await accepts(paths.socket)) throw new EngineError(`socket taken: another program listens on ${paths.socket}`);
    await rm(paths.socket, { force: true });
  }
  const holder = await dockerdUsing('--data-root', paths.dataRoot);
  if (holder !== undefined) {
    throw new EngineError(`data root in use: dockerd pid ${holder} already runs on ${paths.dataRoot} (stop it, or set ENGINE_DATA_ROOT)`);
  }
  await checkFreeSpace(paths.dataRoot);
  const driver = process.env.ENGINE_STORAGE_DRIVER;
  for (const storage of driver === undefined ? ['overlay2', 'vfs'] : [driver]) {
    const started = await spawnDockerd(paths, prefix, storage);
    if (started === 'ready') {
      say(`engine started (dockerd, storage ${storage}) on ${paths.socket}, data root ${paths.dataRoot}`);
      return { paths, env: dockerEnv(paths), startedNow: true, prefix };
    }
    // overlay2 needs a kernel and a filesystem that support it; vfs works everywhere, slower.
    if (!/driver not supported|overlay/i.test(started)) throw new EngineError(`dockerd did not start: ${started} (log: ${join(paths.logs, 'dockerd.log')})`);
  }
  throw new EngineError(`dockerd did not start with any storage driver (log: ${join(paths.logs, 'dockerd.log')})`);
}

/** 'ready', or why dockerd did not start. */
async function spawnDockerd(paths: EnginePaths, prefix: readonly string[], storage: string): Promise<string> {
  const logFile = join(paths.logs, 'dockerd.log');
  await privileged(prefix, 'mkdir', ['-p', '-m', '0700', paths.execRoot, paths.dataRoot]);
  const args = [
    '--storage-driver', storage,
    // No iptables and no default bridge: this engine must not touch the host's firewall or
    // networks. Compose's own bridge networks still work, and published ports go through
    // docker-proxy, on loopback only in the compose files.
    '--iptables=false', '--ip6tables=false', '--bridge=none',
    '--data-root', paths.dataRoot, '--exec-root', paths.execRoot,
    '-H', `unix://${paths.socket}`, '--pidfile', paths.pidFile,
    ...(isRoot() ? [] : ['--group', String(userInfo().gid)]),
  ];
  const log = await open(logFile, 'a');
  const [head, ...rest] = [...prefix, 'dockerd', ...args];
  const child = spawn(head ?? 'dockerd', rest, { detached: true, stdio: ['ignore', log.fd, log.fd] });
  let exited: number | null | undefined;
  child.on('exit', (code) => { exited = code; });
  child.on('error', () => { exited = 127; });
  child.unref();
  await log.close();
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    if (exited !== undefined) return dockerdFailure(logFile);
    if (await engineAnswers(paths)) return 'ready';
    await sleep(250);
  }
  await stopDockerd(paths, prefix);
  return `no answer on ${paths.socket} within 60 s`;
}

async function stopDockerd(paths: EnginePaths, prefix: readonly string[]): Promise<boolean> {
  const pid = await runningEngine(paths);
  if (pid === undefined) return false;
  await privileged(prefix, 'kill', ['-TERM', String(pid)]);
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline && await cmdline(pid) !== undefined) await sleep(200);
  if (await cmdline(pid) !== undefined) await privileged(prefix, 'kill', ['-KILL', String(pid)]);
  await rm(paths.pidFile, { force: true });
  await rm(paths.socket, { force: true });
  // dockerd leaves its exec root behind, with its default network namespace still mounted
  // there (netns/default): unmount what is left under it, then remove it.
  const mounts = (await readFile('/proc/mounts', 'utf8').catch(() => '')).split('\n')
    .map((line) => line.split(' ')[1] ?? '').filter((point) => point.startsWith(`${paths.execRoot}/`));
  for (const point of mounts.reverse()) await privileged(prefix, 'umount', ['-l', point]);
  await privileged(prefix, 'rm', ['-rf', '--one-file-system', paths.execRoot]);
  return true;
}

/**
 * Removes every container and user network of the project's engine, then stops that dockerd
 * (only the one whose pid file and socket are this clone's). Volumes stay: production's Raft
 * data must survive an engine restart, and `docker-compose down -v` is how they go.
 */
export async function stopEngine(say: (line: string) => void = () => undefined, paths = enginePaths()): Promise<void> {
  const pid = await runningEngine(paths);
  await rm(paths.envFile, { force: true });
  if (pid === undefined) {
    say('no engine of this clone is running');
    return;
  }
  const prefix = await privilege().catch(() => [] as const);
  const env = dockerEnv(paths);
  if (await engineAnswers(paths)) {
    const ids = (await run('docker', ['ps', '-aq'], { env })).stdout.split('\n').filter((id) => id !== '');
    if (ids.length > 0) await run('docker', ['rm', '-f', '-v', ...ids], { env });
    await run('docker', ['network', 'prune', '-f'], { env });
    say(`removed ${ids.length} container(s) and the project's networks`);
  }
  await stopDockerd(paths, prefix);
  say(`engine stopped (dockerd pid ${pid})`);
}
