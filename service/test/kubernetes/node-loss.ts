import { expect } from 'chai';
import { stopNodeAlone } from '../../../scripts/kubernetes/node-stop.js';
import { nodes } from '../../../scripts/kubernetes/paths.js';
import { namespace, sleep, until, type Pod } from '../support/native-sidecar.js';
import { readyEndpoints } from '../support/ready-endpoints.js';
import { startServiceClient, type ServiceRequest } from '../support/service-client.js';
import type { Context } from './pod-lifecycle.js';

/**
 * A node lost under a steady client (issue 34): the second node's kubelet, containerd,
 * kube-proxy and pods killed at once (scripts/kubernetes/node-stop.ts), the replicas spread one
 * per node by the base's topologySpreadConstraints. The test cluster calls a silent node lost
 * after 12.5 s (its controller manager's setting, scripts/kubernetes/inside.ts); the pods
 * tolerate the lost node for the base's 30 s divided by the tests' factor, 1 s
 * (support/native-sidecar.ts). Last of native-sidecar.test.ts's tests but the stop's: the
 * cluster has one node after it.
 */
type Placed = Pod & { spec: { nodeName?: string } };
const isReady = (pod: Pod) => pod.status.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') === true;

export function nodeLossTest(context: Context): void {
  it('serves through the Service while a node is lost, no error but a request in flight on it, and replaces its pod on the other node', async function () {
    this.timeout(180_000);
    const deployed = context.deployed();
    const { cluster } = deployed;
    const [first, second] = nodes;
    const placed = await until('two ready pods, one on each node', 60_000, async () => {
      const now = (await deployed.runningPods()) as Placed[];
      const spread = new Set(now.filter(isReady).map((p) => p.spec.nodeName));
      return now.length === 2 && spread.size === 2 ? now : undefined;
    });
    const lost = placed.find((p) => p.spec.nodeName === second.name) as Placed;
    const lostIp = lost.status.podIP ?? '';
    // Connections that never opened (to the lost pod, before Kubernetes takes it out of the
    // Service) are tried again, as a proxy in front of the Service does; they are counted.
    const client = await startServiceClient(cluster, '/api/projects', context.session(), true);
    let requests: ServiceRequest[];
    let killAt = 0;
    let killedAt = 0;
    let outAt = 0;
    let replacedAt = 0;
    let replacement: Placed | undefined;
    try {
      await sleep(1000);
      killAt = Date.now();
      await stopNodeAlone(cluster.paths, 2);
      killedAt = Date.now();
      outAt = await until('the lost pod out of the Service', 60_000, async () =>
        ((await readyEndpoints(cluster)).includes(lostIp) ? undefined : Date.now()));
      replacement = await until(`a replacement pod ready on ${first.name}`, 90_000, async () => {
        const now = (await deployed.runningPods()) as Placed[];
        return now.find((p) => !placed.some((o) => o.metadata.uid === p.metadata.uid) && isReady(p));
      });
      replacedAt = Date.now();
      // The client goes on through the replacement's first requests.
      await sleep(2000);
    } finally {
      requests = await client.stop();
    }
    expect(replacement.spec.nodeName, 'the replacement\'s node').to.equal(first.name);
    const node = await cluster.api<{ spec: { taints?: { key: string; effect: string }[] } }>(`/api/v1/nodes/${second.name}`);
    expect(node.spec.taints?.map((t) => `${t.key}:${t.effect}`).sort()).to.include('node.kubernetes.io/unreachable:NoExecute');
    // The errors: at most the one request under way when the node went (the client sends one at a time).
    const errors = requests.filter((r) => r.status !== 200);
    const inFlight = (r: ServiceRequest) => r.at <= killedAt && r.at + r.ms >= killAt;
    expect(errors.filter((r) => !inFlight(r)).map((r) => `${new Date(r.at).toISOString()} ${r.status} ${r.error ?? ''}`), 'errors beyond the request in flight').to.deep.equal([]);
    // Connections led nowhere only while the Service still listed the lost pod (+ 2 s for kube-proxy's rules).
    const retried = requests.filter((r) => r.unopened > 0);
    expect(retried.filter((r) => r.at + r.ms < killAt || r.at > outAt + 2000).map((r) => new Date(r.at).toISOString()), 'connections that never opened, outside that window').to.deep.equal([]);
    expect(requests.filter((r) => r.at > replacedAt && r.status === 200).length, 'requests answered once the replacement was ready').to.be.greaterThan(5);
    const s = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
    console.log(`      ${requests.length} requests, ${errors.length} error(s) (in flight on the lost node), ${retried.reduce((n, r) => n + r.unopened, 0)} connections `
      + `that never opened tried again; node stopped in ${s(killedAt - killAt)}, its pod out of the Service ${s(outAt - killAt)} after, `
      + `a replacement ready on ${first.name} ${s(replacedAt - killAt)} after`);
    // The lost pod stays Terminating: no kubelet is left to confirm its end.
    const still = await cluster.api<Pod>(`/api/v1/namespaces/${namespace}/pods/${lost.metadata.name}`).catch(() => undefined);
    expect(still?.metadata.deletionTimestamp, 'the lost pod, evicted').to.not.equal(undefined);
  });
}
