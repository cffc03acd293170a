import { execFile } from 'node:child_process';
import { readFile, writeFile, mkdir } from 'node:fs/promises';
import { request } from 'node:https';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { serverBin, baoEnv, repoRoot } from './bao.js';
import { recordOutput } from './leak-scan.js';
import { freePort } from './ports.js';
import { spawnManaged, type ManagedProcess } from './processes.js';
import { tempDir } from './temp-dirs.js';

const run = promisify(execFile);

/** A throw-away CA and server certificate from scripts/prod/generate-tls.sh. */
export interface Tls {
  readonly dir: string;
  readonly ca: string;
}

/** A CA and a server certificate for localhost, 127.0.0.1 and any further names given. */
export async function generateTls(...names: string[]): Promise<Tls> {
  const dir = await tempDir('tls');
  await run('sh', [join(repoRoot, 'scripts/prod/generate-tls.sh'), dir, 'localhost', '127.0.0.1', ...names]);
  return { dir, ca: join(dir, 'ca.pem') };
}

/** One non-dev `bao server` running deploy/vault-server.hcl (or deploy/ha/<node>.hcl), moved to loopback ports and a temp folder. */
export interface ServerNode {
  readonly nodeId: string;
  readonly addr: string;
  readonly clusterAddr: string;
  readonly dir: string;
  /** The file audit device's log, on the node's data folder as in production. */
  readonly auditFile: string;
  process: ManagedProcess;
  /** Starts the process again on the same storage (after stop or a crash). */
  restart(): Promise<void>;
  stop(): Promise<void>;
  /** The environment a `bao` CLI child needs to talk to this node over TLS. */
  cliEnv(extra?: NodeJS.ProcessEnv): NodeJS.ProcessEnv;
}

/** Loopback ports for the nodes of deploy/ha/ (vault-1, vault-2, vault-3), chosen before any starts. */
export type ClusterPorts = ReadonlyMap<string, { readonly port: number; readonly clusterPort: number }>;

export async function reserveClusterPorts(nodeIds: readonly string[] = ['vault-1', 'vault-2', 'vault-3']): Promise<ClusterPorts> {
  const ports = new Map<string, { port: number; clusterPort: number }>();
  for (const id of nodeIds) ports.set(id, { port: await freePort(), clusterPort: await freePort() });
  return ports;
}

/**
 * Without `cluster`: deploy/vault-server.hcl. With it: deploy/ha/<nodeId>.hcl, the file an
 * operator runs on that node, retry_join blocks included. Only host names, ports and folders
 * are rewritten; a production path or host left over fails the start.
 */
export async function startServerNode(tls: Tls, nodeId = 'vault-1', cluster?: ClusterPorts): Promise<ServerNode> {
  const dir = await tempDir(`bao-${nodeId}`);
  await mkdir(join(dir, 'data'), { recursive: true });
  await mkdir(join(dir, 'audit'), { recursive: true, mode: 0o700 });
  const own = cluster?.get(nodeId) ?? { port: await freePort(), clusterPort: await freePort() };
  const addr = `https://127.0.0.1:${own.port}`;
  const clusterAddr = `https://127.0.0.1:${own.clusterPort}`;
  const source = cluster === undefined ? 'deploy/vault-server.hcl' : `deploy/ha/${nodeId}.hcl`;
  let config = (await readFile(join(repoRoot, source), 'utf8'))
    .replace(/^#.*\n/gm, '')
    // The audit device's options live in the cluster's replicated audit table: every node must
    // declare the same file_path, as in production. A path relative to the node's working
    // folder (dir) keeps it identical on all nodes and still on each node's own data folder.
    .replaceAll('"/vault/data/audit.log"', '"data/audit.log"')
    .replaceAll('"/vault/audit/audit.log"', '"audit/audit.log"')
    .replaceAll('"/vault/data', `"${join(dir, 'data')}`)
    .replace('"0.0.0.0:8200"', `"127.0.0.1:${own.port}"`)
    .replace('"0.0.0.0:8201"', `"127.0.0.1:${own.clusterPort}"`)
    .replaceAll('"/vault/tls/', `"${tls.dir}/`);
  if (cluster === undefined) {
    config = config
      .replace('"vault-1"', JSON.stringify(nodeId))
      .replace('"https://vault:8200"', JSON.stringify(addr))
      .replace('"https://vault:8201"', JSON.stringify(clusterAddr));
  } else {
    for (const [id, ports] of cluster) {
      config = config
        .replaceAll(`"https://${id}:8200"`, `"https://127.0.0.1:${ports.port}"`)
        .replaceAll(`"https://${id}:8201"`, `"https://127.0.0.1:${ports.clusterPort}"`);
    }
  }
  if (/"\/vault\/|https:\/\/vault/.test(config)) throw new Error(`${source}: a production path or host was not rewritten:\n${config}`);
  const configFile = join(dir, 'vault-server.hcl');
  await writeFile(configFile, config);
  // AUDIT_FILE_PATH, AUDIT_SECOND_FILE_PATH: where first-bootstrap.sh has HashiCorp Vault,
  // which ignores the config's audit blocks, write the same files over the API.
  const cliEnv = (extra: NodeJS.ProcessEnv = {}) => baoEnv(dir, {
    VAULT_ADDR: addr, VAULT_CACERT: tls.ca, VAULT_CLI: serverBin, AUDIT_FILE_PATH: 'data/audit.log',
    AUDIT_SECOND_FILE_PATH: 'audit/audit.log', ...extra,
  });
  const launch = () => spawnManaged(serverBin, ['server', `-config=${configFile}`], {
    env: baoEnv(dir), logFile: join(dir, 'server.log'), cwd: dir,
  });
  const node: ServerNode = {
    nodeId, addr, clusterAddr, dir, auditFile: join(dir, 'data/audit.log'), process: launch(), cliEnv,
    async restart() {
      node.process = launch();
      await waitForTls(`${addr}/v1/sys/health`, tls, node.process);
    },
    stop: async () => { await node.process.stop(); },
  };
  await waitForTls(`${addr}/v1/sys/health`, tls, node.process);
  return node;
}

/** GET over TLS trusting `tls.ca`; resolves with the status and parsed body. */
export function httpsGet(url: string, tls: Tls, token?: string): Promise<{ status: number; body: unknown }> {
  return new Promise((resolve, reject) => {
    void readFile(tls.ca).then((ca) => {
      const req = request(url, { ca, headers: token === undefined ? {} : { 'X-Vault-Token': token }, timeout: 3000 }, (res) => {
        let text = '';
        res.on('data', (chunk: Buffer) => { text += chunk.toString('utf8'); });
        res.on('end', () => { resolve({ status: res.statusCode ?? 0, body: text === '' ? undefined : JSON.parse(text) as unknown }); });
      });
      req.on('error', reject);
      req.on('timeout', () => { req.destroy(new Error('timeout')); });
      req.end();
    }, reject);
  });
}

/** Waits until the server answers at all (health answers 501 uninitialised, 503 sealed, 429 standby, 200 active). */
async function waitForTls(url: string, tls: Tls, proc: ManagedProcess, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = 'no answer';
  while (Date.now() < deadline) {
    if (proc.child.exitCode !== null) throw new Error(`bao server exited before answering:\n${await proc.log()}`);
    try {
      await httpsGet(url, tls);
      return;
    } catch (error) {
      last = (error as Error).message;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${url} did not answer within ${timeoutMs} ms (${last}):\n${await proc.log()}`);
}

/**
 * Waits until the node is the active one (health 200). Unsealed is not enough: a Raft node
 * elects itself leader a moment later, and a write before that fails with "internal error"
 * (a fresh clone's run saw one on the first policy write after unseal.sh).
 */
export async function waitForActive(node: ServerNode, tls: Tls, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = 0;
  while (Date.now() < deadline) {
    last = await httpsGet(`${node.addr}/v1/sys/health`, tls).then((answer) => answer.status, () => 0);
    if (last === 200) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${node.addr} was not the active node within ${timeoutMs} ms (health answered ${last}):\n${await node.process.log()}`);
}

/** Runs one of the repository's scripts with a `bao` CLI environment; resolves with its outcome. */
export function runScript(script: string, args: string[], env: NodeJS.ProcessEnv, stdin = ''):
  Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = execFile('sh', [join(repoRoot, script), ...args], { env, timeout: 60_000 }, (error, stdout, stderr) => {
      recordOutput(`${script} output`, `${stdout}\n${stderr}`);
      resolve({ code: error === null ? 0 : typeof error.code === 'number' ? error.code : 1, stdout, stderr });
    });
    // A script that exits without reading its input must not fail the test with EPIPE.
    child.stdin?.on('error', () => undefined);
    child.stdin?.end(stdin);
  });
}

/** A `bao` CLI call with a token, over TLS, the way an operator runs one. */
export function cliAs(node: ServerNode, token: string, args: string[], stdin = ''):
  Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = execFile(serverBin, args, { env: node.cliEnv({ VAULT_TOKEN: token }), timeout: 30_000 }, (error, stdout, stderr) => {
      resolve({ code: error === null ? 0 : typeof error.code === 'number' ? error.code : 1, stdout, stderr });
    });
    child.stdin?.on('error', () => undefined);
    child.stdin?.end(stdin);
  });
}
