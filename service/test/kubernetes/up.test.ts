import { expect } from 'chai';
import { spawn, type ChildProcess } from 'node:child_process';
import { chmod, readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { processesIn } from '../../../scripts/kubernetes/netns.js';
import { repoRoot } from '../support/repo-root.js';
import { recordOutput, registerSecret } from '../support/leak-scan.js';
import { tempDir } from '../support/temp-dirs.js';

/**
 * npm run k8s:up as the README gives it, on a fresh state (real processes: the two-node
 * cluster, its own Vault and PostgreSQL, the shipped native-sidecar overlay): it prints the
 * app's and the operator's addresses once the app is ready, both answer, and npm run k8s:down
 * stops everything it started. The cluster is the suite's (.kubernetes-test/, KUBERNETES_DIR),
 * k8s:up's own state a temp folder (KUBERNETES_UP_DIR).
 */
describe('npm run k8s:up and k8s:down (a real cluster, Vault and PostgreSQL)', function () {
  this.timeout(120_000);
  let env: NodeJS.ProcessEnv;
  let upProcess: ChildProcess | undefined;
  let output = '';
  const said = (label: string) => new RegExp(`^k8s: ${label}\\s+(\\S+)`, 'm').exec(output)?.[1];

  before(async function () {
    // Cold, the first run builds Kubernetes and CoreDNS, the engine's images and the app's.
    this.timeout(30 * 60_000);
    const state = await tempDir('k8s-up');
    // PostgreSQL runs as its own user when the tests run as root: it must reach its folder.
    await chmod(state, 0o755);
    env = { ...process.env, KUBERNETES_DIR: join(repoRoot, '.kubernetes-test'), KUBERNETES_UP_DIR: join(state, 'up') };
    const started = Date.now();
    upProcess = spawn('npm', ['run', '--silent', 'k8s:up'], { cwd: repoRoot, env, stdio: ['ignore', 'pipe', 'pipe'] });
    const child = upProcess;
    await new Promise<void>((resolvePromise, reject) => {
      const onData = (chunk: Buffer) => {
        output += chunk.toString();
        if (/^k8s: running \(pid/m.test(output)) resolvePromise();
      };
      child.stdout?.on('data', onData);
      child.stderr?.on('data', onData);
      child.once('exit', (code) => { reject(new Error(`k8s:up exited (${code ?? 'signal'}) before it was ready:\n${output}`)); });
    });
    recordOutput('k8s:up output', output);
    console.log(`      k8s:up ready in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  });

  after(async function () {
    this.timeout(180_000);
    // Whatever the tests left: k8s:down is what stops it.
    if (upProcess?.exitCode === null) await new Promise((resolvePromise) => { spawn('npm', ['run', '--silent', 'k8s:down'], { cwd: repoRoot, env, stdio: 'ignore' }).once('exit', resolvePromise); });
  });

  it('prints the app\'s address, which answers through the Service: ready, from pods of the shipped overlay', async function () {
    const app = said('app');
    expect(app, output).to.match(/^http:\/\/127\.0\.0\.1:\d+$/);
    const answer = await fetch(`${app ?? ''}/readyz`);
    expect(answer.status).to.equal(200);
  });

  it('prints the operator\'s port, which answers /status with the token k8s:up wrote, and 401 without it', async function () {
    const operator = said('operator');
    const tokenFile = /Bearer \$\(cat ([^)\s]+)\)/.exec(output)?.[1];
    expect(operator, output).to.match(/^http:\/\/127\.0\.0\.1:\d+$/);
    const token = await readFile(tokenFile ?? '', 'utf8');
    registerSecret('k8s:up admin token', token);
    const bare = await fetch(`${operator ?? ''}/status`);
    await bare.body?.cancel();
    expect(bare.status).to.equal(401);
    const status = await fetch(`${operator ?? ''}/status`, { headers: { Authorization: `Bearer ${token}` } });
    expect(status.status).to.equal(200);
    expect(((await status.json()) as { agent: { state: string } | null }).agent?.state).to.equal('on_time');
  });

  it('stops the cluster, Vault and PostgreSQL at npm run k8s:down', async function () {
    this.timeout(180_000);
    const cluster = join(repoRoot, '.kubernetes-test');
    // Both nodes' network namespaces: the control plane's and the first node's, the second's.
    const namespaces = await Promise.all(['run/netns', 'run/node-2/netns'].map(async (file) => (await readFile(join(cluster, file), 'utf8')).trim()));
    const inNamespaces = async () => (await Promise.all(namespaces.map((netns) => processesIn(netns)))).flat();
    const pids = /^k8s: running \(pid (\d+)\)/m.exec(output)?.[1];
    expect(await inNamespaces()).to.not.deep.equal([]);
    const started = Date.now();
    const downCode = await new Promise((resolvePromise) => {
      spawn('npm', ['run', '--silent', 'k8s:down'], { cwd: repoRoot, env, stdio: 'ignore' }).once('exit', resolvePromise);
    });
    expect(downCode).to.equal(0);
    console.log(`      k8s:down took ${((Date.now() - started) / 1000).toFixed(1)} s`);
    // npm and tsx end once the process k8s:down signalled has.
    if (upProcess?.exitCode === null) await new Promise((resolvePromise) => { upProcess?.once('exit', resolvePromise); setTimeout(resolvePromise, 10_000); });
    expect(upProcess?.exitCode, 'k8s:up exited').to.not.equal(null);
    expect(await inNamespaces()).to.deep.equal([]);
    // Every process of k8s:up's state folder (Vault, PostgreSQL) is gone with it.
    const procs = (await readdir('/proc')).filter((entry) => /^\d+$/.test(entry) && entry !== pids);
    const commands = await Promise.all(procs.map((pid) => readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')));
    expect(commands.filter((line) => line.includes(env.KUBERNETES_UP_DIR ?? '-')).map((line) => line.replaceAll('\0', ' '))).to.deep.equal([]);
  });
});
