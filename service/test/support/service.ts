import { join } from 'node:path';
import { repoRoot, waitForHttp } from './bao.js';
import { freePort } from './ports.js';
import { spawnManaged, type ManagedProcess } from './processes.js';
import { tempDir } from './temp-dirs.js';

export interface ServiceProcess {
  readonly url: string;
  /** The operator's port: /status and /metrics. */
  readonly adminUrl: string;
  readonly process: ManagedProcess;
}

/**
 * The service's entry point as its own process, configured only by its environment (as
 * `npm start` runs it), through tsx so the suite needs no build step. `project`: the
 * project to run it from, this one or a copy (support/project-copy.ts).
 */
export async function spawnService(env: NodeJS.ProcessEnv, project = repoRoot): Promise<ServiceProcess> {
  const port = await freePort();
  const adminPort = await freePort();
  const dir = await tempDir('service');
  const proc = spawnManaged(process.execPath, ['--import', 'tsx', join(project, 'service/src/main.ts')], {
    cwd: project,
    // No drain delay unless a test asks for one: stop() would otherwise wait DRAIN_DELAY_MS (5 s).
    // No project quota or tenant rate either: the load harnesses (soak, faults, dynamic
    // credentials) send one tenant's requests at up to 40 a second and create a project every
    // few, up to about 1,600 in a soak, to exercise Vault's lifecycle; http/api-routes.test.ts
    // tests the quota and the rate.
    env: {
      PATH: process.env.PATH, PORT: String(port), ADMIN_PORT: String(adminPort), DRAIN_DELAY_MS: '0',
      TENANT_PROJECT_QUOTA: '999999999', TENANT_REQUESTS_PER_SECOND: '999999999',
      ...env,
    },
    logFile: join(dir, 'service.log'),
  });
  return { url: `http://127.0.0.1:${port}`, adminUrl: `http://127.0.0.1:${adminPort}`, process: proc };
}

export async function startService(env: NodeJS.ProcessEnv, project = repoRoot): Promise<ServiceProcess> {
  const service = await spawnService(env, project);
  await waitForHttp(`${service.url}/readyz`, 200, service.process);
  return service;
}
