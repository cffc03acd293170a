import { expect } from 'chai';
import { nodes } from '../../../scripts/kubernetes/paths.js';
import { startTestCluster, type TestCluster } from '../support/kubernetes.js';

/**
 * The cluster as a user's runs it (npm run k8s:start's, real processes): two nodes, each in a
 * namespace of its own, kube-proxy on each and CoreDNS behind the kube-dns Service. Two echo
 * pods, one per node (a required anti-affinity: the second stays Pending without a second
 * node), each a client too: it resolves the Service's name through the cluster DNS, reaches
 * both pods through that name (kube-proxy), and the other node's pod at its address.
 */
const namespace = 'services-check';

interface Pod { metadata: { name: string }; spec: { nodeName?: string }; status: { podIP?: string; phase: string } }

/** A server answering each request with its pod's name, and, given arguments, a client run by exec. */
const echo = `
const [url, count] = process.argv.slice(1);
if (url === undefined) {
  require('node:http').createServer((_, res) => res.end(require('node:os').hostname())).listen(8080);
} else {
  // A new connection per request (agent: false): kube-proxy picks a pod per connection.
  const get = () => new Promise((resolve, reject) => {
    require('node:http').get(url, { agent: false, timeout: 3000 }, (res) => {
      let body = '';
      res.on('data', (chunk) => { body += chunk; }).on('end', () => resolve(body));
    }).on('error', reject).on('timeout', () => reject(new Error('timeout')));
  });
  (async () => {
    const { address } = await require('node:dns').promises.lookup(new URL(url).hostname, 4);
    const seen = [];
    for (let i = 0; i < Number(count); i++) seen.push(await get());
    console.log(JSON.stringify({ address, seen }));
  })().catch((error) => { console.error(String(error)); process.exit(1); });
}`;

describe('Kubernetes: Services, the cluster DNS and two nodes (a real two-node cluster)', function () {
  this.timeout(120_000);
  let cluster: TestCluster;
  let pods: Pod[] = [];
  let clusterIp = '';

  /** Runs the echo script as a client in `pod`: the address `url`'s name resolved to and who answered. */
  const client = async (pod: Pod, url: string, count: number) => JSON.parse(await cluster.kube([
    'exec', '-n', namespace, pod.metadata.name, '--', 'node', '-e', echo, url, String(count),
  ])) as { address: string; seen: string[] };

  before(async function () {
    // Cold, the first run builds Kubernetes and CoreDNS (minutes), printing their progress.
    this.timeout(30 * 60_000);
    const started = Date.now();
    cluster = await startTestCluster();
    const up = Date.now();
    const labels = { app: 'echo' };
    await cluster.kube(['apply', '-f', '-'], JSON.stringify({ apiVersion: 'v1', kind: 'List', items: [
      { apiVersion: 'v1', kind: 'Namespace', metadata: { name: namespace } },
      { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'echo', namespace }, spec: {
        replicas: 2, selector: { matchLabels: labels }, template: { metadata: { labels }, spec: {
          affinity: { podAntiAffinity: { requiredDuringSchedulingIgnoredDuringExecution: [
            { labelSelector: { matchLabels: labels }, topologyKey: 'kubernetes.io/hostname' },
          ] } },
          // The app's image: it has node, which serves and asks here.
          containers: [{ name: 'echo', image: cluster.images.app, command: ['node', '-e', echo], ports: [{ containerPort: 8080 }],
            readinessProbe: { tcpSocket: { port: 8080 }, periodSeconds: 1 } }],
        } } } },
      { apiVersion: 'v1', kind: 'Service', metadata: { name: 'echo', namespace }, spec: { selector: labels, ports: [{ port: 80, targetPort: 8080 }] } },
    ] }));
    await cluster.kube(['rollout', 'status', '-n', namespace, 'deployment/echo', '--timeout=90s']);
    pods = (await cluster.api<{ items: Pod[] }>(`/api/v1/namespaces/${namespace}/pods?labelSelector=app%3Decho`)).items;
    clusterIp = (await cluster.kube(['get', 'service', '-n', namespace, 'echo', '-o', 'jsonpath={.spec.clusterIP}'])).trim();
    const rolledOut = Date.now();
    // kube-proxy writes a Service's rules at most once a second (minSyncPeriod), after its
    // endpoints change: until then a connection is refused. Each node's, within 15 s.
    for (const pod of pods) {
      const deadline = Date.now() + 15_000;
      while (await client(pod, `http://${clusterIp}/`, 1).then(() => false, () => Date.now() < deadline)) await new Promise((r) => setTimeout(r, 250));
    }
    console.log(`      cluster ready in ${((up - started) / 1000).toFixed(1)} s, echo pods ready ${((rolledOut - up) / 1000).toFixed(1)} s later, `
      + `their Service on both nodes ${((Date.now() - rolledOut) / 1000).toFixed(1)} s after that`);
  });

  after(async function () {
    this.timeout(120_000);
    // Undefined when the before hook failed before the cluster started.
    await (cluster as TestCluster | undefined)?.stop();
  });

  it('runs both nodes Ready, and schedules one echo pod on each', async function () {
    const ready = await cluster.kube(['get', 'nodes', '-o', 'jsonpath={range .items[*]}{.metadata.name}={.status.conditions[?(@.type=="Ready")].status} {end}']);
    expect(ready.trim().split(' ').sort()).to.deep.equal(nodes.map((n) => `${n.name}=True`).sort());
    expect(pods.map((p) => p.spec.nodeName).sort()).to.deep.equal(nodes.map((n) => n.name).sort());
    // Each pod's address is in its own node's pod subnet.
    for (const pod of pods) {
      const node = nodes.find((n) => n.name === pod.spec.nodeName);
      expect(pod.status.podIP?.startsWith(node?.podSubnet.replace(/0\/24$/, '') ?? '-'), `${pod.metadata.name} at ${pod.status.podIP ?? ''}`).to.equal(true);
    }
  });

  it('resolves <service>.<namespace>.svc to the ClusterIP from a pod on each node, and reaches both pods through it', async function () {
    const at = Date.now();
    for (const pod of pods) {
      const answer = await client(pod, `http://echo.${namespace}.svc/`, 12);
      expect(answer.address, `the name as ${pod.spec.nodeName ?? ''} resolves it`).to.equal(clusterIp);
      // kube-proxy spreads connections at random: 12 requests miss one of two pods 1 time in 2048.
      expect([...new Set(answer.seen)].sort(), `who answered ${pod.spec.nodeName ?? ''}`).to.deep.equal(pods.map((p) => p.metadata.name).sort());
    }
    console.log(`      24 requests through the Service's name in ${((Date.now() - at) / 1000).toFixed(1)} s`);
  });

  it('lets a pod reach the other node\'s pod at its address', async function () {
    const [one, other] = pods;
    if (one === undefined || other === undefined) throw new Error('two pods expected');
    for (const [from, to] of [[one, other], [other, one]] as const) {
      const answer = await client(from, `http://${to.status.podIP ?? ''}:8080/`, 1);
      expect(answer.seen, `${from.spec.nodeName ?? ''} to ${to.spec.nodeName ?? ''}`).to.deep.equal([to.metadata.name]);
    }
  });
});
