import type { TestCluster } from './kubernetes.js';
import { namespace, sleep } from './native-sidecar.js';

interface EndpointSlice { endpoints?: { addresses: string[]; conditions: { ready?: boolean } }[] }

/** The addresses of the Service saas-app's ready endpoints, as its EndpointSlices list them now (what kube-proxy sends to). */
export async function readyEndpoints(cluster: TestCluster): Promise<string[]> {
  const slices = await cluster.api<{ items: EndpointSlice[] }>(
    `/apis/discovery.k8s.io/v1/namespaces/${namespace}/endpointslices?labelSelector=kubernetes.io%2Fservice-name%3Dsaas-app`);
  return slices.items.flatMap((s) => s.endpoints ?? []).filter((e) => e.conditions.ready === true).flatMap((e) => e.addresses);
}

/**
 * The Service's ready endpoints, read every 200 ms until stopped: whether a pod left the
 * Service for a moment, which a client through the Service does not see while another pod
 * answers. stop() gives the fewest seen at once.
 */
export function watchReadyEndpoints(cluster: TestCluster): { stop(): Promise<number> } {
  let fewest = Number.POSITIVE_INFINITY;
  const watch = { running: true };
  const watching = (async () => {
    while (watch.running) {
      fewest = Math.min(fewest, (await readyEndpoints(cluster).catch(() => undefined))?.length ?? fewest);
      await sleep(200);
    }
  })();
  return { async stop() { watch.running = false; await watching; return fewest; } };
}
