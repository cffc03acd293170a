import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { EngineUnavailable, run, startEngine, stopEngine, type RunResult, type StartedEngine } from '../../../scripts/engine/engine.js';
import { ensureImages, writeEngineEnv, type StandInImages } from '../../../scripts/engine/images.js';
import { repoRoot } from './repo-root.js';
import { tempDir } from './temp-dirs.js';

/*
 * The project's Docker engine for tests: started (or reused) once per suite, with the stand-in
 * images built once; stopped after the suite when the suite started it. Where no engine can run
 * (not root, no sudo) the tests skip with one line saying why, except under CI=true, where they
 * fail: CI must run them.
 */

export interface TestEngine {
  readonly engine: StartedEngine;
  readonly images: StandInImages;
  /** How long starting the engine and building (or finding) the images took, in ms. */
  readonly readyMs: number;
}

let shared: Promise<TestEngine> | undefined;
let startedBySuite: StartedEngine | undefined;

async function startShared(): Promise<TestEngine> {
  const began = Date.now();
  const engine = await startEngine((line) => { console.log(`      engine: ${line}`); });
  if (engine.startedNow) startedBySuite = engine;
  const images = await ensureImages(engine, (line) => { console.log(`      engine: ${line}`); });
  await writeEngineEnv(engine, images);
  return { engine, images, readyMs: Date.now() - began };
}

/** The engine, or this.skip() with one line when none can run here (never under CI=true). */
export async function testEngine(context: Mocha.Context): Promise<TestEngine> {
  shared ??= startShared();
  try {
    return await shared;
  } catch (error) {
    if (error instanceof EngineUnavailable && process.env.CI !== 'true') {
      console.log(`      skipped: ${error.message}`);
      context.skip();
    }
    throw error;
  }
}

// Root-level: after every file, so an engine the suite started never outlives it, pass or fail.
after(async function () {
  this.timeout(120_000);
  if (startedBySuite !== undefined) await stopEngine(() => undefined, startedBySuite.paths);
});

/** One compose project on the engine: `docker-compose -p <project> -f <file> ...`. */
export class ComposeProject {
  readonly env: NodeJS.ProcessEnv;
  constructor(
    readonly testEngine: TestEngine,
    readonly file: string,
    readonly project: string,
    extraEnv: NodeJS.ProcessEnv = {},
  ) {
    this.env = { ...testEngine.engine.env, ...testEngine.images, ...extraEnv };
  }

  async compose(args: readonly string[], input?: string): Promise<RunResult> {
    return run('docker-compose', ['-p', this.project, '-f', this.file, ...args], {
      env: this.env, cwd: repoRoot, ...(input === undefined ? {} : { input }),
    });
  }

  async docker(args: readonly string[], input?: string): Promise<RunResult> {
    return run('docker', args, { env: this.env, ...(input === undefined ? {} : { input }) });
  }

  /** Runs a compose command and throws with its output's last lines when it fails. */
  async must(args: readonly string[], input?: string): Promise<string> {
    const result = await this.compose(args, input);
    if (result.code !== 0) {
      const tail = (result.stderr + result.stdout).trim().split('\n').slice(-8).join('\n');
      throw new Error(`docker-compose ${args.join(' ')} exited ${result.code}:\n${tail}`);
    }
    return result.stdout;
  }

  /** The project's containers, by service: id and full `docker inspect`. */
  async containers(all = true): Promise<Map<string, { id: string; inspect: Record<string, unknown> }>> {
    const ids = (await this.docker(['ps', ...(all ? ['-a'] : []), '-q', '--filter', `label=com.docker.compose.project=${this.project}`]))
      .stdout.split('\n').filter((id) => id !== '');
    const found = new Map<string, { id: string; inspect: Record<string, unknown> }>();
    if (ids.length === 0) return found;
    const inspected = JSON.parse((await this.docker(['inspect', ...ids])).stdout) as Record<string, unknown>[];
    for (const inspect of inspected) {
      const labels = (inspect.Config as { Labels?: Record<string, string> }).Labels ?? {};
      const name = labels['com.docker.compose.service'] ?? String(inspect.Name);
      found.set(name, { id: String(inspect.Id), inspect });
    }
    return found;
  }

  /**
   * Every container's log as <service>.log under a tempDir, where the suite's secret scan reads
   * it; `docker logs` (not compose's prefixed lines), so tool banners stay recognisable.
   */
  async saveLogs(prefix: string): Promise<string> {
    const dir = await tempDir(prefix);
    for (const [name, { id }] of await this.containers()) {
      const logs = await this.docker(['logs', id]);
      await writeFile(join(dir, `${name}.log`), logs.stdout + logs.stderr);
    }
    return dir;
  }

  /**
   * The anonymous volumes of the project's containers: those Docker makes for an image's VOLUME
   * (the vault image's /vault/file and /vault/logs) that no mount in the file covers. They carry
   * no project label, so a listing by label misses them, and `down` without -v leaves them
   * behind for good: the next `up` makes new ones.
   */
  async anonymousVolumes(): Promise<string[]> {
    const names = [...(await this.containers()).values()].flatMap(({ inspect }) =>
      ((inspect.Mounts ?? []) as { Type: string; Name?: string }[]).filter((m) => m.Type === 'volume' && m.Name !== undefined)
        .map((m) => m.Name as string));
    return (await this.existingVolumes([...new Set(names)])).filter((volume) => volume.labels['com.docker.compose.project'] === undefined)
      .map((volume) => volume.name);
  }

  async existingVolumes(names: readonly string[]): Promise<{ name: string; labels: Record<string, string> }[]> {
    const found: { name: string; labels: Record<string, string> }[] = [];
    for (const name of names) {
      const inspected = await this.docker(['volume', 'inspect', name]);
      if (inspected.code !== 0) continue;
      const [volume] = JSON.parse(inspected.stdout) as { Name: string; Labels: Record<string, string> | null }[];
      if (volume !== undefined) found.push({ name: volume.Name, labels: volume.Labels ?? {} });
    }
    return found;
  }

  /** down -v, and what is left of the project afterwards (containers, volumes, anonymous ones included, networks). */
  async down(): Promise<{ containers: string[]; volumes: string[]; networks: string[] }> {
    const anonymous = await this.anonymousVolumes();
    await this.compose(['down', '-v', '--remove-orphans', '--timeout', '10']);
    const list = async (kind: string[]) => (await this.docker([...kind, '-q', '--filter', `label=com.docker.compose.project=${this.project}`]))
      .stdout.split('\n').filter((line) => line !== '');
    return {
      containers: await list(['ps', '-a']),
      volumes: [...await list(['volume', 'ls']), ...(await this.existingVolumes(anonymous)).map((v) => v.name)],
      networks: await list(['network', 'ls']),
    };
  }

  /**
   * `down` without -v, as an operator stops a stack whose data must stay: the named volumes
   * remain, while the containers go with their anonymous volumes (`rm -v`), which no later `up`
   * would reuse. Resolves with the anonymous volumes the containers had.
   */
  async downKeepingData(): Promise<string[]> {
    const anonymous = await this.anonymousVolumes();
    await this.must(['rm', '--stop', '--force', '-v']);
    await this.must(['down']);
    return anonymous;
  }
}
