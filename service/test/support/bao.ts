import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { access, constants } from 'node:fs/promises';
import { join } from 'node:path';
import { registerSecret } from './leak-scan.js';
import { spawnManaged, type ManagedProcess } from './processes.js';
import { freePort } from './ports.js';
import { repoRoot } from './repo-root.js';
import { tempDir } from './temp-dirs.js';

export { repoRoot };


export interface VaultServerKind {
  /** What titles and messages call it. */
  readonly name: 'OpenBao' | 'HashiCorp Vault';
  /** Server, agent and CLI in one binary, as the install script links it. */
  readonly bin: string;
  readonly install: string;
  /**
   * How long an expired secret id may still log in. OpenBao checks the expiry at login;
   * HashiCorp Vault's login does not, and its AppRole tidy, which the rollback manager starts
   * once a minute, deletes expired ones: two periods, as a tidy still running when the next
   * one is due makes it skip that one (a clean-clone run saw more than 61 s).
   */
  readonly expiredSecretIdGraceMs: number;
  /**
   * Whether starting a root token generation needs a token: OpenBao (2.6 and later) asks for
   * one allowed on sys/generate-root; for HashiCorp Vault the quorum of unseal keys is enough.
   */
  readonly generateRootNeedsToken: boolean;
}

/** The two servers the suite runs, by TEST_VAULT_SERVER's values. */
export const vaultServers = {
  bao: {
    name: 'OpenBao', bin: join(repoRoot, '.tools/bin/bao'), install: 'scripts/install-openbao.sh', expiredSecretIdGraceMs: 0,
    generateRootNeedsToken: true,
  },
  vault: {
    name: 'HashiCorp Vault', bin: join(repoRoot, '.tools/bin/vault'), install: 'scripts/install-vault.sh', expiredSecretIdGraceMs: 120_000,
    generateRootNeedsToken: false,
  },
} as const satisfies Record<string, VaultServerKind>;

/**
 * The implementation the suite's Vault tests run, from TEST_VAULT_SERVER: `bao` (OpenBao, the
 * default) or `vault` (HashiCorp Vault). npm test runs the contract tests with each
 * (support/run-suite.ts); npm test's pretest installs both.
 */
export const vaultServer: VaultServerKind = (() => {
  const chosen = process.env.TEST_VAULT_SERVER ?? 'bao';
  if (chosen !== 'bao' && chosen !== 'vault') throw new Error(`TEST_VAULT_SERVER must be bao or vault, not "${chosen}"`);
  return vaultServers[chosen];
})();
export const serverBin = vaultServer.bin;

/**
 * Installs the pinned server when it is missing: what `npm test`'s pretest does first, for a
 * file run alone on a fresh clone (`npx mocha <file>`) that needs a whole production setup.
 */
export async function ensureServerInstalled(): Promise<void> {
  const installed = await access(serverBin, constants.X_OK).then(() => true, () => false);
  if (installed) return;
  await new Promise<void>((resolvePromise, reject) => {
    execFile('sh', [join(repoRoot, vaultServer.install)], { cwd: repoRoot, timeout: 30 * 60_000 }, (error, _stdout, stderr) => {
      if (error === null) resolvePromise();
      else reject(new Error(`${vaultServer.install} failed: ${stderr.trim().split('\n').at(-1) ?? error.message}`));
    });
  });
}

export async function assertServerInstalled(): Promise<void> {
  try {
    await access(serverBin, constants.X_OK);
  } catch {
    throw new Error(`no ${vaultServer.name} binary at ${serverBin}: run "sh ${vaultServer.install}" (npm test does)`);
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

export interface DevServer {
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
export async function startDevServer(): Promise<DevServer> {
  await assertServerInstalled();
  const dir = await tempDir('bao');
  const rootToken = `root-${randomBytes(12).toString('hex')}`;
  registerSecret('dev server root token', rootToken);
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    const addr = `http://127.0.0.1:${port}`;
    const proc = spawnManaged(
      serverBin,
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
