import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { corefile } from './dns.js';
import { writeNodeConfigs } from './node-config.js';
import { identities, type Identity } from './pki.js';
import { apiServerPort, nodeIp, nodeName, nodePaths, nodes, type ClusterPaths } from './paths.js';

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
  // Every component but the kubelets runs in the control plane's namespace, beside the API server.
  const inside = `https://127.0.0.1:${apiServerPort}`;
  const write = (name: string, text: string) => writeFile(configFile(paths, name), text, { mode: 0o600 });
  await write('controller-manager.kubeconfig', kubeconfig(paths, inside, identities.controllerManager));
  await write('scheduler.kubeconfig', kubeconfig(paths, inside, identities.scheduler));
  await writeFile(paths.kubeconfig, kubeconfig(paths, `https://127.0.0.1:${hostApiPort}`, identities.admin), { mode: 0o600 });

  await write('coredns.kubeconfig', kubeconfig(paths, inside, identities.coredns));
  await write('Corefile', corefile(configFile(paths, 'coredns.kubeconfig')));
  // The kubelets and kube-proxies of the other nodes reach the API server at the first node's address.
  const atNode = `https://${nodeIp}:${apiServerPort}`;
  await write('kube-proxy.kubeconfig', kubeconfig(paths, atNode, identities.kubeProxy));
  for (const index of nodes.map((_, i) => i + 1)) {
    const node = nodePaths(paths, index);
    await write(`kubelet${node.suffix}.kubeconfig`, kubeconfig(paths, atNode, index === 1 ? identities.node : identities.node2));
    await writeNodeConfigs(paths, node, write);
  }
}

export { pauseImage } from './node-config.js';
export { nodeIp, nodeName };
