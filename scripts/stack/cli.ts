import { Stack, stackPaths } from './stack.js';

/**
 *   npm run stack                  up, in the foreground (Ctrl-C stops it all)
 *   npm run stack -- --detach      up, returning once the service is ready
 *   npm run stack:down             stops exactly what `stack` started
 */
const [command = 'up', ...flags] = process.argv.slice(2);
const stack = new Stack(stackPaths());
const say = (line: string) => { console.log(`stack: ${line}`); };

async function up(detach: boolean): Promise<void> {
  try {
    const { appUrl } = await stack.up(say);
    say(`ready: ${appUrl} (environment for operators: ${stack.paths.env}, logs: ${stack.paths.logs})`);
  } catch (error) {
    console.error(`stack: ${(error as Error).message}`);
    await stack.down(say);
    process.exit(1);
  }
  if (detach) {
    say('running in the background; stop it with "npm run stack:down"');
    stack.release();
    return;
  }
  say('running in the foreground; Ctrl-C stops it');
  const stopped = new Promise<string>((resolve) => {
    process.once('SIGINT', () => { resolve('interrupted'); });
    process.once('SIGTERM', () => { resolve('terminated'); });
  });
  const reason = await Promise.race([
    stopped,
    stack.firstExit().then(({ name, code }) => `${name} exited (code ${String(code)}): see ${stack.paths.logs}/${name}.log`),
  ]);
  say(`${reason}; stopping`);
  await stack.down(say);
  process.exit(reason === 'interrupted' || reason === 'terminated' ? 0 : 1);
}

if (command === 'up') await up(flags.includes('--detach'));
else if (command === 'down') await stack.down(say);
else {
  console.error('usage: stack.ts up [--detach] | down');
  process.exit(2);
}
