import { randomBytes } from 'node:crypto';
import type { SignedIn } from '../../../scripts/sign-in/play-browser.js';
import { deployApp, shippedRedirectUrl, shippedTolerations } from '../../../scripts/kubernetes/app-deploy.js';
import { podSubnet } from '../../../scripts/kubernetes/paths.js';
import { ensureServerInstalled } from './bao.js';
import { runScript } from './bao-server.js';
import type { Exposure } from '../../../scripts/kubernetes/bridge.js';
import { startTestCluster, type TestCluster } from './kubernetes.js';
import { recordOutput, registerSecret } from './leak-scan.js';
import { enableTls, generateTls } from './postgres-tls.js';
import { addIdentityProviderAfterBootstrap } from './production-identity.js';
import { scaledAgentFile, startScaledVault, type ScaledVault } from './scaled-production.js';
import { asDuration } from './shipped-durations.js';
import type { IdentityProvider } from './sign-in.js';
import { tempDir } from './temp-dirs.js';

/**
 * deploy/kubernetes/overlays/native-sidecar on a real two-node cluster (npm run k8s:start's),
 * against a production Vault of the suite's server (TEST_VAULT_SERVER: Raft, TLS, initialised,
 * first-bootstrap.sh, the database engine on a real PostgreSQL) configured by
 * scripts/kubernetes-auth.sh: the agent logs in with the pod's service account token, which
 * Vault checks with a real TokenReview.
 *
 * What changes in the shipped manifests, in an overlay of its own: the images (the project's
 * stand-ins), 2 replicas, host aliases sending vault.vault.svc and postgres.saas.svc to the node
 * (where the host's Vault and PostgreSQL are exposed, at 8200 and 5432; in the schema Job's pod
 * too, which the deployment leaves out for the test that runs it: applySchemaJob), and every Vault
 * duration divided by one factor, 30 as in the soak test, whose comment says why not 60
 * (env/prod.hcl's and kubernetes.hcl's backoff and render interval, the role's TTLs, the lease
 * TTLs, the service's check interval), and the pods' tolerations of a lost node by the same
 * factor (30 s shipped, 1 s here: Kubernetes counts them in whole seconds, 1 at the least). The
 * pod's own timings (readiness period, DRAIN_DELAY_MS, grace period) are Kubernetes' whole
 * seconds too, and stay as shipped.
 *
 * Sign-in: the issuer is the test's Vault itself, its provider saas-prod and demo users made by
 * scripts/demo-identity.sh after the bootstrap, with a root token regenerated for it and revoked
 * at once (support/production-identity.ts: production keeps no root token), before the overlay
 * is applied, so the agent's first render holds the client's id and secret. Every ID token
 * names the issuer as the pods reach it, https://vault.vault.svc:8200 (ISSUER_ADDR), and the
 * client's redirect is the base's OIDC_REDIRECT_URL as shipped. The overlay sets
 * OIDC_ISSUER_URL to that provider, OIDC_CA_FILE to the vault-ca secret's CA, and
 * TRUSTED_PROXIES to the node's address on the pods' bridge, where the test's connections come
 * from: the test's client plays the TLS proxy (an Ingress) with X-Forwarded-Proto: https, and
 * calls /auth/callback at the pod's address.
 *
 * The operator's other Secrets, as the README lists them: saas-admin-token (the operator's
 * port's bearer token, which every scrape here sends) and postgres-ca (the test PostgreSQL
 * serves TLS with a certificate for postgres.saas.svc from a throw-away CA, and the pods check
 * it with verify-full as shipped). The reviewer's token is a bound one (kubectl create token).
 */
export const factor = 30;
export const namespace = 'saas';
/** Vault as the pods reach it (the base's VAULT_ADDR): the issuer every ID token names. */
const issuerAddr = 'https://vault.vault.svc:8200';
/** The node on the pods' bridge (host-local IPAM's gateway, the subnet's first address): where the test's connections to pods come from. */
export const nodeOnPodBridge = podSubnet.replace(/\.0\/24$/, '.1');
/** What the TLS proxy in front of the pods adds: the service then sets and reads its __Host- cookies. */
export const overTls = { 'X-Forwarded-Proto': 'https' } as const;

export interface Pod {
  metadata: { name: string; uid: string; deletionTimestamp?: string };
  status: {
    podIP?: string; phase: string;
    conditions?: { type: string; status: string }[];
    containerStatuses?: { name: string; ready: boolean; restartCount?: number; state: Record<string, unknown> }[];
    initContainerStatuses?: { name: string; started?: boolean; restartCount?: number; state: Record<string, unknown> }[];
  };
}
export interface Status {
  secrets: { paths: { path: string; version: number | null }[] };
  lease: { path: string } | null;
  agent: { state: 'on_time' | 'overdue' | 'unknown' } | null;
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The first defined answer of `check`, asked every 100 ms; throws naming `what` after `ms`. */
export async function until<T>(what: string, ms: number, check: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + ms;
  let last = '';
  while (Date.now() < deadline) {
    try {
      const found = await check();
      if (found !== undefined) return found;
    } catch (error) { last = error instanceof Error ? error.message : String(error); }
    await sleep(100);
  }
  throw new Error(`${what} within ${ms} ms${last === '' ? '' : ` (last: ${last})`}`);
}

/** The cluster, its Vault, and the app deployed, with the ways a test reaches its pods. */
export interface NativeSidecar {
  readonly cluster: TestCluster;
  readonly vault: ScaledVault;
  pods(): Promise<Pod[]>;
  /** The pods not being deleted that have an address. */
  runningPods(): Promise<Pod[]>;
  /** A pod's port 3000 (or 3001, the operator's) at a loopback port of the host. */
  podUrl(pod: Pod, port?: number): Promise<string>;
  podStatus(pod: Pod): Promise<Status>;
  agentToken(pod: Pod): Promise<string>;
  /** The operator's port's bearer token (the Secret saas-admin-token). */
  readonly adminToken: string;
  /** The headers a scrape of the operator's port sends. */
  readonly adminHeaders: Record<string, string>;
  /** scripts/kubernetes-auth.sh run again as the operator first ran it. */
  configureAuth(): Promise<{ code: number; stdout: string; stderr: string }>;
  /**
   * Where the pods' vault.vault.svc:8200 leads from now on: the test's Vault (no argument),
   * another address of the host's, or nowhere (null: connections refused). Open connections end.
   */
  routeVault(to?: { host: string; port: number } | null): Promise<void>;
  /** The overlay's schema Job as the test renders it (its images and host aliases), applied now. */
  applySchemaJob(): Promise<void>;
  /** The test's issuer (see the top of this file). */
  readonly identity: IdentityProvider;
  /** Signs in at a pod, as a browser behind the TLS proxy does: the callback called at the pod's address. */
  signIn(pod: Pod, user?: string): Promise<SignedIn>;
  /** Records every container's log for the secret scan, then stops the cluster and Vault. */
  stop(): Promise<void>;
}

/**
 * Starts the cluster and the Vault, runs the operator's steps as the README gives them, applies
 * the overlay and waits for the rollout. On a failure, stops whatever started before throwing.
 */
export async function deployNativeSidecar(): Promise<NativeSidecar> {
  await ensureServerInstalled();
  // Both, even when one fails: whichever started is stopped.
  const [startedCluster, startedVault] = await Promise.allSettled([startTestCluster(), startScaledVault(factor, ['vault.vault.svc'])]);
  const cluster = startedCluster.status === 'fulfilled' ? startedCluster.value : undefined;
  const vault = startedVault.status === 'fulfilled' ? startedVault.value : undefined;
  const pods = async (): Promise<Pod[]> =>
    cluster === undefined ? [] : (await cluster.api<{ items: Pod[] }>(`/api/v1/namespaces/${namespace}/pods?labelSelector=app%3Dsaas-app`)).items;
  const stop = async () => {
    if (cluster !== undefined) {
      for (const pod of await pods().catch(() => [])) {
        for (const container of ['app', 'vault-agent']) {
          const log = await cluster.kube(['logs', '-n', namespace, pod.metadata.name, '-c', container]).catch(() => '');
          recordOutput(`${pod.metadata.name}/${container} log`, log);
        }
      }
      await cluster.stop();
    }
    await vault?.stop();
  };
  let configured: Configured;
  let identity: IdentityProvider;
  const adminToken = randomBytes(24).toString('hex');
  registerSecret('admin port token', adminToken);
  const adminHeaders = { Authorization: `Bearer ${adminToken}` };
  try {
    for (const outcome of [startedCluster, startedVault]) if (outcome.status === 'rejected') throw outcome.reason;
    if (cluster === undefined || vault === undefined) throw new Error('unreachable: both started');
    identity = await addIdentityProviderAfterBootstrap(vault.node, vault.adminToken, vault.unsealKeys, await shippedRedirectUrl(),
      { appEnv: 'prod', caFile: vault.tls.ca, extraEnv: { ISSUER_ADDR: issuerAddr } });
    configured = await configure(cluster, vault, adminToken);
  } catch (error) {
    await stop();
    throw error;
  }
  const podUrl = async (pod: Pod, port = 3000) => `http://127.0.0.1:${(await cluster.forward(`${pod.status.podIP ?? ''}:${port}`)).port}`;
  const { configureAuth, routeVault, schemaJob } = configured;
  return {
    cluster, vault, pods, stop, podUrl, configureAuth, routeVault, identity, adminToken, adminHeaders,
    applySchemaJob: async () => { await cluster.kube(['apply', '-f', '-'], schemaJob); },
    signIn: async (pod, user = 'acme') => identity.signIn(await podUrl(pod), user, { ...overTls }),
    runningPods: async () => (await pods()).filter((p) => p.metadata.deletionTimestamp === undefined && p.status.podIP !== undefined),
    podStatus: async (pod) => (await (await fetch(`${await podUrl(pod, 3001)}/status`, { headers: adminHeaders })).json()) as Status,
    agentToken: (pod) => cluster.kube(['exec', '-n', namespace, pod.metadata.name, '-c', 'vault-agent', '--', 'cat', '/vault/secrets/token']),
  };
}

interface Configured extends Pick<NativeSidecar, 'configureAuth' | 'routeVault'> {
  /** The rendered Job (YAML), which the deployment leaves out: a test applies it when it wants it to run. */
  readonly schemaJob: string;
}

async function configure(cluster: TestCluster, vault: ScaledVault, adminToken: string): Promise<Configured> {
  const d = vault.durations;
  const testVault = { host: '127.0.0.1', port: Number(new URL(vault.node.addr).port) };
  // PostgreSQL serves TLS, with a certificate for the name the pods dial.
  const pgTls = await generateTls('postgres.saas.svc');
  await enableTls(vault.pg, pgTls);
  // The operator's steps and the shipped overlay (scripts/kubernetes/app-deploy.ts), with only
  // what a test cluster needs changed (see the comment above). Everything but the schema Job,
  // which the test that checks it runs (the kill switch's file does not).
  const deployed = await deployApp({
    cluster, adminToken, work: await tempDir('kubernetes'), replicas: 2, holdBack: ['Job'],
    vault: { port: testVault.port, caFile: vault.tls.ca, cliEnv: vault.node.cliEnv(), token: vault.harnessToken },
    postgres: { port: vault.pg.layout.port, caFile: pgTls.ca },
    authEnv: { ROLE_TOKEN_TTL: asDuration(d.tokenTtl), ROLE_TOKEN_MAX_TTL: asDuration(d.tokenMaxTtl) },
    tolerations: (await shippedTolerations()).map((t) => (t.tolerationSeconds === undefined ? t
      : { ...t, tolerationSeconds: Math.max(1, Math.round(t.tolerationSeconds / factor)) })),
    agentFiles: {
      'prod.hcl': await scaledAgentFile('env/prod.hcl', d, ['min_backoff', 'max_backoff', 'static_secret_render_interval']),
      'kubernetes.hcl': await scaledAgentFile('kubernetes.hcl', d, ['min_backoff', 'max_backoff', 'static_secret_render_interval']),
    },
    appEnv: [
      { name: 'TOKEN_CHECK_MAX_INTERVAL_MS', value: String(d.checkInterval) },
      // The test's issuer, behind the vault-ca secret's CA, and the test's client as the TLS proxy.
      { name: 'OIDC_ISSUER_URL', value: `${issuerAddr}/v1/identity/oidc/provider/saas-prod` },
      { name: 'OIDC_CA_FILE', value: '/vault/tls/ca.crt' },
      { name: 'TRUSTED_PROXIES', value: nodeOnPodBridge },
    ],
    runScript, onSecret: registerSecret,
  });
  let vaultExposure: Exposure | undefined = deployed.vaultExposure;
  const routeVault = async (to: { host: string; port: number } | null = testVault) => {
    await vaultExposure?.close();
    vaultExposure = undefined;
    if (to === null) return;
    // The cluster's end of the closed exposure stops listening a moment later: tried again until it has.
    vaultExposure = await until('port 8200 exposed again', 5000, () => cluster.expose(8200, to));
  };
  return { configureAuth: deployed.configureAuth, routeVault, schemaJob: deployed.heldBack };
}
