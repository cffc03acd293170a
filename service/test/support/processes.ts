import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { readFile } from 'node:fs/promises';

/**
 * Child processes the tests start (servers, agents, the service). Every one is tracked so
 * the root hook can stop whatever a failing test left behind, and so the process's own
 * exit kills the rest: a test run never leaves a server listening.
 */
export interface ManagedProcess {
  readonly child: ChildProcess;
  readonly logFile: string;
  /** Resolves with the exit code (or the signal's name) once the process has ended. */
  readonly exited: Promise<number | string>;
  stop(signal?: NodeJS.Signals): Promise<number | string>;
  log(): Promise<string>;
}

const running = new Set<ManagedProcess>();

export interface SpawnOptions {
  env: NodeJS.ProcessEnv;
  logFile: string;
  cwd?: string;
  /** Run as another user (the tests run as root on CI; PostgreSQL refuses root). */
  user?: { uid: number; gid: number } | undefined;
}

export function spawnManaged(command: string, args: readonly string[], options: SpawnOptions): ManagedProcess {
  const log = createWriteStream(options.logFile, { flags: 'a' });
  const child = spawn(command, args, {
    env: options.env,
    cwd: options.cwd,
    stdio: ['ignore', 'pipe', 'pipe'],
    ...options.user,
  });
  child.stdout.pipe(log, { end: false });
  child.stderr.pipe(log, { end: false });
  // Settles once the process has ended and everything it printed is in the log file.
  const exited = new Promise<number | string>((resolve) => {
    child.once('close', (code, signal) => {
      running.delete(managed);
      log.end(() => { resolve(code ?? signal ?? 'unknown'); });
    });
    child.once('error', (error) => {
      running.delete(managed);
      log.end(`\nspawn failed: ${error.message}\n`, () => { resolve('spawn-error'); });
    });
  });
  const managed: ManagedProcess = {
    child,
    logFile: options.logFile,
    exited,
    async stop(signal = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill(signal);
        const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
        await exited;
        clearTimeout(timer);
      }
      return exited;
    },
    async log() {
      // Flush what the stream holds so the caller reads the whole story so far. An empty write's
      // callback runs once everything before it is written ('drain' fires only after a write
      // that returned false, so waiting for it could wait forever).
      if (log.writableLength > 0 && !log.writableEnded) await new Promise<void>((resolve) => { log.write('', () => { resolve(); }); });
      // The stream opens its file at its first write: nothing written yet reads as nothing.
      return readFile(options.logFile, 'utf8').catch((error: unknown) => {
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') return '';
        throw error;
      });
    },
  };
  running.add(managed);
  return managed;
}

export async function stopAll(): Promise<void> {
  await Promise.all([...running].map((p) => p.stop()));
}

function killAll(): void {
  for (const p of running) p.child.kill('SIGKILL');
}
process.once('exit', killAll);
// An interrupted run (Ctrl-C, a CI timeout) does not fire 'exit' by itself.
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    killAll();
    process.exit(130);
  });
}
