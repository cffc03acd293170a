import { spawn } from 'node:child_process';
import { appendFileSync, closeSync, openSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { Stack, stackPaths } from './stack.js';

/**
 *   npm run stack                  up, in the foreground (Ctrl-C stops it all)
 *   npm run stack -- --detach      up, returning once the service is ready
 *   npm run stack:down             stops exactly what `stack` started
 *
 * The process that brings the stack up stays to supervise it, as compose does: it starts again
 * whatever exits (supervise.ts) until it is told to stop (Ctrl-C, SIGTERM, stack:down). With
 * --detach that process is a detached `cli.ts supervise`, which writes to logs/stack.log.
 */
const [command = 'up', ...flags] = process.argv.slice(2);
const stack = new Stack(stackPaths());

/** Foreground: the terminal, and logs/stack.log, where stack:down reads what the supervisor said. */
function sayBoth(line: string): void {
  console.log(`stack: ${line}`);
  try { appendFileSync(stack.paths.stackLog, `stack: ${line}\n`); } catch { /* no folder yet */ }
}
/** The detached supervisor: its stdout is logs/stack.log. */
function sayOut(line: string): void {
  console.log(`stack: ${line}`);
}

function stopSignal(): Promise<string> {
  return new Promise((resolve) => {
    process.once('SIGINT', () => { resolve('interrupted'); });
    process.once('SIGTERM', () => { resolve('terminated'); });
  });
}

/** Brings the stack up in this process, then supervises it until a signal. */
async function upAndSupervise(say: (line: string) => void, ready: (appUrl: string) => void,
  failed: (message: string) => void): Promise<never> {
  const stopped = stopSignal();
  try {
    const { appUrl } = await stack.up(say);
    stack.supervise(say);
    say(`ready: ${appUrl} (environment for operators: ${stack.paths.env}, logs: ${stack.paths.logs})`);
    ready(appUrl);
  } catch (error) {
    failed((error as Error).message);
    await stack.stopAll(say);
    process.exit(1);
  }
  say(`supervising (pid ${process.pid}): what exits is started again; stop it all with Ctrl-C or "npm run stack:down"`);
  say(`${await stopped}; stopping`);
  await stack.stopAll(say);
  process.exit(0);
}

async function detach(): Promise<void> {
  await stack.prepare();
  const out = openSync(stack.paths.stackLog, 'a');
  const supervisor = spawn(process.execPath, [...process.execArgv, process.argv[1] ?? '', 'supervise'], {
    detached: true, stdio: ['ignore', out, out, 'ipc'],
  });
  closeSync(out);
  const outcome = await new Promise<{ ready?: string; failed?: string }>((resolve) => {
    supervisor.once('message', (message) => { resolve(message as { ready?: string; failed?: string }); });
    supervisor.once('exit', (code) => { resolve({ failed: `the supervisor exited (code ${String(code)})` }); });
  });
  process.stdout.write(await readFile(stack.paths.stackLog, 'utf8'));
  supervisor.disconnect();
  supervisor.unref();
  if (outcome.ready === undefined) {
    // What the supervisor said is above; a supervisor that died without a word said nothing.
    console.error(`stack: not started${outcome.failed?.startsWith('the supervisor exited') === true ? ` (${outcome.failed})` : ''}: see ${stack.paths.stackLog}`);
    process.exit(1);
  }
  sayOut('running in the background; stop it with "npm run stack:down"');
}

if (command === 'up' && flags.includes('--detach')) {
  await detach();
} else if (command === 'up') {
  try {
    await stack.prepare();
  } catch (error) {
    console.error(`stack: ${(error as Error).message}`);
    process.exit(1);
  }
  await upAndSupervise(sayBoth, () => undefined, (failed) => {
    console.error(`stack: ${failed}`);
    try { appendFileSync(stack.paths.stackLog, `stack: ${failed}\n`); } catch { /* no folder */ }
  });
} else if (command === 'supervise') {
  await upAndSupervise(sayOut, (ready) => { process.send?.({ ready }); }, (failed) => {
    sayOut(failed);
    process.send?.({ failed });
  });
} else if (command === 'down') {
  await stack.down(sayOut);
} else {
  console.error('usage: stack.ts up [--detach] | down');
  process.exit(2);
}
