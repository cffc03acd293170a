import { join } from 'node:path';
import { repoRoot, waitForHttp } from './bao.js';
import { freePort } from './ports.js';
import { spawnManaged, type ManagedProcess } from './processes.js';
import { tempDir } from './temp-dirs.js';

export interface ServiceProcess {
  readonly url: string;
  readonly process: ManagedProcess;
}

/**
 * The service's entry point as its own process, configured only by its environment (as
 * `npm start` runs it), through tsx so the suite needs no build step.
 */
export async function spawnService(env: NodeJS.ProcessEnv): Promise<ServiceProcess> {
  const port = await freePort();
  const dir = await tempDir('service');
  const proc = spawnManaged(process.execPath, ['--import', 'tsx', join(repoRoot, 'service/src/main.ts')], {
    cwd: repoRoot,
    env: { PATH: process.env.PATH, PORT: String(port), ...env },
    logFile: join(dir, 'service.log'),
  });
  return { url: `http://127.0.0.1:${port}`, process: proc };
}

export async function startService(env: NodeJS.ProcessEnv): Promise<ServiceProcess> {
  const service = await spawnService(env);
  await waitForHttp(`${service.url}/readyz`, 200, service.process);
  return service;
}
