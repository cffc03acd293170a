import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { identities, type Identity } from './pki.js';
import { apiServerPort, nodeIp, nodeName, podSubnet, type ClusterPaths } from './paths.js';

/*
 * The files the components read, written at every start. Each setting that is not
 * Kubernetes' default says why; the measured constraints of these machines are in
 * CONTRIBUTING.md ("Kubernetes on a real kubelet").
 */

function kubeconfig(paths: ClusterPaths, server: string, identity: Identity): string {
  // JSON is YAML: no YAML writer needed for a file nobody edits.
  return JSON.stringify({
    apiVersion: 'v1', kind: 'Config', 'current-context': 'saas',
    clusters: [{ name: 'saas', cluster: { server, 'certificate-authority': join(paths.pki, 'ca.crt') } }],
    users: [{ name: identity.name, user: {
      'client-certificate': join(paths.pki, `${identity.name}.crt`), 'client-key': join(paths.pki, `${identity.name}.key`),
    } }],
    contexts: [{ name: 'saas', context: { cluster: 'saas', user: identity.name } }],
  }, null, 2);
}

export const configFile = (paths: ClusterPaths, name: string) => join(paths.config, name);

export async function writeConfigs(paths: ClusterPaths, hostApiPort: number): Promise<void> {
  await mkdir(paths.config, { recursive: true, mode: 0o700 });
  const inside = `https://127.0.0.1:${apiServerPort}`;
  const write = (name: string, text: string) => writeFile(configFile(paths, name), text, { mode: 0o600 });
  await write('controller-manager.kubeconfig', kubeconfig(paths, inside, identities.controllerManager));
  await write('scheduler.kubeconfig', kubeconfig(paths, inside, identities.scheduler));
  await write('kubelet.kubeconfig', kubeconfig(paths, inside, identities.node));
  await writeFile(paths.kubeconfig, kubeconfig(paths, `https://127.0.0.1:${hostApiPort}`, identities.admin), { mode: 0o600 });

  await write('kubelet.yaml', JSON.stringify({
    apiVersion: 'kubelet.config.k8s.io/v1beta1', kind: 'KubeletConfiguration',
    containerRuntimeEndpoint: `unix://${paths.containerdSocket}`,
    // These machines run cgroup v1, which kubelet 1.35 and later refuse unless told, and
    // Debian's containerd 1.6 cannot tell the kubelet its cgroup driver: the kubelet's own.
    failCgroupV1: false,
    cgroupDriver: 'cgroupfs',
    // Every cgroup the kubelet makes is under this root, which the stop removes.
    cgroupRoot: paths.cgroupRoot,
    failSwapOn: false,
    authentication: {
      anonymous: { enabled: false },
      webhook: { enabled: false },
      x509: { clientCAFile: join(paths.pki, 'ca.crt') },
    },
    // Only the API server (a system:masters certificate) reaches the kubelet, inside the namespace.
    authorization: { mode: 'AlwaysAllow' },
    // A test machine's disk is often more than 85 % full; eviction would only add noise.
    evictionHard: { 'memory.available': '100Mi', 'nodefs.available': '1%', 'imagefs.available': '1%', 'nodefs.inodesFree': '1%' },
    imageGCHighThresholdPercent: 100,
    imageGCLowThresholdPercent: 99,
    // Without CAP_SYS_RESOURCE nothing can lower an OOM score; containerd is told the same.
    oomScoreAdj: 0,
    resolvConf: '/etc/resolv.conf',
    serializeImagePulls: false,
  }, null, 2));

  await write('containerd.toml', `version = 2
root = "${join(paths.dir, 'containerd')}"
state = "${join(paths.run, 'containerd-state')}"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper"]

[grpc]
  address = "${paths.containerdSocket}"

[plugins."io.containerd.grpc.v1.cri"]
  # The pause image is the project's own stand-in, imported before the kubelet starts.
  sandbox_image = "${pauseImage}"
  # No CAP_SYS_RESOURCE here: a container cannot get a lower OOM score than containerd's.
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "${join(paths.config, 'cni')}"
`);

  await mkdir(join(paths.config, 'cni'), { recursive: true });
  await writeFile(join(paths.config, 'cni', '10-saas.conflist'), JSON.stringify({
    cniVersion: '0.4.0', name: 'saas-pods',
    plugins: [{
      // Debian's containernetworking-plugins: one bridge, the pods' gateway on it; no masquerade,
      // since pods only talk to the node's address (where the bridge's exposed ports listen).
      type: 'bridge', bridge: 'cni0', isGateway: true, ipMasq: false, hairpinMode: true,
      ipam: { type: 'host-local', ranges: [[{ subnet: podSubnet }]], routes: [{ dst: '0.0.0.0/0' }], dataDir: join(paths.dir, 'cni-ipam') },
    }],
  }, null, 2));
}

/** The sandbox image: the project's Debian stand-in running `sleep infinity` (scripts/kubernetes/images.ts). */
export const pauseImage = 'saas-stand-in/pause:bookworm';
export { nodeIp, nodeName };
