import type { TestCluster } from './kubernetes.js';
import { namespace, sleep } from './native-sidecar.js';

interface EndpointSlice { endpoints?: { addresses: string[]; conditions: { ready?: boolean } }[] }

/** One request of the steady client: the pod's address, the status (0: no answer, or no ready endpoint). */
export interface Outcome { ip: string; status: number; error?: string }

export interface SteadyClient {
  /** Stops the client; every request it made, in order. */
  stop(): Promise<Outcome[]>;
  /** The fewest ready endpoints the client saw at any refresh. */
  readonly fewestReady: number;
}

/**
 * A client of the Service saas-app that follows its EndpointSlices as kube-proxy does (no
 * kube-proxy runs on the test cluster): ready endpoints only, refreshed every 200 ms, requests
 * spread across them every 50 ms. A moment with no ready endpoint is an error, as a Service
 * with none refuses the connection.
 */
export async function startSteadyClient(cluster: TestCluster, path: string, headers: Record<string, string>): Promise<SteadyClient> {
  let ready: string[] = [];
  let fewestReady = Number.POSITIVE_INFINITY;
  const refresh = async () => {
    const slices = await cluster.api<{ items: EndpointSlice[] }>(
      `/apis/discovery.k8s.io/v1/namespaces/${namespace}/endpointslices?labelSelector=kubernetes.io%2Fservice-name%3Dsaas-app`);
    ready = slices.items.flatMap((s) => s.endpoints ?? []).filter((e) => e.conditions.ready === true).flatMap((e) => e.addresses);
    fewestReady = Math.min(fewestReady, ready.length);
  };
  await refresh();
  const outcomes: Outcome[] = [];
  const load = { running: true };
  const refresher = (async () => { while (load.running) { await refresh().catch(() => undefined); await sleep(200); } })();
  const client = (async () => {
    for (let i = 0; load.running; i++) {
      const ip = ready[i % ready.length];
      if (ip === undefined) outcomes.push({ ip: '', status: 0, error: 'no ready endpoint' });
      else {
        const port = (await cluster.forward(`${ip}:3000`)).port;
        try {
          const answer = await fetch(`http://127.0.0.1:${port}${path}`, { headers, signal: AbortSignal.timeout(5000) });
          outcomes.push({ ip, status: answer.status });
          await answer.arrayBuffer();
        } catch (error) {
          outcomes.push({ ip, status: 0, error: String((error as Error).cause ?? error) });
        }
      }
      await sleep(50);
    }
  })();
  return {
    get fewestReady() { return fewestReady; },
    async stop() {
      load.running = false;
      await Promise.all([refresher, client]);
      return outcomes;
    },
  };
}
