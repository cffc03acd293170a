import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { forwardFromHost } from './bridge.js';
import { apiServerPort, clusterPaths } from './paths.js';

/*
 * The cluster's one process on the host's side (started detached by cluster.ts): it runs the
 * namespace's supervisor (inside.ts) under `unshare`, and forwards the host's loopback port
 * named in the kubeconfig to the API server inside. SIGTERM stops the inside first.
 *
 *   argv: the Kubernetes binaries' folder, the host port for the API server, CoreDNS's binary
 */

const paths = clusterPaths();
const [binDir = '', port = '0', coredns = ''] = process.argv.slice(2);
const forward = await forwardFromHost(paths, `127.0.0.1:${apiServerPort}`, Number(port));
const inside = spawn('unshare', [
  '--mount', '--net', '--propagation', 'private', '--fork', '--kill-child=SIGTERM',
  process.execPath, '--import', 'tsx', join(import.meta.dirname, 'inside.ts'), binDir, coredns,
], { stdio: 'inherit' });

process.on('SIGTERM', () => {
  void readFile(paths.insidePid, 'utf8').then((pid) => { process.kill(Number(pid), 'SIGTERM'); }, () => { inside.kill('SIGTERM'); });
});
inside.on('exit', (code) => {
  void forward.close().then(() => { process.exit(code ?? 1); });
});
