import { readFile } from 'node:fs/promises';
import { request } from 'node:https';
import { join } from 'node:path';
import { exposeToCluster, forwardFromHost, type Exposure, type Forward } from '../../../scripts/kubernetes/bridge.js';
import { kubectl, startCluster, stopCluster, type StartedCluster } from '../../../scripts/kubernetes/cluster.js';
import { clusterPaths } from '../../../scripts/kubernetes/paths.js';
import { repoRoot } from './repo-root.js';

/**
 * The test suite's own cluster (.kubernetes-test/, beside a user's .kubernetes/): the one
 * `npm run k8s:start` starts, with the host's ends of its bridge. Started once per file and
 * stopped at its end; the cold build of the binaries prints its progress on stderr.
 */
export interface TestCluster extends StartedCluster {
  /** kubectl with the admin's kubeconfig; throws with its stderr on a non-zero exit. */
  kube(args: readonly string[], input?: string): Promise<string>;
  /** GET on the API server as the admin; the parsed body. */
  api<T>(path: string): Promise<T>;
  /** A loopback port leading to ip:port inside the cluster (a pod, the node). */
  forward(target: string): Promise<Forward>;
  /** Port `clusterPort` at the node's address leads to host:port on the host. */
  expose(clusterPort: number, target: { host: string; port: number }): Promise<Exposure>;
  /** The API server as a process on the host reaches it: https://127.0.0.1:<port>. */
  readonly apiServerUrl: string;
  readonly caFile: string;
  stop(): Promise<void>;
}

export async function startTestCluster(): Promise<TestCluster> {
  const paths = clusterPaths(join(repoRoot, '.kubernetes-test'));
  const started = await startCluster((line) => { process.stderr.write(`      kubernetes: ${line}\n`); }, paths);
  const opened: { close(): Promise<void> }[] = [];
  const config = JSON.parse(await readFile(started.kubeconfig, 'utf8')) as { clusters: { cluster: { server: string } }[] };
  const apiServerUrl = config.clusters[0]?.cluster.server ?? '';
  const pki = (name: string) => readFile(join(paths.pki, name));
  const [ca, cert, key] = await Promise.all([pki('ca.crt'), pki('admin.crt'), pki('admin.key')]);
  return {
    ...started,
    apiServerUrl,
    caFile: join(paths.pki, 'ca.crt'),
    async kube(args, input) {
      const result = await kubectl(started, args, input);
      if (result.code !== 0) throw new Error(`kubectl ${args.join(' ')}: ${result.stderr.trim()}`);
      return result.stdout;
    },
    api<T>(path: string) {
      const url = new URL(path, apiServerUrl);
      return new Promise<T>((resolvePromise, reject) => {
        const req = request({ host: url.hostname, port: url.port, path: url.pathname + url.search, ca, cert, key }, (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (chunk: Buffer) => chunks.push(chunk));
          res.on('end', () => {
            const body = Buffer.concat(chunks).toString();
            if (res.statusCode !== 200) reject(new Error(`GET ${path}: ${res.statusCode ?? 0} ${body.slice(0, 200)}`));
            else resolvePromise(JSON.parse(body) as T);
          });
        });
        req.on('error', reject);
        req.end();
      });
    },
    async forward(target) {
      const forward = await forwardFromHost(paths, target);
      opened.push(forward);
      return forward;
    },
    async expose(clusterPort, target) {
      const exposure = await exposeToCluster(paths, clusterPort, target);
      opened.push(exposure);
      return exposure;
    },
    async stop() {
      for (const one of opened) await one.close();
      if (started.startedNow) await stopCluster(() => undefined, paths);
    },
  };
}
