import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { clusterDnsIp, clusterDomain } from '../../../scripts/kubernetes/paths.js';
import type { TestCluster } from './kubernetes.js';
import { namespace } from './native-sidecar.js';
import { repoRoot } from './repo-root.js';

/** One request of the steady client: when it started and how long it took (ms, this machine's clock), its status (0: no answer). */
export interface ServiceRequest {
  at: number;
  ms: number;
  status: number;
  /** Whether its connection opened (reached a pod). */
  opened: boolean;
  /** The connections that never opened before it, tried again (only when asked for). */
  unopened: number;
  error?: string;
}

export interface ServiceClient {
  /** Every request it has made so far, in order. */
  requests(): ServiceRequest[];
  /** Stops the client after its request under way; every request it made, in order. */
  stop(): Promise<ServiceRequest[]>;
}

/**
 * A steady client of the Service saas-app as a pod reaches it: by its name,
 * saas-app.saas.svc.cluster.local, through the cluster DNS and kube-proxy's rules, from a
 * process in the first node's network namespace (service-client-inside.ts), a request every
 * 50 ms. `retryUnopened`: a connection that never opened is tried again (at most 20 times),
 * as a proxy in front of the Service does; otherwise it is an error like any other.
 */
export async function startServiceClient(cluster: TestCluster, path: string, headers: Record<string, string>,
  retryUnopened = false): Promise<ServiceClient> {
  const namespacePid = (await readFile(cluster.paths.insidePid, 'utf8')).trim();
  const child = spawn('nsenter', [`--net=/proc/${namespacePid}/ns/net`, '--', process.execPath, '--import', 'tsx',
    join(repoRoot, 'service/test/support/service-client-inside.ts'),
    `saas-app.${namespace}.svc.${clusterDomain}`, '3000', path, clusterDnsIp, retryUnopened ? 'retry' : ''], {
    cwd: repoRoot, stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, SERVICE_CLIENT_HEADERS: JSON.stringify(headers) },
  });
  let out = '';
  let err = '';
  child.stdout.on('data', (chunk: Buffer) => { out += chunk.toString(); });
  child.stderr.on('data', (chunk: Buffer) => { err += chunk.toString(); });
  const exited = new Promise<string>((resolvePromise) => { child.on('close', (code, signal) => { resolvePromise(signal ?? String(code)); }); });
  // Its first request answered: the client runs before the caller goes on.
  const deadline = Date.now() + 15_000;
  while (!out.includes('\n')) {
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`the Service's client did not start: ${err.trim() || 'no request within 15 s'}`);
    }
    await new Promise((resolvePromise) => setTimeout(resolvePromise, 50));
  }
  const parse = (text: string) => text.split('\n').filter((line) => line !== '').map((line) => JSON.parse(line) as ServiceRequest);
  return {
    // Only whole lines: the last one may still be arriving.
    requests: () => parse(out.slice(0, out.lastIndexOf('\n') + 1)),
    async stop() {
      child.stdin.end();
      const timer = setTimeout(() => { child.kill('SIGKILL'); }, 10_000);
      const code = await exited;
      clearTimeout(timer);
      // A signal: its namespace's processes were ended (the cluster stopped), or it hung for 10 s.
      if (code !== '0') throw new Error(`the Service's client exited with ${code}: ${err.trim()}`);
      return parse(out);
    },
  };
}
