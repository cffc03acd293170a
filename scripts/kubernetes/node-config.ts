import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { clusterCidr, clusterDnsIp, clusterDomain, type ClusterPaths, type NodePaths } from './paths.js';

/*
 * One node's files: its kubelet's, containerd's, CNI's and kube-proxy's, named with the node's
 * suffix in the config folder (nothing for the first node). Each setting that is not
 * Kubernetes' default says why.
 */

/** The sandbox image: the project's Debian stand-in running `sleep infinity` (scripts/kubernetes/images.ts). */
export const pauseImage = 'saas-stand-in/pause:bookworm';

export async function writeNodeConfigs(paths: ClusterPaths, node: NodePaths, write: (name: string, text: string) => Promise<void>): Promise<void> {
  await write(`kubelet${node.suffix}.yaml`, JSON.stringify({
    apiVersion: 'kubelet.config.k8s.io/v1beta1', kind: 'KubeletConfiguration',
    containerRuntimeEndpoint: `unix://${node.containerdSocket}`,
    // These machines run cgroup v1, which kubelet 1.35 and later refuse unless told, and
    // Debian's containerd 1.6 cannot tell the kubelet its cgroup driver: the kubelet's own.
    failCgroupV1: false,
    cgroupDriver: 'cgroupfs',
    // Every cgroup the kubelet makes is under this root, which the stop removes.
    cgroupRoot: node.cgroupRoot,
    failSwapOn: false,
    authentication: {
      anonymous: { enabled: false },
      webhook: { enabled: false },
      x509: { clientCAFile: join(paths.pki, 'ca.crt') },
    },
    // Only the API server (a system:masters certificate) reaches the kubelet, inside the namespaces.
    authorization: { mode: 'AlwaysAllow' },
    // A test machine's disk is often more than 85 % full; eviction would only add noise.
    evictionHard: { 'memory.available': '100Mi', 'nodefs.available': '1%', 'imagefs.available': '1%', 'nodefs.inodesFree': '1%' },
    imageGCHighThresholdPercent: 100,
    imageGCLowThresholdPercent: 99,
    // Without CAP_SYS_RESOURCE nothing can lower an OOM score; containerd is told the same.
    oomScoreAdj: 0,
    // The pods' nameserver is the kube-dns Service (CoreDNS, scripts/kubernetes/dns.ts); the
    // host's resolv.conf adds only its search domains, as the namespaces reach no other DNS.
    resolvConf: '/etc/resolv.conf',
    clusterDNS: [clusterDnsIp],
    clusterDomain,
    serializeImagePulls: false,
    // The node's heartbeat: its lease renewed every 2.5 s (a quarter of this) instead of every
    // 10 s, so that the controller manager can call a silent node lost after 12.5 s instead of
    // 50 s (inside.ts) with the same five renewals missed: a lost node's test waits that long.
    nodeLeaseDurationSeconds: 10,
  }, null, 2));

  await write(`containerd${node.suffix}.toml`, `version = 2
root = "${node.containerdRoot}"
state = "${node.containerdState}"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper"]

[grpc]
  address = "${node.containerdSocket}"

[plugins."io.containerd.grpc.v1.cri"]
  # The pause image is the project's own stand-in, imported before the kubelet starts.
  sandbox_image = "${pauseImage}"
  # No CAP_SYS_RESOURCE here: a container cannot get a lower OOM score than containerd's.
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "${node.cniConfig}"
`);

  await mkdir(node.cniConfig, { recursive: true });
  await writeFile(join(node.cniConfig, '10-saas.conflist'), JSON.stringify({
    cniVersion: '0.4.0', name: 'saas-pods',
    plugins: [{
      // Debian's containernetworking-plugins: one bridge per node, the pods' gateway on it; no
      // masquerade: pods reach other nodes' pods by the routes between the namespaces
      // (scripts/kubernetes/node-link.ts), and the host only at the first node's address.
      type: 'bridge', bridge: 'cni0', isGateway: true, ipMasq: false, hairpinMode: true,
      ipam: { type: 'host-local', ranges: [[{ subnet: node.node.podSubnet }]], routes: [{ dst: '0.0.0.0/0' }], dataDir: node.cniIpam },
    }],
  }, null, 2));

  await write(`kube-proxy${node.suffix}.yaml`, JSON.stringify({
    apiVersion: 'kubeproxy.config.k8s.io/v1alpha1', kind: 'KubeProxyConfiguration',
    clientConnection: { kubeconfig: join(paths.config, 'kube-proxy.kubeconfig') },
    hostnameOverride: node.node.name,
    // iptables, through Debian's iptables-nft: these kernels load no modules, but have every
    // match and target kube-proxy writes built in (tried in a namespace: statistic, DNAT,
    // MASQUERADE, conntrack); the nftables mode would need the nft command besides.
    mode: 'iptables',
    clusterCIDR: clusterCidr,
    // The conntrack table is the host's, not the namespace's: kube-proxy leaves its size and
    // timeouts as they are instead of failing to write them.
    conntrack: { maxPerCore: 0, min: 0, tcpEstablishedTimeout: '0s', tcpCloseWaitTimeout: '0s' },
    // Each node's namespace has its own ports; these only need to differ from the kubelet's.
    metricsBindAddress: '127.0.0.1:10249',
    healthzBindAddress: '127.0.0.1:10256',
  }, null, 2));
}
