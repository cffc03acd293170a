import { spawn, type ChildProcess } from 'node:child_process';
import { chmod, chown, mkdir, open, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { repoRoot, run } from '../engine/engine.js';
import { freePort } from '../stack/ports.js';
import { ensurePostgres, initPostgres, postgresCommand, provisionAppRole, serverUser, waitForPostgres, type PostgresLayout } from '../stack/postgres.js';
import { vaultInCluster } from './app-deploy.js';
import { ClusterError } from './paths.js';

/*
 * npm run k8s:up's Vault and PostgreSQL, on the host's loopback as the local stack runs them
 * (scripts/stack/), with what the shipped manifests ask of them: TLS with certificates for the
 * names the pods dial (vault.vault.svc, postgres.saas.svc; scripts/prod/generate-tls.sh), and
 * Vault set up for prod by the scripts compose runs (compose-vault-init.sh: bootstrap.sh, the
 * PostgreSQL credentials, the demo sign-in, then the database engine). Vault is a dev server
 * (in memory, its root token in its HOME, as the local stack's) with one more listener, over
 * TLS: a newcomer's cluster, not production (README: Production).
 */

export interface UpServers {
  readonly vault: { readonly port: number; readonly caFile: string; readonly cliEnv: NodeJS.ProcessEnv; readonly token: string };
  readonly postgres: { readonly port: number; readonly caFile: string };
  /** Where the demo users' passwords are (demo-identity.sh). */
  readonly demoUsersDir: string;
  readonly pids: readonly number[];
  stop(): Promise<void>;
}

async function must(what: string, command: string, args: readonly string[], env: NodeJS.ProcessEnv, logFile: string): Promise<string> {
  const result = await run(command, args, { env });
  await writeFile(logFile, `${result.stdout}${result.stderr}`);
  if (result.code !== 0) throw new ClusterError(`${what} failed: ${result.stderr.trim().split('\n').at(-1) ?? ''} (log: ${logFile})`);
  return result.stdout.trim();
}

async function until(what: string, seconds: number, child: ChildProcess, check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + seconds * 1000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new ClusterError(`${what}: its process exited (${child.exitCode})`);
    if (await check().catch(() => false)) return;
    await sleep(200);
  }
  throw new ClusterError(`${what} within ${seconds} s`);
}

/** Starts both in `dir` (emptied by the caller), each process detached: stop() ends them. */
export async function startUpServers(dir: string, redirectUrl: string, say: (line: string) => void): Promise<UpServers> {
  const logs = join(dir, 'logs');
  await mkdir(logs, { recursive: true });
  // PostgreSQL runs as its own user when this runs as root: it must reach its folders.
  await chmod(dir, 0o755);
  const children: ChildProcess[] = [];
  const stop = async () => {
    for (const child of children.reverse()) {
      if (child.exitCode !== null || child.signalCode !== null) continue;
      const exited = new Promise((resolvePromise) => { child.once('exit', resolvePromise); });
      child.kill('SIGTERM');
      if (!await Promise.race([exited.then(() => true), sleep(15_000).then(() => false)])) child.kill('SIGKILL');
    }
  };
  const start = async (name: string, command: string, args: readonly string[], env: NodeJS.ProcessEnv, user?: { uid: number; gid: number }) => {
    const log = await open(join(logs, `${name}.log`), 'a');
    const child = spawn(command, args, { env, detached: true, stdio: ['ignore', log.fd, log.fd], ...user });
    await log.close();
    children.push(child);
    return child;
  };
  try {
    const bao = (await run('sh', [join(repoRoot, 'scripts/install-openbao.sh')])).stdout.trim();
    const tls = join(dir, 'vault-tls');
    const pgTls = join(dir, 'postgres-tls');
    for (const [folder, names] of [[tls, ['localhost', '127.0.0.1', 'vault.vault.svc']], [pgTls, ['postgres.saas.svc']]] as const) {
      await mkdir(folder, { recursive: true });
      await must('scripts/prod/generate-tls.sh', 'sh', [join(repoRoot, 'scripts/prod/generate-tls.sh'), folder, ...names], process.env, join(logs, 'generate-tls.log'));
    }

    const [port, clusterPort, devPort] = [await freePort(), await freePort(), await freePort()];
    const home = join(dir, 'home');
    await mkdir(home, { recursive: true, mode: 0o700 });
    await writeFile(join(dir, 'listener.hcl'), `listener "tcp" {
  address         = "127.0.0.1:${port}"
  cluster_address = "127.0.0.1:${clusterPort}"
  tls_cert_file   = "${join(tls, 'server.pem')}"
  tls_key_file    = "${join(tls, 'server-key.pem')}"
}
`);
    const addr = `https://127.0.0.1:${port}`;
    const cliEnv = { PATH: process.env.PATH, HOME: home, VAULT_ADDR: addr, VAULT_CACERT: join(tls, 'ca.pem'), VAULT_CLI: bao };
    // The dev server keeps its root token in its HOME: no token on any command line.
    const vault = await start('vault', bao, ['server', '-dev', `-dev-listen-address=127.0.0.1:${devPort}`, `-config=${join(dir, 'listener.hcl')}`], cliEnv);
    await until('Vault did not answer', 30, vault, async () => (await run(bao, ['status'], { env: cliEnv })).code === 0);
    const tokenFile = join(home, '.vault-token');
    await until('Vault wrote no root token', 30, vault, async () => (await readFile(tokenFile, 'utf8')).trim() !== '');
    const token = (await readFile(tokenFile, 'utf8')).trim();
    say(`vault        ${addr} (OpenBao dev server, TLS for vault.vault.svc)`);

    const pgInit = join(dir, 'pg-init');
    const demoUsersDir = join(dir, 'demo-users');
    const initEnv = {
      ...cliEnv, APP_ENV: 'prod', VAULT_TOKEN_FILE_PATH: tokenFile, CREDENTIALS_DIR: join(dir, 'credentials'), PG_INIT_DIR: pgInit,
      ORCHESTRATOR_DIR: join(dir, 'orchestrator'), DEMO_USERS_DIR: demoUsersDir, OIDC_REDIRECT_URL: redirectUrl, ISSUER_ADDR: vaultInCluster,
    };
    for (const folder of [initEnv.CREDENTIALS_DIR, pgInit, initEnv.ORCHESTRATOR_DIR]) await mkdir(folder, { recursive: true, mode: 0o700 });
    await must('compose-vault-init.sh (bootstrap)', 'sh', [join(repoRoot, 'scripts/compose-vault-init.sh')], initEnv, join(logs, 'vault-init.log'));
    say('vault-init   bootstrap.sh prod, the PostgreSQL credentials, the demo sign-in (acme, globex)');

    const layout: PostgresLayout = {
      bindir: await ensurePostgres(), dataDir: join(dir, 'postgres/data'), socketDir: join(dir, 'postgres/socket'), port: await freePort(),
    };
    await initPostgres(layout);
    const user = await serverUser();
    // PostgreSQL's key is its own user's, 0600, or it refuses it.
    if (user !== undefined) await chown(join(pgTls, 'server-key.pem'), user.uid, user.gid);
    await chmod(join(pgTls, 'server-key.pem'), 0o600);
    const pg = postgresCommand(layout);
    const postgres = await start('postgres', pg.command, [...pg.args,
      '-c', 'ssl=on', '-c', `ssl_cert_file=${join(pgTls, 'server.pem')}`, '-c', `ssl_key_file=${join(pgTls, 'server-key.pem')}`,
    ], { PATH: process.env.PATH }, user);
    await until('PostgreSQL did not answer', 30, postgres, async () => { await waitForPostgres(layout, 1000); return true; });
    await provisionAppRole(layout, pgInit);
    say(`postgres     127.0.0.1:${layout.port} (TLS for postgres.saas.svc)`);

    await must('compose-vault-init.sh database', 'sh', [join(repoRoot, 'scripts/compose-vault-init.sh'), 'database'], {
      ...initEnv, DATABASE_CREDENTIALS: 'dynamic', DATABASE_ADDRESS: `127.0.0.1:${layout.port}`,
    }, join(logs, 'vault-db-init.log'));
    say('vault-db-init database engine ready (database/creds/saas-app-prod)');
    return {
      vault: { port, caFile: join(tls, 'ca.pem'), cliEnv, token },
      postgres: { port: layout.port, caFile: join(pgTls, 'ca.pem') },
      demoUsersDir,
      pids: children.map((child) => child.pid ?? 0),
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}
