import { forwardFromHost } from './bridge.js';
import { clusterDnsIp, clusterDomain, nodeIp, serviceSubnet, type ClusterPaths } from './paths.js';

/*
 * The cluster's DNS: CoreDNS (scripts/install-coredns.sh) as a process in the control plane's
 * namespace, as the API server is, since no registry these machines reach serves its image.
 * Pods reach it as they would a kube-dns Deployment: through the Service kube-dns at the
 * address every kubelet writes into their resolv.conf, which kube-proxy sends to the first
 * node's address (CoreDNS listens on every address of the control plane's namespace). The Service has no selector: its one EndpointSlice,
 * written here, names that address.
 */

/** Where CoreDNS answers whether it has synced with the API server (its ready plugin). */
export const dnsReadyPort = 8181;

/** Only the cluster's zones: no other DNS is reachable from the namespaces, so nothing is forwarded. */
export function corefile(kubeconfigFile: string): string {
  const reverse = `${serviceSubnet.split('.').slice(0, 2).reverse().join('.')}.in-addr.arpa 244.10.in-addr.arpa`;
  return `${clusterDomain}:53 ${reverse} {
    errors
    ready ${nodeIp}:${dnsReadyPort}
    kubernetes ${clusterDomain} ${reverse} {
        kubeconfig ${kubeconfigFile} saas
    }
    cache 30
    loadbalance
}
`;
}

/** What CoreDNS reads, who may read it, and the Service pods ask. Applied once the API server is up. */
export function dnsObjects(): object {
  const labels = { 'k8s-app': 'kube-dns' };
  const ports = [{ name: 'dns', port: 53, protocol: 'UDP' }, { name: 'dns-tcp', port: 53, protocol: 'TCP' }];
  return {
    apiVersion: 'v1', kind: 'List', items: [
      {
        apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRole', metadata: { name: 'system:coredns' },
        rules: [
          { apiGroups: [''], resources: ['services', 'namespaces'], verbs: ['list', 'watch'] },
          { apiGroups: ['discovery.k8s.io'], resources: ['endpointslices'], verbs: ['list', 'watch'] },
        ],
      },
      {
        apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRoleBinding', metadata: { name: 'system:coredns' },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'system:coredns' },
        subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: 'system:coredns' }],
      },
      {
        apiVersion: 'v1', kind: 'Service', metadata: { name: 'kube-dns', namespace: 'kube-system', labels },
        spec: { clusterIP: clusterDnsIp, ports },
      },
      {
        apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice', addressType: 'IPv4',
        metadata: { name: 'kube-dns-coredns', namespace: 'kube-system',
          labels: { ...labels, 'kubernetes.io/service-name': 'kube-dns', 'endpointslice.kubernetes.io/managed-by': 'saas-vault-secrets' } },
        endpoints: [{ addresses: [nodeIp], conditions: { ready: true } }],
        ports,
      },
    ],
  };
}

/** On the host: whether CoreDNS has read the cluster's Services (its ready plugin, through the bridge). */
export async function dnsReady(paths: ClusterPaths): Promise<boolean> {
  const forward = await forwardFromHost(paths, `${nodeIp}:${dnsReadyPort}`);
  try {
    const answer = await fetch(`http://127.0.0.1:${forward.port}/ready`, { signal: AbortSignal.timeout(2000) });
    await answer.arrayBuffer();
    return answer.ok;
  } finally {
    await forward.close();
  }
}
