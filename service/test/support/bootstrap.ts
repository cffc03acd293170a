import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { readFile } from 'node:fs/promises';
import { serverBin, baoEnv, repoRoot, type DevServer } from './bao.js';
import { recordOutput, registerSecret } from './leak-scan.js';

export const bootstrapScript = join(repoRoot, 'scripts/bootstrap.sh');

export interface ScriptResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs scripts/bootstrap.sh exactly as the compose `vault-init` service does, with `bao`. */
export function runBootstrap(
  server: Pick<DevServer, 'addr' | 'rootToken' | 'dir'>,
  appEnv: string,
  credentialsDir: string,
  extraEnv: NodeJS.ProcessEnv = {},
  script = bootstrapScript,
): Promise<ScriptResult> {
  const env = baoEnv(server.dir, {
    VAULT_ADDR: server.addr,
    VAULT_TOKEN: server.rootToken,
    VAULT_CLI: serverBin,
    ...extraEnv,
  });
  return new Promise((resolve) => {
    execFile('sh', [script, appEnv, credentialsDir], { env, timeout: 60_000 }, (error, stdout, stderr) => {
      const code = error === null ? 0 : typeof error.code === 'number' ? error.code : 1;
      recordOutput('bootstrap.sh output', `${stdout}\n${stderr}`);
      // The credentials it hands the agent: a role id and a wrapping token.
      void Promise.all(['role-id', 'secret-id'].map((name) => readFile(join(credentialsDir, name), 'utf8')
        .then((value) => { registerSecret(`bootstrap ${name}`, value); }, () => undefined)))
        .then(() => { resolve({ code, stdout, stderr }); });
    });
  });
}
