import { randomBytes } from 'node:crypto';
import { rename, writeFile } from 'node:fs/promises';
import { Writable } from 'node:stream';
import { secretPath, type AppScope, type SecretGroup } from '../../src/config/secret-schema.js';
import { createLogger, type Logger } from '../../src/log/logger.js';
import { recordOutput, registerSecret } from './leak-scan.js';

export function randomKey(): string {
  const key = randomBytes(32).toString('hex');
  registerSecret('randomKey()', key);
  return key;
}

/** Secrets as Vault would hold them, fresh random values each call. */
export function sampleSecrets() {
  return {
    database: { username: 'saas_app', password: randomKey() },
    'api-keys': { webhook_signing_key: randomKey() },
    oidc: { client_id: 'sample-client', client_secret: randomKey() },
    app: { session_keys: [randomKey()] },
  };
}

/** The application `appName` (APP_NAME, default saas) in `appEnv`. */
export function appScope(appEnv = 'dev', appName = 'saas'): AppScope {
  return { appName, appEnv };
}

/** What agent-config's template renders for `appEnv` (and `appName`), with `version` on every path. */
export function renderedDocument(appEnv: string, version: number, secrets = sampleSecrets(), appName = 'saas') {
  return Object.fromEntries(
    Object.entries(secrets).map(([group, data]) => [
      group,
      { path: secretPath(appScope(appEnv, appName), group as SecretGroup), version, data },
    ]),
  );
}

/** Writes the way Vault Agent does: a temporary file in the same folder, renamed over the target. */
export async function renderLikeAgent(file: string, content: string | Buffer): Promise<void> {
  const tmp = `${file}.${randomBytes(4).toString('hex')}.tmp`;
  await writeFile(tmp, content, { mode: 0o440 });
  await rename(tmp, file);
}

/** A real pino logger whose lines are kept, parsed, for assertions. */
export function capturingLogger(): { logger: Logger; lines: Record<string, unknown>[]; text: () => string } {
  const raw: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      raw.push(chunk.toString('utf8'));
      callback();
    },
  });
  const logger = createLogger('debug', stream);
  recordOutput('capturingLogger', () => raw.join(''));
  return {
    logger,
    get lines() {
      return raw.join('').split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as Record<string, unknown>);
    },
    text: () => raw.join(''),
  };
}
