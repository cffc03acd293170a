import { randomBytes } from 'node:crypto';
import { access, constants } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { registerSecret } from './leak-scan.js';
import { spawnManaged, type ManagedProcess } from './processes.js';
import { freePort } from './ports.js';
import { tempDir } from './temp-dirs.js';

export const repoRoot = resolve(import.meta.dirname, '../../..');

/** The pinned `bao` that scripts/install-openbao.sh installs (npm test's pretest runs it). */
export const baoBin = process.env.BAO_BIN ?? join(repoRoot, '.tools/bin/bao');

export async function assertBaoInstalled(): Promise<void> {
  try {
    await access(baoBin, constants.X_OK);
  } catch {
    throw new Error(`no bao binary at ${baoBin}: run "sh scripts/install-openbao.sh" (npm test does)`);
  }
}

/**
 * The environment for a `bao` child: nothing inherited that names a Vault server or token,
 * and a private HOME, because the CLI and the dev server keep a token in ~/.vault-token.
 */
export function baoEnv(home: string, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (!/^(VAULT|BAO)_/.test(key)) env[key] = value;
  }
  return { ...env, HOME: home, ...extra };
}

export interface BaoDevServer {
  readonly addr: string;
  readonly rootToken: string;
  readonly process: ManagedProcess;
  /** A folder private to this server, for its HOME, logs and whatever a test writes. */
  readonly dir: string;
  /** The dev server's single unseal key, as it printed it at start. */
  unsealKey(): Promise<string>;
  stop(): Promise<void>;
}

/** Polls until `url` answers `expectedStatus`, or fails with what the process logged. */
export async function waitForHttp(
  url: string,
  expectedStatus: number,
  proc: ManagedProcess,
  timeoutMs = 20_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError = 'no answer yet';
  while (Date.now() < deadline) {
    if (proc.child.exitCode !== null || proc.child.signalCode !== null) {
      throw new Error(`process exited (${String(await proc.exited)}) before ${url} answered:\n${await proc.log()}`);
    }
    try {
      const response = await fetch(url, { signal: AbortSignal.timeout(1000) });
      await response.body?.cancel();
      if (response.status === expectedStatus) return;
      lastError = `status ${response.status}`;
    } catch (error) {
      lastError = (error as Error).message;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${url} did not answer ${expectedStatus} within ${timeoutMs} ms (${lastError}):\n${await proc.log()}`);
}

/** A real `bao server -dev` on a free loopback port with a random root token. */
export async function startBaoDevServer(): Promise<BaoDevServer> {
  await assertBaoInstalled();
  const dir = await tempDir('bao');
  const rootToken = `root-${randomBytes(12).toString('hex')}`;
  registerSecret('dev server root token', rootToken);
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    const addr = `http://127.0.0.1:${port}`;
    const proc = spawnManaged(
      baoBin,
      ['server', '-dev', `-dev-listen-address=127.0.0.1:${port}`, `-dev-root-token-id=${rootToken}`],
      { env: baoEnv(dir), logFile: join(dir, `server-${port}.log`), cwd: dir },
    );
    try {
      await waitForHttp(`${addr}/v1/sys/health`, 200, proc);
      registerSecret('dev server unseal key', /^Unseal Key: (\S+)$/m.exec(await proc.log())?.[1]);
      const unsealKey = async () => {
        const key = /^Unseal Key: (\S+)$/m.exec(await proc.log())?.[1];
        if (key === undefined) throw new Error('the dev server printed no unseal key');
        return key;
      };
      return { addr, rootToken, process: proc, dir, unsealKey, stop: async () => { await proc.stop(); } };
    } catch (error) {
      await proc.stop();
      // Another process may have taken the port between probe and bind: try a new one.
      if (attempt < 3 && /address already in use/.test((error as Error).message)) continue;
      throw error;
    }
  }
}
