import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EngineError, enginePaths, repoRoot, run, startEngine, stopEngine } from '../engine/engine.js';
import { baseImageTag, ensureImages } from '../engine/images.js';
import { pauseImage } from './config.js';
import { ClusterError, type ClusterPaths } from './paths.js';

/*
 * The cluster's images come from the project's Docker engine (no registry is reachable
 * here): the stand-ins it builds (images/), a pause image (the Debian base running `sleep
 * infinity`: containerd kills the sandbox with SIGKILL, so it needs no signal handling), and
 * the app's image, built from the repository's Dockerfile as compose builds it. They go into
 * each node's containerd with `ctr images import`; an image already there is not imported
 * again (every tag names its content).
 */

export interface ClusterImages {
  readonly vault: string;
  readonly app: string;
  readonly pause: string;
}

async function must(command: string, args: readonly string[], options: Parameters<typeof run>[2], what: string): Promise<string> {
  const result = await run(command, args, options);
  if (result.code !== 0) throw new ClusterError(`${what}: ${result.stderr.trim().split('\n').at(-1) ?? `exit ${result.code}`}`);
  return result.stdout.trim();
}

/** Into every node's containerd (sockets), each missing image once. */
export async function importImages(sockets: readonly string[], paths: ClusterPaths, say: (line: string) => void): Promise<ClusterImages> {
  let engine;
  try {
    engine = await startEngine(say);
  } catch (error) {
    throw new ClusterError(`the cluster's images come from the project's engine, which did not start: ${error instanceof EngineError ? error.message : String(error)}`);
  }
  try {
    const env = engine.env;
    const standIns = await ensureImages(engine, say);
    const context = await mkdtemp(join(tmpdir(), 'saas-k8s-pause-'));
    try {
      await writeFile(join(context, 'Dockerfile'), `FROM ${baseImageTag}\nCMD ["sleep", "infinity"]\n`);
      await must('docker', ['build', '-q', '--pull=false', '-t', pauseImage, context], { env }, 'the pause image could not be built');
    } finally {
      await rm(context, { recursive: true, force: true });
    }
    say('building the app image (the Dockerfile, as compose does)');
    const built = await must('docker', ['build', '-q', '--network', 'host', '--pull=false',
      '--build-arg', `NODE_IMAGE=${standIns.NODE_IMAGE}`, '-t', 'saas-app:build', repoRoot], { env, cwd: repoRoot }, 'the app image could not be built');
    const app = `saas-app:${built.replace(/^sha256:/, '').slice(0, 16)}`;
    await must('docker', ['tag', 'saas-app:build', app], { env }, 'the app image could not be tagged');
    const images: ClusterImages = { vault: standIns.VAULT_IMAGE, app, pause: pauseImage };

    // containerd names images as Docker Hub does: docker.io/, and library/ for a one-part name.
    const named = (tag: string) => `docker.io/${tag.includes('/') ? '' : 'library/'}${tag}`;
    for (const socket of sockets) {
      const present = (await must('ctr', ['--address', socket, '-n', 'k8s.io', 'images', 'ls', '-q'], {}, 'containerd did not list its images'))
        .split('\n');
      const missing = [images.vault, images.app, images.pause].filter((tag) => !present.includes(named(tag)));
      // The pause image's tag is fixed: it is imported again whenever it was rebuilt.
      if (!missing.includes(pauseImage)) missing.push(pauseImage);
      const archive = join(paths.run, 'images.tar');
      say(`importing ${missing.join(', ')} into ${socket === sockets[0] ? 'the first node\'s' : 'another node\'s'} containerd`);
      await must('docker', ['save', '-o', archive, ...missing], { env }, 'the images could not be saved');
      try {
        await must('ctr', ['--address', socket, '-n', 'k8s.io', 'images', 'import', archive], {}, 'containerd could not import the images');
      } finally {
        await rm(archive, { force: true });
      }
    }
    return images;
  } finally {
    // An engine this start brought up is stopped again; one that was running stays.
    if (engine.startedNow) await stopEngine(() => undefined, enginePaths());
  }
}
