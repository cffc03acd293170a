import { expect } from 'chai';
import { chmod, readdir, readFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { userInfo } from 'node:os';
import { join } from 'node:path';
import { run, type RunResult } from '../../../scripts/engine/engine.js';
import { repoRoot } from '../support/repo-root.js';
import { ComposeProject, testEngine } from '../support/engine.js';
import { tempDir } from '../support/temp-dirs.js';

/*
 * `npm run engine:start` where it cannot work: each case fails with exit 1 and one line naming
 * the cause, and leaves no dockerd running. Each case uses an engine folder of its own
 * (ENGINE_DIR), so the suite's engine is never touched.
 */

const cli = join(repoRoot, 'scripts/engine/cli.ts');
const tsx = join(repoRoot, 'node_modules/tsx/dist/cli.mjs');

async function start(env: NodeJS.ProcessEnv, asUser?: number, entry: readonly string[] = [tsx, cli]): Promise<RunResult> {
  const command = ['node', ...entry, 'start'];
  const argv = asUser === undefined ? command : ['setpriv', `--reuid=${asUser}`, `--regid=${asUser}`, '--clear-groups', ...command];
  return run(argv[0] ?? 'node', argv.slice(1), { env: { ...process.env, ...env } });
}

/** The error lines the CLI printed (npm's own warnings aside). */
function errorLines(result: RunResult): string[] {
  return result.stderr.split('\n').filter((line) => line.trim() !== '' && !line.startsWith('npm warn'));
}

/** dockerd processes whose command line names this folder. */
async function dockerdsUsing(dir: string): Promise<number[]> {
  const found: number[] = [];
  for (const entry of await readdir('/proc')) {
    const pid = Number(entry);
    if (!Number.isInteger(pid)) continue;
    const args = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
    if (args.startsWith('dockerd\0') && args.includes(dir)) found.push(pid);
  }
  return found;
}

describe('compose on the engine: engine:start fails with one line naming the cause', function () {
  this.timeout(120_000);

  before(async function () {
    this.timeout(900_000);
    // The suite's engine: it must exist for the data-root case, and these cases need its packages.
    await testEngine(this);
  });

  it('not root and no passwordless sudo: says so (the engine tests skip with that line outside CI)', async function () {
    if (userInfo().uid !== 0) this.skip();
    // The CLI's own code, bundled into a folder anyone can read: the clone's folder may be closed
    // to nobody (a clone in a `mktemp -d` folder is 0700), and that is not what this case is about.
    const dir = await tempDir('engine-nobody');
    await chmod(dir, 0o755);
    const bundle = join(dir, 'engine-cli.mjs');
    const built = await run(join(repoRoot, 'node_modules/.bin/esbuild'),
      [cli, '--bundle', '--platform=node', '--format=esm', `--outfile=${bundle}`, '--log-level=warning']);
    expect(built.code, built.stderr).to.equal(0);
    await chmod(bundle, 0o644);
    const result = await start({ ENGINE_DIR: join(dir, 'engine'), HOME: dir }, 65534, [bundle]);
    expect(result.code).to.equal(1);
    expect(errorLines(result)).to.deep.equal(['engine: no Docker engine can run here: not root, and sudo needs a password (or is missing)']);
  });

  it('a socket another program listens on', async function () {
    const dir = await tempDir('engine-socket');
    const server: Server = createServer();
    await new Promise<void>((resolvePromise) => server.listen(join(dir, 'docker.sock'), resolvePromise));
    try {
      const result = await start({ ENGINE_DIR: dir });
      expect(result.code).to.equal(1);
      expect(errorLines(result)).to.deep.equal([`engine: socket taken: another program listens on ${join(dir, 'docker.sock')}`]);
      expect(await dockerdsUsing(dir)).to.deep.equal([]);
    } finally {
      server.close();
    }
  });

  it('a data root another dockerd runs on', async function () {
    const engine = await testEngine(this);
    const dir = await tempDir('engine-dataroot');
    const result = await start({ ENGINE_DIR: dir, ENGINE_DATA_ROOT: engine.engine.paths.dataRoot });
    expect(result.code).to.equal(1);
    expect(errorLines(result)).to.have.length(1);
    expect(errorLines(result)[0]).to.match(new RegExp(`^engine: data root in use: dockerd pid \\d+ already runs on ${engine.engine.paths.dataRoot} `));
    expect(await dockerdsUsing(dir)).to.deep.equal([]);
  });

  it('a full disk: a 16 MB filesystem as the data root', async function () {
    const dir = await tempDir('engine-disk');
    const data = join(dir, 'data');
    const mounted = await run('sh', ['-c', 'mkdir -p "$1" && mount -t tmpfs -o size=16m tmpfs "$1"', 'sh', data]);
    if (mounted.code !== 0) this.skip();
    try {
      const result = await start({ ENGINE_DIR: dir, ENGINE_DATA_ROOT: data });
      expect(result.code).to.equal(1);
      expect(errorLines(result)).to.have.length(1);
      expect(errorLines(result)[0]).to.match(new RegExp(`^engine: disk full: 1[0-9] MB free under ${data}, the engine needs 4096 MB`));
      expect(await dockerdsUsing(dir)).to.deep.equal([]);
    } finally {
      await run('umount', [data]);
    }
  });

  it('a stand-in build that cannot reach Debian\'s packages names the mirror, and stops the engine it started', async function () {
    const dir = await tempDir('engine-mirror');
    const mirror = 'http://127.0.0.1:9/debian';
    const result = await start({ ENGINE_DIR: dir, ENGINE_DATA_ROOT: join(dir, 'data'), ENGINE_DEBIAN_MIRROR: mirror });
    expect(result.code).to.equal(1);
    const lines = errorLines(result);
    expect(lines).to.have.length(1);
    expect(lines[0]).to.match(new RegExp(`^engine: the Debian base could not be built: debootstrap from ${mirror}: .*127\\.0\\.0\\.1:9`));
    expect(result.stdout, 'the engine had started').to.include('engine started');
    expect(await dockerdsUsing(dir), 'no dockerd left running').to.deep.equal([]);
  });

  it('docker-compose up with a host port taken fails naming the port, and down -v leaves nothing', async function () {
    const engine = await testEngine(this);
    const server: Server = createServer();
    await new Promise<void>((resolvePromise) => server.listen(0, '127.0.0.1', resolvePromise));
    const address = server.address();
    const port = typeof address === 'object' && address !== null ? address.port : 0;
    const compose = new ComposeProject(engine, join(repoRoot, 'docker-compose.yml'), 'saasport', { VAULT_HOST_PORT: String(port) });
    try {
      const up = await compose.compose(['up', '-d', 'vault']);
      expect(up.code).not.to.equal(0);
      expect(up.stderr).to.match(new RegExp(`127\\.0\\.0\\.1:${port}.*(address already in use|port is already allocated)`));
    } finally {
      server.close();
      await compose.saveLogs('compose-port');
      expect(await compose.down()).to.deep.equal({ containers: [], volumes: [], networks: [] });
    }
  });
});
