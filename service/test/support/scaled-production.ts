import { randomBytes } from 'node:crypto';
import { mkdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { serverBin, baoEnv, repoRoot } from './bao.js';
import { cliAs as bao, generateTls, runScript, startServerNode, waitForActive, type ServerNode, type Tls } from './bao-server.js';
import { registerSecret } from './leak-scan.js';
import { startTestPostgres, type TestPostgres } from './postgres.js';
import { addIdentityProviderAfterBootstrap } from './production-identity.js';
import { spawnManaged, type ManagedProcess } from './processes.js';
import { startService, type ServiceProcess } from './service.js';
import {
  asDuration, scaleDurations, shippedProduction, type ProductionCounts, type ProductionDurations,
} from './shipped-durations.js';
import { tlsRedirectUrl, type IdentityProvider } from './sign-in.js';
import { tempDir } from './temp-dirs.js';

/**
 * A process that is started again whenever it exits, as `restart: unless-stopped` does, until
 * `stop`. `pause`/`resume` stop it without a restart (an outage an operator caused).
 */
export class Supervised {
  process: ManagedProcess;
  starts = 1;
  #wanted = true;
  readonly #launch: () => ManagedProcess;

  constructor(launch: () => ManagedProcess) {
    this.#launch = launch;
    this.process = this.#watch(launch());
  }

  #watch(proc: ManagedProcess): ManagedProcess {
    void proc.exited.then(() => {
      // Docker's restart policy waits 100 ms before the first restart.
      if (this.#wanted) setTimeout(() => { if (this.#wanted) { this.starts++; this.process = this.#watch(this.#launch()); } }, 100);
    });
    return proc;
  }

  /** SIGKILL, as `docker kill` does; the supervisor brings it back. */
  async kill(): Promise<void> {
    await this.process.stop('SIGKILL');
  }

  async pause(): Promise<void> {
    this.#wanted = false;
    await this.process.stop();
  }

  resume(): void {
    this.#wanted = true;
    this.starts++;
    this.process = this.#watch(this.#launch());
  }

  async stop(): Promise<void> {
    this.#wanted = false;
    await this.process.stop();
  }
}

/**
 * Test harness only: what the soak's operator does by hand (seal, rotate or delete KV), what
 * scripts/kubernetes-auth.sh needs (enable and configure an auth method: a root token's work,
 * which the admin policy leaves out), and what the Kubernetes tests look up (a lease, a token's
 * HMAC as the audit device "file" logs it); production keeps no such token.
 */
const harnessPolicy = `
path "sys/seal" { capabilities = ["update", "sudo"] }
path "secret/data/saas-project/prod/*" { capabilities = ["create", "update", "read", "delete"] }
path "sys/leases/lookup" { capabilities = ["update"] }
path "sys/audit-hash/file" { capabilities = ["update"] }
path "sys/auth/kubernetes" { capabilities = ["create", "read", "update", "sudo"] }
path "auth/kubernetes/*" { capabilities = ["create", "read", "update"] }
path "sys/policies/acl/saas-app-prod" { capabilities = ["read"] }
`;

/** Vault and PostgreSQL as production runs them, every shipped duration divided by `factor`. */
export interface ScaledVault {
  readonly factor: number;
  readonly shipped: ProductionDurations;
  readonly durations: ProductionDurations;
  readonly counts: ProductionCounts;
  readonly tls: Tls;
  readonly node: ServerNode;
  readonly pg: TestPostgres;
  /** first-bootstrap.sh's AppRole credentials and the orchestrator's token (the courier's inputs). */
  readonly credentialsDir: string;
  readonly orchestratorTokenFile: string;
  /** A token for the harness's own acts: seal, KV writes. */
  readonly harnessToken: string;
  /** The admin's token (userpass), as the operator configures engines and auth methods with it. */
  readonly adminToken: string;
  /** The custodians' unseal keys: unseal() gives the threshold; with the admin, they regenerate a root token. */
  readonly unsealKeys: readonly string[];
  unseal(): Promise<void>;
  stop(): Promise<void>;
}

export interface ScaledProduction extends ScaledVault {
  readonly agent: Supervised;
  readonly courier: Supervised;
  readonly service: ServiceProcess;
  readonly renderedFile: string;
  /**
   * Vault's OpenID Connect provider the service signs users in with (https issuer and
   * redirect, as prod requires): sign in with the header X-Forwarded-Proto: https, as the
   * service's TLS proxy would send, which the service trusts from loopback (TRUSTED_PROXIES).
   */
  readonly identity: IdentityProvider;
}

function must(what: string, result: { code: number; stderr: string }): void {
  if (result.code !== 0) throw new Error(`${what} failed (${result.code}): ${result.stderr.trim()}`);
}

/** The duration settings of agent-config/'s files, and which of ProductionDurations each holds. */
const agentSettings = { min_backoff: 'minBackoff', max_backoff: 'maxBackoff', static_secret_render_interval: 'renderInterval' } as const;

/**
 * An agent configuration file of agent-config/ with only its durations divided: `names`, the
 * settings it must set (env/prod.hcl: all three; kubernetes.hcl: the login backoff). Throws
 * naming one it does not set, so a renamed setting cannot be left at its shipped value.
 */
export async function scaledAgentFile(file: string, d: ProductionDurations, names: readonly (keyof typeof agentSettings)[]): Promise<string> {
  let text = await readFile(join(repoRoot, 'agent-config', file), 'utf8');
  for (const name of names) {
    const pattern = new RegExp(`${name}\\s*=\\s*"[^"]+"`);
    if (!pattern.test(text)) throw new Error(`agent-config/${file}: ${name} not found`);
    text = text.replace(pattern, `${name} = "${asDuration(d[agentSettings[name]])}"`);
  }
  return text;
}

/** agent-config/ with only its durations divided (scaledAgentFile). */
async function scaledAgentConfig(dir: string, d: ProductionDurations): Promise<void> {
  await mkdir(join(dir, 'config/env'), { recursive: true });
  await symlink(join(repoRoot, 'agent-config/secrets.json.ctmpl'), join(dir, 'config/secrets.json.ctmpl'));
  await symlink(join(repoRoot, 'agent-config/agent.hcl'), join(dir, 'config/agent.hcl'));
  await writeFile(join(dir, 'config/env/prod.hcl'),
    await scaledAgentFile('env/prod.hcl', d, ['min_backoff', 'max_backoff', 'static_secret_render_interval']));
}

/**
 * A non-dev bao (Raft, TLS, audit) initialised and unsealed by the operator scripts,
 * first-bootstrap.sh (single-use secret ids, root revoked), and the admin's database-engine.sh
 * on a real PostgreSQL, with every shipped duration divided by `factor`. `tlsNames`: names the
 * server's certificate carries besides localhost and 127.0.0.1.
 */
export async function startScaledVault(factor: number, tlsNames: readonly string[] = []): Promise<ScaledVault> {
  const { durations: shipped, counts } = await shippedProduction();
  const d = scaleDurations(shipped, factor);
  const tls = await generateTls(...tlsNames);
  const [node, pg] = await Promise.all([startServerNode(tls), startTestPostgres()]);

  // The operators: init (keys to a private file), unseal with the threshold.
  const initFile = join(await tempDir('init'), 'init.json');
  must('operator-init.sh', await runScript('scripts/prod/operator-init.sh', [initFile, '3', '2'], node.cliEnv()));
  const init = JSON.parse(await readFile(initFile, 'utf8')) as { unseal_keys_b64: string[]; root_token: string };
  const unseal = async () => {
    must('unseal.sh', await runScript('scripts/prod/unseal.sh', [], node.cliEnv(), init.unseal_keys_b64.join('\n') + '\n'));
  };
  await unseal();
  await waitForActive(node, tls);
  must('harness policy', await bao(node, init.root_token, ['policy', 'write', 'soak-harness', '-'], harnessPolicy));
  const created = await bao(node, init.root_token, ['token', 'create', '-orphan', '-policy=soak-harness', '-field=token']);
  must('harness token', created);
  const harnessToken = created.stdout.trim();
  registerSecret('soak harness token', harnessToken);

  // PostgreSQL as the DBA prepares it: saas_app_owner and vault_admin (postgres-init.sh).
  const vaultAdminPassword = randomBytes(24).toString('hex');
  registerSecret('soak vault_admin initial password', vaultAdminPassword);
  await pg.provisionFiles({ 'vault-admin-password': vaultAdminPassword });

  // The first bootstrap with the shipped settings, every duration divided by the factor.
  const credentialsDir = join(await tempDir('credentials'), 'approle');
  const orchestratorTokenFile = join(await tempDir('orchestrator'), 'token');
  const adminPassword = randomBytes(24).toString('hex');
  registerSecret('soak admin password', adminPassword);
  const secrets = await tempDir('operator');
  const adminPasswordFile = join(secrets, 'admin-password');
  await writeFile(adminPasswordFile, `${adminPassword}\n`, { mode: 0o600 });
  must('first-bootstrap.sh', await runScript('scripts/prod/first-bootstrap.sh', ['prod', credentialsDir, orchestratorTokenFile], node.cliEnv({
    ADMIN_PASSWORD_FILE: adminPasswordFile,
    ROLE_TOKEN_TTL: asDuration(d.tokenTtl), ROLE_TOKEN_MAX_TTL: asDuration(d.tokenMaxTtl), ROLE_SECRET_ID_TTL: asDuration(d.secretIdTtl),
    SECRET_ID_WRAP_TTL: asDuration(d.firstWrapTtl), ORCHESTRATOR_TOKEN_PERIOD: asDuration(d.orchestratorPeriod),
  }), `${init.root_token}\n`));

  // The admin (root is gone) sets up the database engine.
  const login = await bao(node, '', ['login', '-method=userpass', '-token-only', 'username=admin', 'password=-'], adminPassword);
  must('admin login', login);
  const adminToken = login.stdout.trim();
  registerSecret('soak admin token', adminToken);
  const adminPasswordForPg = join(secrets, 'vault-admin-password');
  await writeFile(adminPasswordForPg, `${vaultAdminPassword}\n`, { mode: 0o600 });
  must('database-engine.sh', await runScript('scripts/database-engine.sh', ['prod'], node.cliEnv({
    VAULT_TOKEN: adminToken, DATABASE_ADDRESS: `127.0.0.1:${pg.layout.port}`, DATABASE_ADMIN_PASSWORD_FILE: adminPasswordForPg,
    DB_CREDS_TTL: asDuration(d.leaseTtl), DB_CREDS_MAX_TTL: asDuration(d.leaseMaxTtl),
  })));

  return {
    factor, shipped, durations: d, counts, tls, node, pg, credentialsDir, orchestratorTokenFile, harnessToken, adminToken,
    unsealKeys: init.unseal_keys_b64, unseal,
    async stop() {
      await node.stop();
      await pg.stop();
    },
  };
}

/**
 * The production topology of docker-compose.prod.yml as processes, with every shipped duration
 * divided by `factor`: startScaledVault's Vault and PostgreSQL, the agent from agent-config/
 * and the courier (deliver-secret-ids.sh), each restarted when it exits, and the service in
 * agent mode with dynamic credentials.
 */
export async function startScaledProduction(factor: number): Promise<ScaledProduction> {
  const vault = await startScaledVault(factor);
  const { durations: d, tls, node, pg, credentialsDir, orchestratorTokenFile } = vault;
  // The sign-in's issuer, before the agent's first render: Vault's own provider, made with a
  // root token regenerated for it and revoked at once (the root token is gone since the bootstrap).
  const identity = await addIdentityProviderAfterBootstrap(node, vault.adminToken, vault.unsealKeys, tlsRedirectUrl,
    { appEnv: 'prod', caFile: tls.ca });
  // That took a while, and first-bootstrap.sh's wrapped secret id lives firstWrapTtl (10 s at
  // 1/30): a fresh one for the agent's first login, as the courier would drop it.
  const orchestratorToken = (await readFile(orchestratorTokenFile, 'utf8')).trim();
  must('issue-wrapped-secret-id.sh', await runScript('scripts/prod/issue-wrapped-secret-id.sh', [join(credentialsDir, 'secret-id')],
    node.cliEnv({ VAULT_TOKEN: orchestratorToken, WRAP_TTL: asDuration(d.wrapTtl), APP_ENV: 'prod' })));
  // The agent and the courier, each restarted when it exits (the compose restart policy).
  const agentDir = await tempDir('agent');
  await scaledAgentConfig(agentDir, d);
  await symlink(credentialsDir, join(agentDir, 'credentials'));
  await mkdir(join(agentDir, 'secrets'), { mode: 0o750 });
  const agent = new Supervised(() => spawnManaged(serverBin, ['agent', '-config=config/agent.hcl', '-config=config/env/prod.hcl'], {
    cwd: agentDir, logFile: join(agentDir, 'agent.log'),
    env: baoEnv(agentDir, { VAULT_ADDR: node.addr, VAULT_CACERT: tls.ca, APP_ENV: 'prod', DATABASE_CREDENTIALS: 'dynamic' }),
  }));
  const courierDir = await tempDir('courier');
  const courier = new Supervised(() => spawnManaged('sh', [join(repoRoot, 'scripts/prod/deliver-secret-ids.sh'), credentialsDir, orchestratorTokenFile], {
    cwd: courierDir, logFile: join(courierDir, 'courier.log'),
    env: node.cliEnv({
      DELIVERY_INTERVAL: asDuration(d.deliveryInterval), SECRET_ID_MAX_AGE: asDuration(d.secretIdMaxAge), WRAP_TTL: asDuration(d.wrapTtl),
      ORCHESTRATOR_RENEW_INTERVAL: asDuration(d.orchestratorRenewInterval), APP_ENV: 'prod',
    }),
  }));

  const renderedFile = join(agentDir, 'secrets/app.json');
  const service = await startService({
    SECRETS_MODE: 'agent', APP_ENV: 'prod', DATABASE_CREDENTIALS: 'dynamic', VAULT_ADDR: node.addr, VAULT_CACERT: tls.ca,
    SECRETS_FILE: renderedFile, VAULT_TOKEN_FILE: join(agentDir, 'secrets/token'),
    DATABASE_HOST: '127.0.0.1', DATABASE_PORT: String(pg.layout.port),
    TOKEN_CHECK_MAX_INTERVAL_MS: String(d.checkInterval), TRUSTED_PROXIES: '127.0.0.1', ...identity.serviceEnv,
  });
  return {
    ...vault, agent, courier, service, renderedFile, identity,
    async stop() {
      await service.process.stop();
      await agent.stop();
      await courier.stop();
      await vault.stop();
    },
  };
}

