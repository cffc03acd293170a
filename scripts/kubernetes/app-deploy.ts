import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { parse, parseAllDocuments } from 'yaml';
import { repoRoot, run } from '../engine/engine.js';
import type { Exposure } from './bridge.js';
import type { ClusterImages } from './images.js';
import { ClusterError, nodeIp } from './paths.js';

/*
 * The operator's steps of the README's Kubernetes section, on this project's cluster, for both
 * `npm run k8s:up` and the cluster tests: the host's Vault and PostgreSQL exposed at the first
 * node's address, the namespace and the Secrets the manifests mount (vault-ca, postgres-ca,
 * saas-admin-token), the token reviewer and its bound token, scripts/kubernetes-auth.sh, then
 * deploy/kubernetes/overlays/native-sidecar as shipped, in an overlay of its own that changes
 * only what this cluster needs: the images (the project's stand-ins), the replicas, host
 * aliases sending vault.vault.svc and postgres.saas.svc to the first node (where the host's
 * servers are exposed; in the schema Job's pod too), and what the caller adds (agent files,
 * the app's environment, the pods' tolerations, kinds it applies itself).
 */
export const namespace = 'saas';
/** Vault as the pods reach it (the base's VAULT_ADDR). */
export const vaultInCluster = 'https://vault.vault.svc:8200';

export interface ScriptResult { code: number; stdout: string; stderr: string }

export interface AppDeployment {
  readonly cluster: {
    kube(args: readonly string[], input?: string): Promise<string>;
    expose(clusterPort: number, target: { host: string; port: number }): Promise<Exposure>;
    readonly apiServerUrl: string;
    readonly caFile: string;
    readonly images: ClusterImages;
  };
  /** The host's Vault (TLS, its certificate naming vault.vault.svc), its CA, and the environment its CLI needs (VAULT_ADDR, VAULT_CACERT, VAULT_CLI). */
  readonly vault: { readonly port: number; readonly caFile: string; readonly cliEnv: NodeJS.ProcessEnv; readonly token: string };
  /** The host's PostgreSQL (TLS, its certificate naming postgres.saas.svc) and its CA. */
  readonly postgres: { readonly port: number; readonly caFile: string };
  /** The operator's port's bearer token (the Secret saas-admin-token). */
  readonly adminToken: string;
  /** A folder of the caller's, private to it: the overlay and the tokens' files go there. */
  readonly work: string;
  readonly replicas: number;
  /** Kinds of the rendered overlay not applied (the tests run the schema Job themselves): handed back as YAML. */
  readonly holdBack?: readonly string[];
  /** Files of the agent's ConfigMap to replace (prod.hcl, kubernetes.hcl), by name. */
  readonly agentFiles?: Readonly<Record<string, string>>;
  /** The pods' tolerations instead of the base's (the tests' are shorter). */
  readonly tolerations?: readonly object[];
  /** The app container's environment besides the base's. */
  readonly appEnv?: readonly { name: string; value: string }[];
  /** kubernetes-auth.sh's environment besides the server's and the cluster's (ROLE_TOKEN_TTL...). */
  readonly authEnv?: NodeJS.ProcessEnv;
  /** How a script runs (the tests record its output); by default, quietly. */
  readonly runScript?: (script: string, args: string[], env: NodeJS.ProcessEnv) => Promise<ScriptResult>;
  /** Told every secret value made here (the tests scan their output for them). */
  readonly onSecret?: (what: string, value: string) => void;
  /** Progress lines. */
  readonly say?: (line: string) => void;
}

export interface Toleration { key: string; operator: string; effect: string; tolerationSeconds?: number }

interface PodSpec {
  tolerations?: Toleration[];
  containers: { name: string; env: { name: string; value: string }[] }[];
}

/** The base Deployment's pod spec, as shipped. */
async function shippedPodSpec(): Promise<PodSpec> {
  const deployment = parse(await readFile(join(repoRoot, 'deploy/kubernetes/base/deployment.yaml'), 'utf8')) as
    { spec: { template: { spec: PodSpec } } };
  return deployment.spec.template.spec;
}

/** The base's pod tolerations, as shipped. */
export async function shippedTolerations(): Promise<Toleration[]> {
  return (await shippedPodSpec()).tolerations ?? [];
}

/** The base's OIDC_REDIRECT_URL, as shipped: the issuer registers it as the client's redirect. */
export async function shippedRedirectUrl(): Promise<string> {
  const app = (await shippedPodSpec()).containers.find((c) => c.name === 'app');
  const url = app?.env.find((e) => e.name === 'OIDC_REDIRECT_URL')?.value;
  if (url === undefined) throw new ClusterError('deploy/kubernetes/base/deployment.yaml: the app sets no OIDC_REDIRECT_URL');
  return url;
}

const quietly = (script: string, args: string[], env: NodeJS.ProcessEnv) => run('sh', [join(repoRoot, script), ...args], { env });

export interface DeployedApp {
  /** kubernetes-auth.sh as the operator ran it, to run again. */
  readonly configureAuth: () => Promise<ScriptResult>;
  /** Port 8200 at the first node, leading to the host's Vault (a test closes it to cut Vault off). */
  readonly vaultExposure: Exposure;
  /** The documents of the kinds held back, as YAML. */
  readonly heldBack: string;
}

/** Runs the steps, applies the overlay and waits for the rollout. */
export async function deployApp(d: AppDeployment): Promise<DeployedApp> {
  const { cluster, work } = d;
  const say = d.say ?? (() => undefined);
  const vaultExposure = await cluster.expose(8200, { host: '127.0.0.1', port: d.vault.port });
  await cluster.expose(5432, { host: '127.0.0.1', port: d.postgres.port });

  say(`namespace ${namespace}: the Secrets vault-ca, postgres-ca and saas-admin-token; the token reviewer`);
  await cluster.kube(['create', 'namespace', namespace]);
  await cluster.kube(['create', 'secret', 'generic', 'vault-ca', '-n', namespace, `--from-file=ca.crt=${d.vault.caFile}`]);
  await cluster.kube(['create', 'secret', 'generic', 'postgres-ca', '-n', namespace, `--from-file=ca.crt=${d.postgres.caFile}`]);
  await writeFile(join(work, 'admin-token'), d.adminToken, { mode: 0o600 });
  await cluster.kube(['create', 'secret', 'generic', 'saas-admin-token', '-n', namespace, `--from-file=token=${join(work, 'admin-token')}`]);
  await cluster.kube(['apply', '-k', join(repoRoot, 'deploy/kubernetes/token-reviewer')]);
  const reviewer = (await cluster.kube(['create', 'token', 'vault-token-reviewer', '-n', 'vault', '--duration=720h'])).trim();
  d.onSecret?.('token reviewer jwt', reviewer);
  await writeFile(join(work, 'reviewer.jwt'), reviewer, { mode: 0o600 });

  say('scripts/kubernetes-auth.sh prod');
  const configureAuth = () => (d.runScript ?? quietly)('scripts/kubernetes-auth.sh', ['prod'], {
    ...d.vault.cliEnv, VAULT_TOKEN: d.vault.token, KUBERNETES_HOST: cluster.apiServerUrl, KUBERNETES_CA_FILE: cluster.caFile,
    TOKEN_REVIEWER_JWT_FILE: join(work, 'reviewer.jwt'), ...d.authEnv,
  });
  const configured = await configureAuth();
  if (configured.code !== 0) throw new ClusterError(`scripts/kubernetes-auth.sh prod failed: ${configured.stderr.trim()}`);

  const overlay = join(work, 'overlay');
  await mkdir(overlay, { recursive: true });
  for (const [name, text] of Object.entries(d.agentFiles ?? {})) await writeFile(join(overlay, name), text);
  // The app's pods and the schema Job's reach the host's servers at the first node.
  const hostAliases = [{ ip: nodeIp, hostnames: ['vault.vault.svc', 'postgres.saas.svc'] }];
  const [vaultImage = '', vaultTag = ''] = cluster.images.vault.split(':');
  const [appImage = '', appTag = ''] = cluster.images.app.split(':');
  await writeFile(join(overlay, 'kustomization.yaml'), JSON.stringify({
    apiVersion: 'kustomize.config.k8s.io/v1beta1', kind: 'Kustomization',
    // kustomize takes a base's path relative to the kustomization only.
    resources: [relative(overlay, join(repoRoot, 'deploy/kubernetes/overlays/native-sidecar'))],
    images: [
      { name: 'hashicorp/vault', newName: vaultImage, newTag: vaultTag },
      { name: 'registry.example.com/saas-app', newName: appImage, newTag: appTag },
    ],
    ...(d.agentFiles === undefined ? {} : {
      configMapGenerator: [{ name: 'saas-vault-agent', namespace, behavior: 'merge', files: Object.keys(d.agentFiles) }],
    }),
    patches: [{ patch: JSON.stringify({
      apiVersion: 'batch/v1', kind: 'Job', metadata: { name: 'saas-schema', namespace },
      spec: { template: { spec: { hostAliases } } },
    }) }, { patch: JSON.stringify({
      apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'saas-app', namespace },
      spec: { replicas: d.replicas, template: { spec: {
        hostAliases,
        ...(d.tolerations === undefined ? {} : { tolerations: d.tolerations }),
        containers: [{ name: 'app', env: d.appEnv ?? [] }],
      } } },
    }) }],
  }));
  say('deploy/kubernetes/overlays/native-sidecar, applied; waiting for the rollout');
  const documents = parseAllDocuments(await cluster.kube(['kustomize', '--load-restrictor', 'LoadRestrictionsNone', overlay]));
  const heldBack = (doc: (typeof documents)[number]) => d.holdBack?.includes((doc.toJS() as { kind?: string }).kind ?? '') === true;
  await cluster.kube(['apply', '-f', '-'], documents.filter((doc) => !heldBack(doc)).map(String).join('---\n'));
  await cluster.kube(['rollout', 'status', '-n', namespace, 'deployment/saas-app', '--timeout=180s']);
  return { configureAuth, vaultExposure, heldBack: documents.filter(heldBack).map(String).join('---\n') };
}
