import convict from 'convict';

/** The service's non-secret settings, all from its environment, read once at start. */
export const settingsSchema = {
  appEnv: { doc: 'environment whose secrets the service reads', format: ['dev', 'staging', 'prod'], default: 'dev', env: 'APP_ENV' },
  port: { doc: 'HTTP port', format: 'port', default: 3000, env: 'PORT' },
  secretsMode: {
    doc: 'how secrets arrive: agent (rendered file), sdk (AppRole login), auto',
    format: ['agent', 'sdk', 'auto'], default: 'agent', env: 'SECRETS_MODE',
  },
  secretsFile: { doc: 'the file Vault Agent renders', format: String, default: '/vault/secrets/app.json', env: 'SECRETS_FILE' },
  vaultAddr: { doc: 'Vault address (SDK mode, token checks)', format: String, default: '', env: 'VAULT_ADDR' },
  vaultCaCert: {
    doc: 'CA certificate (PEM file) that Vault\'s TLS certificate chains to; empty: the system CAs', format: String,
    default: '', env: 'VAULT_CACERT',
  },
  vaultTokenFile: {
    doc: 'the agent\'s token sink', format: String, default: '/vault/secrets/token', env: 'VAULT_TOKEN_FILE',
  },
  vaultConnectTimeoutMs: {
    doc: 'how long start-up retries an unreachable or sealed Vault (ms)', format: 'nat', default: 30_000,
    env: 'VAULT_CONNECT_TIMEOUT_MS',
  },
  vaultRequestTimeoutMs: {
    doc: 'timeout of one call to Vault (ms)', format: 'nat', default: 5000, env: 'VAULT_REQUEST_TIMEOUT_MS',
  },
  tokenCheckMaxIntervalMs: {
    doc: 'longest time between two token checks (ms); 0: two thirds of the remaining TTL decides', format: 'nat',
    default: 0, env: 'TOKEN_CHECK_MAX_INTERVAL_MS',
  },
  databaseHost: { doc: 'PostgreSQL host', format: String, default: '127.0.0.1', env: 'DATABASE_HOST' },
  databasePort: { doc: 'PostgreSQL port', format: 'port', default: 5432, env: 'DATABASE_PORT' },
  databaseName: { doc: 'PostgreSQL database', format: String, default: 'saas', env: 'DATABASE_NAME' },
  webhookUrl: {
    doc: 'where project events are POSTed, HMAC-signed (empty: no webhooks)', format: String, default: '',
    env: 'WEBHOOK_URL',
  },
  secretsWaitMs: {
    doc: 'how long start-up waits for the first valid render (ms)', format: 'nat', default: 30_000, env: 'SECRETS_WAIT_MS',
  },
  logLevel: {
    doc: 'pino log level', format: ['trace', 'debug', 'info', 'warn', 'error', 'fatal'], default: 'info', env: 'LOG_LEVEL',
  },
};

export interface Settings {
  readonly appEnv: 'dev' | 'staging' | 'prod';
  readonly port: number;
  readonly secretsMode: 'agent' | 'sdk' | 'auto';
  readonly secretsFile: string;
  readonly vaultAddr: string;
  readonly vaultCaCert: string;
  readonly vaultTokenFile: string;
  readonly vaultConnectTimeoutMs: number;
  readonly vaultRequestTimeoutMs: number;
  readonly tokenCheckMaxIntervalMs: number;
  readonly databaseHost: string;
  readonly databasePort: number;
  readonly databaseName: string;
  readonly webhookUrl: string;
  readonly secretsWaitMs: number;
  readonly logLevel: string;
}

/** Throws with the variable's key and what is wrong when the environment is invalid. */
export function readSettings(env: NodeJS.ProcessEnv): Settings {
  const config = convict(settingsSchema, { env, args: [] });
  config.validate({ allowed: 'strict' });
  return Object.freeze(config.getProperties()) as Settings;
}
