import convict from 'convict';
import { isIP } from 'node:net';

/**
 * Durations: a whole number of milliseconds (`250`), or a whole number with one explicit unit
 * (`250ms`, `10s`, `5m`, `1h`). Nothing else: convict's `nat` read `10s` as 10 ms and `5m` as
 * 5 ms. At most 2^31 - 1 ms, Node's timer limit (a longer timer fires at once).
 */
const durationPattern = /^(0|[1-9][0-9]*)(ms|s|m|h)?$/;
const unitMs: Readonly<Record<string, number>> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
const maxDurationMs = 2 ** 31 - 1;
/** Intervals of calls to Vault: below this, every instance would hammer it. 0 keeps its own meaning. */
export const minIntervalMs = 100;

/** The milliseconds `text` stands for, or NaN when it is not a duration as above. */
export function parseDurationMs(text: string): number {
  const match = durationPattern.exec(text);
  if (match === null) return Number.NaN;
  const ms = Number(match[1]) * (unitMs[match[2] ?? 'ms'] ?? Number.NaN);
  return Number.isSafeInteger(ms) && ms <= maxDurationMs ? ms : Number.NaN;
}

function durationFormat(name: string, accept: (ms: number) => boolean): void {
  convict.addFormat({
    name,
    validate: (value: unknown) => {
      if (typeof value !== 'number' || !Number.isSafeInteger(value) || value > maxDurationMs || !accept(value)) {
        throw new Error(`must be a ${name}`);
      }
    },
    coerce: (value: string) => parseDurationMs(value),
  });
}
/** Timeouts and waits: 0 would make every call or wait fail at once. */
durationFormat('positive-duration', (ms) => ms > 0);
/** Delays where 0 means "none". */
durationFormat('duration', (ms) => ms >= 0);
/** Intervals of calls to Vault: 0 (a meaning of its own, in the setting's doc) or at least minIntervalMs. */
durationFormat('interval', (ms) => ms === 0 || ms >= minIntervalMs);

// Ports: digits only (convict's `port` is a bare parseInt too: `3000abc` was port 3000).
convict.addFormat({
  name: 'strict-port',
  validate: (value: unknown) => {
    if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > 65_535) throw new Error('must be a port');
  },
  coerce: (value: string) => (/^(0|[1-9][0-9]{0,4})$/.test(value) ? Number(value) : Number.NaN),
});
/**
 * TRUSTED_PROXIES as entries (comma-separated addresses or CIDR blocks, IPv4 or IPv6), or
 * undefined when one is neither.
 */
export function parseTrustedProxies(text: string): string[] | undefined {
  const entries = text.split(',').map((entry) => entry.trim()).filter((entry) => entry !== '');
  for (const entry of entries) {
    const [address = '', prefix, extra] = entry.split('/');
    const version = isIP(address);
    if (version === 0 || extra !== undefined) return undefined;
    if (prefix !== undefined && !(/^\d{1,3}$/.test(prefix) && Number(prefix) <= (version === 4 ? 32 : 128))) return undefined;
  }
  return entries;
}

// Addresses or CIDR blocks, comma-separated (http/trusted-proxies.ts); empty: none.
convict.addFormat({
  name: 'proxy-list',
  validate: (value: unknown) => {
    if (!Array.isArray(value) || value.some((entry) => typeof entry !== 'string')) throw new Error('must be addresses or CIDR blocks');
  },
  coerce: (value: string) => parseTrustedProxies(value) ?? value,
});
// Counts: digits only, at least 1 (convict's `nat` read `10k` as 10).
convict.addFormat({
  name: 'positive-count',
  validate: (value: unknown) => {
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1) throw new Error('must be a whole number, at least 1');
  },
  coerce: (value: string) => (/^[1-9][0-9]{0,8}$/.test(value) ? Number(value) : Number.NaN),
});
convict.addFormat({
  name: 'http-url-or-empty',
  validate: (value: unknown) => {
    if (typeof value !== 'string' || (value !== '' && !isHttpUrl(value))) throw new Error('must be an http(s) URL');
  },
});

// "true" or "false" and nothing else: node-vault took any non-empty VAULT_SKIP_VERIFY, "false"
// included, as "skip", and a setting that turns TLS verification off must not be guessed at.
convict.addFormat({
  name: 'true-or-false',
  validate: (value: unknown) => {
    if (typeof value !== 'boolean') throw new Error('must be true or false');
  },
  coerce: (value: string) => (value === 'true' ? true : value === 'false' ? false : value),
});

// Space-separated scope names, openid among them (an ID token is what the sign-in reads).
convict.addFormat({
  name: 'oidc-scopes',
  validate: (value: unknown) => {
    if (typeof value !== 'string' || !/^[\x21\x23-\x5b\x5d-\x7e]+( [\x21\x23-\x5b\x5d-\x7e]+)*$/.test(value) ||
      !value.split(' ').includes('openid')) {
      throw new Error('must be scopes, space-separated, openid among them');
    }
  },
});
convict.addFormat({
  name: 'claim-name',
  validate: (value: unknown) => {
    if (typeof value !== 'string' || !/^[A-Za-z_][A-Za-z0-9_.:/-]{0,99}$/.test(value)) throw new Error('must be a claim name');
  },
});

// A namespace path as OpenBao and Vault Enterprise take it: names of letters, digits, _ and -,
// joined by /, at most 128 characters in all (a bound: it travels in a header on every call).
convict.addFormat({
  name: 'vault-namespace',
  validate: (value: unknown) => {
    if (typeof value !== 'string' || value.length > 128 || (value !== '' && !/^[A-Za-z0-9_-]+(\/[A-Za-z0-9_-]+)*$/.test(value))) {
      throw new Error('must be a namespace path');
    }
  },
});
convict.addFormat({
  name: 'app-name',
  validate: (value: unknown) => {
    if (typeof value !== 'string' || !/^[a-z][a-z0-9]{0,19}$/.test(value)) {
      throw new Error('must be lowercase letters and digits, starting with a letter, at most 20');
    }
  },
});

function isHttpUrl(value: string): boolean {
  return URL.canParse(value) && ['http:', 'https:'].includes(new URL(value).protocol);
}

/** The service's non-secret settings, all from its environment, read once at start. */
export const settingsSchema = {
  appEnv: { doc: 'environment whose secrets the service reads', format: ['dev', 'staging', 'prod'], default: 'dev', env: 'APP_ENV' },
  appName: {
    doc: 'the application: its secrets are read from secret/data/<name>-project/<env>, its AppRole role, policy and ' +
      'database role are <name>-app-<env> (lowercase letters and digits, as scripts/lib/app-name.sh)',
    format: 'app-name', default: 'saas', env: 'APP_NAME',
  },
  port: { doc: 'HTTP port', format: 'strict-port', default: 3000, env: 'PORT' },
  adminPort: {
    doc: 'the operator\'s port: GET /status and GET /metrics, outside the traffic gate', format: 'strict-port', default: 3001,
    env: 'ADMIN_PORT',
  },
  adminHost: {
    doc: 'the address the operator\'s port listens on; loopback unless a scraper must reach it', format: String,
    default: '127.0.0.1', env: 'ADMIN_HOST',
  },
  adminTokenFile: {
    doc: 'a file holding the bearer token the operator\'s port asks for; empty: none asked', format: String, default: '',
    env: 'ADMIN_TOKEN_FILE',
  },
  secretsMode: {
    doc: 'how secrets arrive: agent (rendered file), sdk (AppRole login), auto',
    format: ['agent', 'sdk', 'auto'], default: 'agent', env: 'SECRETS_MODE',
  },
  secretsFile: { doc: 'the file Vault Agent renders', format: String, default: '/vault/secrets/app.json', env: 'SECRETS_FILE' },
  vaultAddr: { doc: 'Vault address (SDK mode, token checks)', format: 'http-url-or-empty', default: '', env: 'VAULT_ADDR' },
  vaultNamespace: {
    doc: 'the Vault namespace the application lives in (OpenBao, Vault Enterprise); empty: the root namespace',
    format: 'vault-namespace', default: '', env: 'VAULT_NAMESPACE',
  },
  vaultCaCert: {
    doc: 'CA certificate (PEM file) that Vault\'s TLS certificate chains to; empty: the system CAs', format: String,
    default: '', env: 'VAULT_CACERT',
  },
  vaultSkipVerify: {
    doc: 'true turns off the verification of Vault\'s TLS certificate (never in production); a warning is logged at start',
    format: 'true-or-false', default: false, env: 'VAULT_SKIP_VERIFY',
  },
  vaultTokenFile: {
    doc: 'the agent\'s token sink', format: String, default: '/vault/secrets/token', env: 'VAULT_TOKEN_FILE',
  },
  vaultConnectTimeoutMs: {
    doc: 'how long start-up retries an unreachable or sealed Vault (a duration: ms, or 250ms, 10s, 5m, 1h)',
    format: 'positive-duration', default: 30_000, env: 'VAULT_CONNECT_TIMEOUT_MS',
  },
  vaultRequestTimeoutMs: {
    doc: 'timeout of one call to Vault (a duration)', format: 'positive-duration', default: 5000, env: 'VAULT_REQUEST_TIMEOUT_MS',
  },
  tokenCheckMaxIntervalMs: {
    doc: 'longest time between two token checks (a duration, at least 100 ms): a revoked token halts traffic within ' +
      'it (the kill switch); 0: two thirds of the remaining TTL decides', format: 'interval',
    default: 10_000, env: 'TOKEN_CHECK_MAX_INTERVAL_MS',
  },
  databaseCredentials: {
    doc: 'how the PostgreSQL credentials are held: kv (a static user in secret/data/<app>-project/<env>/database) or ' +
      'dynamic (short-lived users from database/creds/<app>-app-<env>, under a lease)',
    format: ['kv', 'dynamic'], default: 'kv', env: 'DATABASE_CREDENTIALS',
  },
  secretsRereadIntervalMs: {
    doc: 'SDK mode: how often the KV secrets are read again (a duration, at least 100 ms); 0: the agent\'s render ' +
      'interval for APP_ENV (dev 5 s, staging 1 min, prod 5 min)', format: 'interval', default: 0, env: 'SECRETS_REREAD_INTERVAL_MS',
  },
  databaseHost: { doc: 'PostgreSQL host', format: String, default: '127.0.0.1', env: 'DATABASE_HOST' },
  databasePort: { doc: 'PostgreSQL port', format: 'strict-port', default: 5432, env: 'DATABASE_PORT' },
  databaseName: { doc: 'PostgreSQL database', format: String, default: 'saas', env: 'DATABASE_NAME' },
  databaseSslMode: {
    doc: 'TLS to PostgreSQL: disable (clear, the local stack) or verify-full (TLS, the certificate checked against ' +
      'DATABASE_CA_FILE and DATABASE_HOST)', format: ['disable', 'verify-full'], default: 'disable', env: 'DATABASE_SSL_MODE',
  },
  databaseCaFile: {
    doc: 'the CA certificate (PEM file) PostgreSQL\'s certificate must chain to; required by verify-full, refused by disable',
    format: String, default: '', env: 'DATABASE_CA_FILE',
  },
  webhookUrl: {
    doc: 'where project events are POSTed, HMAC-signed (empty: no webhooks)', format: String, default: '',
    env: 'WEBHOOK_URL',
  },
  trustedProxies: {
    doc: 'the proxies (addresses or CIDR blocks, comma-separated) whose X-Forwarded-Proto: https marks a request as ' +
      'over TLS, so its session cookie is Secure; empty: none, only the connection itself counts',
    format: 'proxy-list', default: [] as string[], env: 'TRUSTED_PROXIES',
  },
  oidcIssuerUrl: {
    doc: 'the OpenID Connect issuer users sign in with (its discovery document is at <url>/.well-known/openid-configuration); ' +
      'empty: no sign-in, /auth/login answers 503', format: 'http-url-or-empty', default: '', env: 'OIDC_ISSUER_URL',
  },
  oidcCaFile: {
    doc: 'the CA certificate (PEM file) the issuer\'s TLS certificate chains to; empty: the system CAs', format: String,
    default: '', env: 'OIDC_CA_FILE',
  },
  oidcRedirectUrl: {
    doc: 'the service\'s /auth/callback as the browser reaches it, registered at the issuer; https, or http on a loopback ' +
      'host in dev', format: 'http-url-or-empty', default: '', env: 'OIDC_REDIRECT_URL',
  },
  oidcScopes: {
    doc: 'the scopes the sign-in asks for, space-separated, openid among them', format: 'oidc-scopes', default: 'openid tenant',
    env: 'OIDC_SCOPES',
  },
  oidcTenantClaim: {
    doc: 'the ID token claim naming the user\'s tenant', format: 'claim-name', default: 'tenant', env: 'OIDC_TENANT_CLAIM',
  },
  sessionIdleTimeoutMs: {
    doc: 'a session unused this long ends (a duration), checked by the server', format: 'positive-duration',
    default: 1_800_000, env: 'SESSION_IDLE_TIMEOUT_MS',
  },
  sessionAbsoluteTimeoutMs: {
    doc: 'a session ends this long after its sign-in, used or not (a duration), checked by the server',
    format: 'positive-duration', default: 28_800_000, env: 'SESSION_ABSOLUTE_TIMEOUT_MS',
  },
  tenantRequestsPerSecond: {
    doc: 'the API requests one tenant may make per second on each replica (bursts up to twice that); beyond it, 429 rate_limited',
    format: 'positive-count', default: 20, env: 'TENANT_REQUESTS_PER_SECOND',
  },
  tenantProjectQuota: {
    doc: 'the most projects one tenant may hold; a create beyond it answers 409 quota_exceeded',
    format: 'positive-count', default: 1000, env: 'TENANT_PROJECT_QUOTA',
  },
  secretsWaitMs: {
    doc: 'how long start-up waits for the first valid render (a duration)', format: 'positive-duration', default: 30_000,
    env: 'SECRETS_WAIT_MS',
  },
  logLevel: {
    doc: 'pino log level', format: ['trace', 'debug', 'info', 'warn', 'error', 'fatal'], default: 'info', env: 'LOG_LEVEL',
  },
  drainDelayMs: {
    doc: 'after SIGTERM, how long the service keeps serving while /readyz answers 503, so load balancers take it ' +
      'out before it stops accepting (a duration; 0: stop accepting at once)', format: 'duration', default: 5000,
    env: 'DRAIN_DELAY_MS',
  },
};

export interface Settings {
  readonly appEnv: 'dev' | 'staging' | 'prod';
  readonly appName: string;
  readonly port: number;
  readonly adminPort: number;
  readonly adminHost: string;
  readonly adminTokenFile: string;
  readonly secretsMode: 'agent' | 'sdk' | 'auto';
  readonly secretsFile: string;
  readonly vaultAddr: string;
  readonly vaultNamespace: string;
  readonly vaultCaCert: string;
  readonly vaultSkipVerify: boolean;
  readonly vaultTokenFile: string;
  readonly vaultConnectTimeoutMs: number;
  readonly vaultRequestTimeoutMs: number;
  readonly tokenCheckMaxIntervalMs: number;
  readonly databaseCredentials: 'kv' | 'dynamic';
  readonly secretsRereadIntervalMs: number;
  readonly databaseHost: string;
  readonly databasePort: number;
  readonly databaseName: string;
  readonly databaseSslMode: 'disable' | 'verify-full';
  readonly databaseCaFile: string;
  readonly webhookUrl: string;
  readonly trustedProxies: readonly string[];
  readonly oidcIssuerUrl: string;
  readonly oidcCaFile: string;
  readonly oidcRedirectUrl: string;
  readonly oidcScopes: string;
  readonly oidcTenantClaim: string;
  readonly sessionIdleTimeoutMs: number;
  readonly sessionAbsoluteTimeoutMs: number;
  readonly tenantRequestsPerSecond: number;
  readonly tenantProjectQuota: number;
  readonly secretsWaitMs: number;
  readonly logLevel: string;
  readonly drainDelayMs: number;
}

/**
 * The agent's static_secret_render_interval in agent-config/env/<env>.hcl, which SDK mode
 * follows by default so both modes see a rotation after the same time.
 */
export const renderIntervalMs: Readonly<Record<Settings['appEnv'], number>> = { dev: 5000, staging: 60_000, prod: 300_000 };

/** SECRETS_REREAD_INTERVAL_MS, or the agent's render interval for APP_ENV when it is 0. */
export function rereadIntervalMs(settings: Pick<Settings, 'appEnv' | 'secretsRereadIntervalMs'>): number {
  return settings.secretsRereadIntervalMs > 0 ? settings.secretsRereadIntervalMs : renderIntervalMs[settings.appEnv];
}

// Convict's own messages name the schema key (appEnv) and echo the value; people set APP_ENV.
const durations = 'a whole number of milliseconds, or one with a unit: 250ms, 10s, 5m, 1h (at most 2147483647 ms)';
const requirements: Partial<Record<string, string>> = {
  'strict-port': 'must be a port number from 0 to 65535',
  'positive-count': 'must be a whole number from 1 to 999999999',
  'proxy-list': 'must be IP addresses or CIDR blocks, comma-separated (10.0.0.0/8,::1), or empty',
  'positive-duration': `must be a duration above 0: ${durations}`,
  duration: `must be a duration, 0 or more: ${durations}`,
  interval: `must be 0 or a duration of at least ${minIntervalMs} ms: ${durations}`,
  'http-url-or-empty': 'must be an http:// or https:// URL, or empty',
  'true-or-false': 'must be true or false',
  'vault-namespace': 'must be namespace names (letters, digits, _ and -) joined by /, at most 128 characters, or empty',
  'app-name': 'must be lowercase letters and digits, starting with a letter, at most 20',
  'oidc-scopes': 'must be scope names separated by single spaces, openid among them',
  'claim-name': 'must be a claim name: a letter or _, then up to 99 letters, digits or _ . : / -',
};

function requirement(format: unknown): string {
  if (Array.isArray(format)) return `must be one of ${format.join(', ')}`;
  return (typeof format === 'string' ? requirements[format] : undefined) ?? 'is invalid';
}

type Entry = (typeof settingsSchema)[keyof typeof settingsSchema];

/** Settings valid alone that make no sense together. */
function combinationProblems(env: NodeJS.ProcessEnv): string[] {
  return [...databaseTlsProblems(env), ...signInProblems(env), ...adminPortProblems(env)];
}

/**
 * Outside dev, an operator's port any other host can reach asks for a token: /status names
 * files, paths and Vault's own words, /metrics the service's state.
 */
function adminPortProblems(env: NodeJS.ProcessEnv): string[] {
  const host = env.ADMIN_HOST ?? '127.0.0.1';
  const loopback = ['127.0.0.1', '::1', 'localhost'].includes(host) || host.startsWith('127.');
  if (loopback || (env.APP_ENV ?? 'dev') === 'dev' || (env.ADMIN_TOKEN_FILE ?? '') !== '') return [];
  return [`ADMIN_TOKEN_FILE must be set when ADMIN_HOST is not loopback (${host}) outside APP_ENV=dev: any host that ` +
    'reaches the operator\'s port would read /status and /metrics'];
}

const loopbackHosts = new Set(['localhost', '127.0.0.1', '[::1]']);

/**
 * The issuer and the redirect go together. The redirect is where the session cookie is set:
 * https, or plain http on a loopback host in dev (the cookie never crosses a network in clear).
 * A plain-http issuer is dev's (Vault's dev server) and nowhere else's.
 */
function signInProblems(env: NodeJS.ProcessEnv): string[] {
  const issuer = env.OIDC_ISSUER_URL ?? '';
  const redirect = env.OIDC_REDIRECT_URL ?? '';
  if (!(issuer === '' || isHttpUrl(issuer)) || !(redirect === '' || isHttpUrl(redirect))) return []; // named on their own
  if ((issuer === '') !== (redirect === '')) return ['OIDC_ISSUER_URL and OIDC_REDIRECT_URL go together: set both, or neither'];
  if (issuer === '') return [];
  const dev = (env.APP_ENV ?? 'dev') === 'dev';
  const problems: string[] = [];
  const redirectUrl = new URL(redirect);
  if (redirectUrl.pathname !== '/auth/callback' || redirectUrl.search !== '' || redirectUrl.hash !== '') {
    problems.push('OIDC_REDIRECT_URL must be the service\'s /auth/callback, with no query: https://<host>/auth/callback');
  }
  if (redirectUrl.protocol === 'http:' && !(dev && loopbackHosts.has(redirectUrl.hostname))) {
    problems.push('OIDC_REDIRECT_URL must be https, or http on a loopback host (localhost, 127.0.0.1, [::1]) with APP_ENV=dev');
  }
  if (new URL(issuer).protocol === 'http:' && !dev) problems.push('OIDC_ISSUER_URL must be https outside APP_ENV=dev');
  return problems;
}

function databaseTlsProblems(env: NodeJS.ProcessEnv): string[] {
  if (![undefined, 'disable', 'verify-full'].includes(env.DATABASE_SSL_MODE)) return []; // named on its own already
  const verify = env.DATABASE_SSL_MODE === 'verify-full';
  const caFile = env.DATABASE_CA_FILE ?? '';
  if (verify && caFile === '') return ['DATABASE_CA_FILE must name the CA certificate (PEM) when DATABASE_SSL_MODE is verify-full'];
  // A CA given with TLS off is a forgotten mode, not a choice: refused rather than talking in clear.
  if (!verify && caFile !== '') return ['DATABASE_CA_FILE is set but DATABASE_SSL_MODE is not verify-full: set both, or neither'];
  return [];
}

/** One sentence per invalid variable, naming it and what it must be, never its value. */
export function settingProblems(env: NodeJS.ProcessEnv): string[] {
  return [...singleProblems(env), ...combinationProblems(env)];
}

function singleProblems(env: NodeJS.ProcessEnv, keys: readonly (keyof Settings)[] = settingKeys): string[] {
  return keys.map((key): [string, Entry] => [key, settingsSchema[key]]).flatMap(([key, entry]) => {
    // Convict stays the validator; checking each setting alone tells which ones failed.
    const single = convict({ [key]: entry }, { env, args: [] });
    try {
      single.validate({ allowed: 'strict' });
      return [];
    } catch {
      return [`${entry.env} ${requirement(entry.format)}`];
    }
  });
}

const settingKeys = Object.keys(settingsSchema) as (keyof Settings)[];

/**
 * Some of the settings, for a process that needs only those (the schema Job): the same
 * variables, formats, defaults and messages as readSettings, and the database's TLS pair checked
 * together when both are asked for; any other variable is ignored.
 */
export function readSomeSettings<K extends keyof Settings>(keys: readonly K[], env: NodeJS.ProcessEnv): Pick<Settings, K> {
  const tls = keys.includes('databaseSslMode' as K) && keys.includes('databaseCaFile' as K) ? databaseTlsProblems(env) : [];
  const problems = [...singleProblems(env, keys), ...tls];
  if (problems.length > 0) throw new Error(problems.join('; '));
  const config = convict(Object.fromEntries(keys.map((key) => [key, settingsSchema[key]])), { env, args: [] });
  config.validate({ allowed: 'strict' });
  return Object.freeze(config.getProperties()) as Pick<Settings, K>;
}

/** Throws naming every invalid environment variable and what it must be. */
export function readSettings(env: NodeJS.ProcessEnv): Settings {
  const problems = settingProblems(env);
  if (problems.length > 0) throw new Error(problems.join('; '));
  const config = convict(settingsSchema, { env, args: [] });
  config.validate({ allowed: 'strict' });
  return Object.freeze(config.getProperties()) as Settings;
}
