import { spawn, type ChildProcess } from 'node:child_process';
import { open, readFile, readlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { run } from '../engine/engine.js';
import { killNetworkNamespace } from './netns.js';
import type { ClusterPaths } from './paths.js';

/*
 * The processes one namespace's supervisor runs (inside.ts for the control plane and the first
 * node, node.ts for each other node). A component that exits stops them all, with one line in
 * run/failure naming it; the stop ends them in reverse order, then every process left in the
 * namespace (containerd's shims). Whatever else goes wrong in the supervisor ends it the same way.
 */
export interface Components {
  /**
   * `stop`: how the stop ends it, when not by SIGTERM to the process started (then it waits for
   * its exit). `alone`: whether its exit was asked for by itself (a node stopped alone), which
   * then stops nothing else.
   */
  start(name: string, command: string, args: readonly string[], stop?: () => Promise<void>, alone?: () => Promise<boolean>): Promise<void>;
  /** Asks `check` every 250 ms; fails the namespace after `seconds`. */
  until(what: string, seconds: number, check: () => Promise<boolean>): Promise<void>;
  /** Runs a command that must succeed, or fails the namespace with its stderr. */
  must(command: string, args: readonly string[]): Promise<void>;
  fail(line: string): Promise<never>;
}

export function superviseComponents(paths: ClusterPaths): Components {
  const children: { name: string; child: ChildProcess; stop?: () => Promise<void> }[] = [];
  let stopping = false;

  const lastError = async (name: string): Promise<string> => {
    const log = await readFile(join(paths.logs, `${name}.log`), 'utf8').catch(() => '');
    const lines = log.split('\n').filter((l) => /^E\d{4}|^F\d{4}|level=(fatal|error)|"level":"(fatal|error)"|error:|Error:/i.test(l));
    return (lines.at(-1) ?? log.trim().split('\n').at(-1) ?? 'no log').slice(0, 400);
  };

  const stopChild = async ({ child, stop }: { child: ChildProcess; stop?: () => Promise<void> }, graceMs: number): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolvePromise) => { child.once('exit', () => { resolvePromise(); }); });
    if (stop === undefined) child.kill('SIGTERM');
    else await stop().catch(() => undefined);
    if (await Promise.race([exited.then(() => true), sleep(graceMs).then(() => false)])) return;
    child.kill('SIGKILL');
    await exited;
  };

  const stopAll = async (): Promise<void> => {
    if (stopping) return;
    stopping = true;
    for (const entry of [...children].reverse()) await stopChild(entry, 10_000);
    await killNetworkNamespace(await readlink('/proc/self/ns/net'), [process.pid, process.ppid]);
  };

  const fail = async (line: string): Promise<never> => {
    // The first failure is the cause; what stops after it only follows.
    if (await readFile(paths.failure, 'utf8').catch(() => '') === '') await writeFile(paths.failure, `${line}\n`);
    await stopAll();
    process.exit(1);
  };

  process.on('uncaughtException', (error) => { void fail(`the cluster's namespace could not be set up: ${error.message}`); });
  process.on('unhandledRejection', (error) => {
    void fail(`the cluster's namespace could not be set up: ${error instanceof Error ? error.message : String(error)}`);
  });
  process.on('SIGTERM', () => { void stopAll().then(() => process.exit(0)); });
  process.on('SIGINT', () => { void stopAll().then(() => process.exit(0)); });

  return {
    fail,
    async start(name, command, args, stop, alone) {
      const log = await open(join(paths.logs, `${name}.log`), 'a');
      const child = spawn(command, args, { stdio: ['ignore', log.fd, log.fd] });
      await log.close();
      children.push({ name, child, ...(stop === undefined ? {} : { stop }) });
      child.on('error', (error) => { void fail(`${name} could not start: ${error.message}`); });
      child.on('exit', (code, signal) => {
        if (stopping) return;
        void (async () => {
          if (await alone?.().catch(() => false) === true) {
            console.log(`${name} stopped alone (${signal ?? `code ${code}`}); the rest runs on`);
            return;
          }
          const why = await lastError(name);
          await fail(`${name} exited (${signal ?? `code ${code}`}): ${why} (log: ${join(paths.logs, `${name}.log`)})`);
        })();
      });
    },
    async until(what, seconds, check) {
      const deadline = Date.now() + seconds * 1000;
      while (Date.now() < deadline) {
        if (await check().catch(() => false)) return;
        await sleep(250);
      }
      await fail(`${what} within ${seconds} s`);
    },
    async must(command, args) {
      const result = await run(command, args);
      if (result.code !== 0) await fail(`${command} ${args.join(' ')}: ${result.stderr.trim()}`);
    },
  };
}
