import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { run } from '../engine/engine.js';
import { ClusterError } from './paths.js';

/*
 * The cluster's certificates, made with openssl at every start: one CA, the API server's
 * serving certificate, and one client certificate per identity (the admin, the controller
 * manager, the scheduler, the node, the API server towards the kubelet). Client certificates
 * carry the identity Kubernetes' RBAC and Node authorizer read: CN is the user, O the group.
 * kube-proxy and CoreDNS run as processes beside the kubelets, with certificates of their own.
 * EC P-256 keys, because they take milliseconds; the service-account signing key is RSA,
 * which every JWT verifier (Vault's included) accepts.
 */

export interface Identity { readonly name: string; readonly user: string; readonly group?: string }

export const identities = {
  admin: { name: 'admin', user: 'saas-admin', group: 'system:masters' },
  controllerManager: { name: 'controller-manager', user: 'system:kube-controller-manager' },
  scheduler: { name: 'scheduler', user: 'system:kube-scheduler' },
  node: { name: 'node', user: 'system:node:saas-node', group: 'system:nodes' },
  // The Node authorizer lets a kubelet see only its own node's pods and secrets: one each.
  node2: { name: 'node-2', user: 'system:node:saas-node-2', group: 'system:nodes' },
  // Bound to system:node-proxier by Kubernetes' own bootstrap policy.
  kubeProxy: { name: 'kube-proxy', user: 'system:kube-proxy' },
  // Bound by scripts/kubernetes/dns.ts to a role that reads Services and EndpointSlices.
  coredns: { name: 'coredns', user: 'system:coredns' },
  apiserverToKubelet: { name: 'apiserver-kubelet-client', user: 'kube-apiserver-kubelet-client', group: 'system:masters' },
} as const satisfies Record<string, Identity>;

async function openssl(args: readonly string[], cwd: string): Promise<void> {
  const result = await run('openssl', args, { cwd });
  if (result.code !== 0) throw new ClusterError(`openssl ${args[0] ?? ''} failed in ${cwd}: ${result.stderr.trim().split('\n').at(-1) ?? ''}`);
}

const days = '30';

/** Writes ca.{crt,key}, apiserver.{crt,key}, sa.{key,pub} and <identity>.{crt,key} into dir. */
export async function writePki(dir: string, serverNames: { ips: readonly string[]; dns: readonly string[] }): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  await openssl(['req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.crt', '-days', days, '-subj', '/CN=saas-kubernetes-ca'], dir);
  const sign = async (name: string, subject: string, extensions: string) => {
    await writeFile(join(dir, `${name}.ext`), extensions);
    await openssl(['req', '-new', ...ec, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', subject], dir);
    await openssl(['x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial',
      '-days', days, '-out', `${name}.crt`, '-extfile', `${name}.ext`], dir);
  };
  const san = [...serverNames.ips.map((ip) => `IP:${ip}`), ...serverNames.dns.map((name) => `DNS:${name}`)].join(',');
  await sign('apiserver', '/CN=kube-apiserver', `subjectAltName=${san}\nextendedKeyUsage=serverAuth\n`);
  for (const identity of Object.values(identities)) {
    const subject = 'group' in identity ? `/O=${identity.group}/CN=${identity.user}` : `/CN=${identity.user}`;
    await sign(identity.name, subject, 'extendedKeyUsage=clientAuth\n');
  }
  await openssl(['genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048', '-out', 'sa.key'], dir);
  await openssl(['pkey', '-in', 'sa.key', '-pubout', '-out', 'sa.pub'], dir);
}
