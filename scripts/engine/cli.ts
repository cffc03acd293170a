import { EngineError, enginePaths, startEngine, stopEngine, type StartedEngine } from './engine.js';
import { ensureImages, writeEngineEnv } from './images.js';

/**
 *   npm run engine:start   starts (or reuses) the project's dockerd, builds the stand-in
 *                          images that are missing or stale, writes .engine/engine.env
 *   npm run engine:stop    removes the engine's containers and networks, stops that dockerd
 *
 * Every failure is one line naming its cause, and a failed start leaves nothing running.
 */
const [command = 'start'] = process.argv.slice(2);
const say = (line: string) => { console.log(`engine: ${line}`); };

if (command === 'start') {
  let engine: StartedEngine | undefined;
  try {
    const started = Date.now();
    engine = await startEngine(say);
    const images = await ensureImages(engine, say);
    await writeEngineEnv(engine, images);
    say(`ready in ${((Date.now() - started) / 1000).toFixed(1)} s: set -a; . ${engine.paths.envFile}; set +a; docker-compose up`);
  } catch (error) {
    console.error(`engine: ${error instanceof EngineError ? error.message : String(error)}`);
    // Only an engine this command started is stopped; one that was running stays.
    if (engine?.startedNow === true) await stopEngine(() => undefined, enginePaths());
    process.exit(1);
  }
} else if (command === 'stop') {
  await stopEngine(say);
} else {
  console.error(`engine: unknown command '${command}': expected start or stop`);
  process.exit(2);
}
