import { expect } from 'chai';
import { Deployment as DeploymentModel } from 'kubernetes-models/apps/v1';
import { NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1';
import { Service, ServiceAccount } from 'kubernetes-models/v1';
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import ts from 'typescript';
import { parseAllDocuments } from 'yaml';
import { readSettings } from '../../src/config/settings.js';
import { shutdownTimeoutFor } from '../../src/process/graceful-shutdown.js';
import { repoRoot } from '../support/repo-root.js';

const run = promisify(execFile);

/** The kustomize overlay the injector runs, and the base it patches. */
const overlayDir = 'deploy/kubernetes/overlays/injector';
const baseDir = 'deploy/kubernetes/base';

/**
 * The overlay as `kubectl kustomize` renders it, with the pinned kubectl: what `kubectl apply -k`
 * would send. scripts/install-kubernetes.sh prints the folder holding it (a second run only
 * checks the version; cold, it builds Kubernetes first, about 14 minutes).
 */
async function renderOverlay(dir = overlayDir): Promise<string> {
  const install = await run('sh', [join(repoRoot, 'scripts/install-kubernetes.sh')], { maxBuffer: 64 * 1024 * 1024 });
  const kubectl = join(install.stdout.trim(), 'kubectl');
  // The native sidecar's ConfigMap is made from agent-config/, outside its folder.
  return (await run(kubectl, ['kustomize', '--load-restrictor', 'LoadRestrictionsNone', join(repoRoot, dir)], { maxBuffer: 16 * 1024 * 1024 })).stdout;
}

/** The models of the kinds the rendered overlay holds: kubernetes-models' precompiled OpenAPI validators. */
const models = { Deployment: DeploymentModel, NetworkPolicy, PodDisruptionBudget, Service, ServiceAccount } as const;
type Kind = keyof typeof models;
const isKind = (kind: unknown): kind is Kind => typeof kind === 'string' && Object.hasOwn(models, kind);

let interfaces: { checker: ts.TypeChecker; kindsType: ts.Type } | undefined;

/** The interfaces of the kinds above, compiled once (a program takes about a second). */
function kindInterfaces(): { checker: ts.TypeChecker; kindsType: ts.Type } {
  if (interfaces !== undefined) return interfaces;
  const entry = join(repoRoot, 'service/test/deploy/kubernetes-kinds.virtual.ts');
  const source = `import type { IDeployment } from 'kubernetes-models/apps/v1/Deployment';
import type { INetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1/NetworkPolicy';
import type { IPodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget';
import type { IService } from 'kubernetes-models/v1/Service';
import type { IServiceAccount } from 'kubernetes-models/v1/ServiceAccount';
export interface Kinds {
  Deployment: IDeployment; NetworkPolicy: INetworkPolicy; PodDisruptionBudget: IPodDisruptionBudget; Service: IService;
  ServiceAccount: IServiceAccount;
}\n`;
  const options: ts.CompilerOptions = {
    module: ts.ModuleKind.NodeNext, moduleResolution: ts.ModuleResolutionKind.NodeNext, strict: true, noEmit: true,
    types: [],
  };
  const host = ts.createCompilerHost(options);
  const getSourceFile = host.getSourceFile.bind(host);
  const fileExists = host.fileExists.bind(host);
  const readFileText = host.readFile.bind(host);
  host.getSourceFile = (name, language, ...rest) => name === entry
    ? ts.createSourceFile(name, source, language) : getSourceFile(name, language, ...rest);
  host.fileExists = (name) => name === entry || fileExists(name);
  host.readFile = (name) => name === entry ? source : readFileText(name);
  const program = ts.createProgram([entry], options, host);
  const checker = program.getTypeChecker();
  const file = program.getSourceFile(entry);
  const kinds = file && checker.getSymbolAtLocation(file)?.exports?.get(ts.escapeLeadingUnderscores('Kinds'));
  if (kinds === undefined) throw new Error('cannot load the kubernetes-models interfaces');
  interfaces = { checker, kindsType: checker.getDeclaredTypeOfSymbol(kinds) };
  return interfaces;
}

/**
 * The validators accept fields the schema does not know (Kubernetes itself drops them, with at
 * most a warning): a misspelled `readinesProbe` would pass. This walks a document along the
 * model's TypeScript interface, which kubernetes-models generates from the same OpenAPI schema,
 * and returns the path of every field the interface does not declare. Maps (`annotations`,
 * `labels`: a string index signature) accept any key. Offline: only the installed .d.ts files.
 */
function unknownFields(kind: Kind, document: unknown): string[] {
  const { checker, kindsType } = kindInterfaces();
  const root = kindsType.getProperty(kind);
  if (root === undefined) throw new Error(`no interface for ${kind}`);

  const found: string[] = [];
  const walk = (value: unknown, type: ts.Type, path: string): void => {
    if (value === null || typeof value !== 'object') return;
    const objectTypes = (type.isUnion() ? type.types : [type])
      .map((t) => checker.getNonNullableType(t)).filter((t) => (t.flags & ts.TypeFlags.Object) !== 0);
    if (objectTypes.length === 0) return;
    if (Array.isArray(value)) {
      const arrays = objectTypes.filter((t) => checker.isArrayType(t));
      const element = arrays[0] === undefined ? undefined : checker.getTypeArguments(arrays[0] as ts.TypeReference)[0];
      if (element === undefined) { found.push(`${path} (not a list)`); return; }
      value.forEach((item, index) => { walk(item, element, `${path}[${index}]`); });
      return;
    }
    const objectType = objectTypes.find((t) => !checker.isArrayType(t));
    if (objectType === undefined) { found.push(`${path} (a list expected)`); return; }
    const mapValue = objectType.getStringIndexType();
    for (const [key, child] of Object.entries(value)) {
      const property = objectType.getProperty(key);
      if (property !== undefined) walk(child, checker.getTypeOfSymbol(property), `${path}.${key}`);
      else if (mapValue !== undefined) walk(child, mapValue, `${path}.${key}`);
      else found.push(`${path}.${key}`);
    }
  };
  walk(document, checker.getTypeOfSymbol(root), kind);
  return found;
}

/**
 * The injector's annotations the overlay uses, and a few newer ones, each with the first
 * vault-k8s release that reads it (a trailing `-` marks a per-file annotation). Read from
 * vault-k8s's agent-inject/agent/annotations.go at each release tag.
 */
const injectorAnnotations: readonly (readonly [string, string])[] = [
  ['agent-inject', '0.1.0'], ['role', '0.1.0'], ['ca-cert', '0.1.0'], ['tls-secret', '0.1.0'],
  ['agent-pre-populate-only', '0.1.0'], ['agent-inject-template-', '0.1.0'], ['agent-inject-token', '0.3.0'],
  ['agent-inject-file-', '0.5.0'], ['agent-inject-perms-', '0.12.0'], ['template-static-secret-render-interval', '0.12.0'],
  ['agent-service-account-token-volume-name', '0.13.0'], ['auth-min-backoff', '0.16.0'], ['error-on-missing-key-', '1.4.0'], ['agent-template-left-delim-', '1.5.0'],
  ['template-lease-renewal-threshold', '1.7.0'],
];

function compareVersions(a: string, b: string): number {
  const [x, y] = [a, b].map((v) => v.split('.').map(Number));
  for (let i = 0; i < 3; i++) if ((x?.[i] ?? 0) !== (y?.[i] ?? 0)) return (x?.[i] ?? 0) - (y?.[i] ?? 0);
  return 0;
}

interface Metadata { name: string; namespace?: string; labels?: Record<string, string> }

interface Deployment {
  kind: 'Deployment';
  metadata: Metadata;
  spec: {
    template: {
      metadata: { labels: Record<string, string>; annotations: Record<string, string> };
      spec: {
        serviceAccountName: string;
        terminationGracePeriodSeconds?: number;
        containers: {
          name: string; env: { name: string; value: string }[]; readinessProbe: { httpGet: { path: string } };
          ports: { name: string; containerPort: number }[];
          volumeMounts?: { name: string; mountPath: string }[];
        }[];
      };
    };
  };
}

interface ServiceDocument {
  kind: 'Service';
  metadata: Metadata;
  spec: { selector: Record<string, string>; ports: { name?: string; port: number; targetPort?: string | number }[] };
}

interface DisruptionBudget { kind: 'PodDisruptionBudget'; metadata: Metadata; spec: { selector: { matchLabels: Record<string, string> } } }

interface Selector { matchLabels?: Record<string, string> }
interface PolicyPeer { podSelector?: Selector; namespaceSelector?: Selector; ipBlock?: unknown }
interface PolicyPort { protocol: string; port: number }
interface Policy {
  kind: 'NetworkPolicy';
  metadata: Metadata;
  spec: {
    podSelector: Selector; policyTypes: string[];
    ingress?: { from?: PolicyPeer[]; ports?: PolicyPort[] }[];
    egress?: { to?: PolicyPeer[]; ports?: PolicyPort[] }[];
  };
}

type Document = Deployment | ServiceDocument | DisruptionBudget | Policy
  | { kind: 'ServiceAccount'; metadata: Metadata; automountServiceAccountToken?: boolean };

function only<K extends Document['kind']>(documents: readonly Document[], kind: K): Extract<Document, { kind: K }> {
  const found = documents.filter((d): d is Extract<Document, { kind: K }> => d.kind === kind);
  expect(found, `one ${kind}`).to.have.length(1);
  return found[0] as Extract<Document, { kind: K }>;
}

/** The `#` comment lines of one of the overlay's or the base's files: what operators read there. */
async function comments(path: string): Promise<string> {
  const text = await readFile(join(repoRoot, path), 'utf8');
  return text.split('\n').filter((l) => l.startsWith('#')).join('\n');
}

describe(`${overlayDir}: the agent injector in place of the compose agent, the kustomize base and overlay rendered by the pinned kubectl (no cluster)`, function () {
  let documents: Document[];
  let deployment: Deployment;
  let annotations: Record<string, string>;

  before(async function () {
    // Cold, the install builds the pinned Kubernetes first (see renderOverlay).
    this.timeout(30 * 60_000);
    const docs = parseAllDocuments(await renderOverlay());
    for (const doc of docs) expect(doc.errors).to.deep.equal([]);
    documents = docs.map((doc) => doc.toJS() as Document);
    deployment = only(documents, 'Deployment');
    annotations = deployment.spec.template.metadata.annotations;
  });

  it('is valid against the Kubernetes OpenAPI schemas (kubernetes-models), offline', function () {
    expect(documents.map((d) => d.kind)).to.have.members(['ServiceAccount', 'Service', 'Deployment', 'PodDisruptionBudget', 'NetworkPolicy', 'NetworkPolicy', 'NetworkPolicy']);
    for (const document of documents) {
      const kind: string = document.kind; // as rendered: any kind an overlay may add
      if (!isKind(kind)) throw new Error(`no model for kind ${kind}`);
      // validate() throws with the schema's errors (types, required fields, enums).
      expect(() => { new models[kind](document as never).validate(); }, kind).to.not.throw();
    }
  });

  it('holds no field the schemas do not know (a misspelling would be dropped silently)', function () {
    for (const document of documents) {
      const kind: string = document.kind; // as rendered: any kind an overlay may add
      if (!isKind(kind)) throw new Error(`no model for kind ${kind}`);
      expect(unknownFields(kind, document), kind).to.deep.equal([]);
    }
    // The check sees what validate() lets through.
    const misspelled = structuredClone(deployment) as unknown as { spec: { template: { spec: { containers: object[] } } } };
    misspelled.spec.template.spec.containers[0] = { ...misspelled.spec.template.spec.containers[0], readinesProbe: {} };
    expect(() => { new DeploymentModel(misspelled as never).validate(); }).to.not.throw();
    expect(unknownFields('Deployment', misspelled)).to.deep.equal(['Deployment.spec.template.spec.containers[0].readinesProbe']);
  });

  it('uses only annotations the injector knows, for files it templates, and states the vault-k8s version they need', async function () {
    const keys = Object.keys(annotations).filter((k) => k.startsWith('vault.hashicorp.com/'));
    // An injector ignores an annotation it does not know, and a per-file one for a file it does not template.
    const templated = keys.filter((k) => k.startsWith('vault.hashicorp.com/agent-inject-template-'))
      .map((k) => k.slice('vault.hashicorp.com/agent-inject-template-'.length));
    expect(templated).to.have.length.greaterThan(0);
    const required = keys.map((key) => {
      const name = key.slice('vault.hashicorp.com/'.length);
      const perFile = injectorAnnotations.find(([prefix]) => prefix.endsWith('-') && name.startsWith(prefix));
      if (perFile !== undefined) expect(templated, `${key}: a file the injector templates`).to.include(name.slice(perFile[0].length));
      const known = perFile ?? injectorAnnotations.find(([exact]) => exact === name);
      expect(known, `${key} is not an annotation vault-k8s knows`).to.not.equal(undefined);
      return known?.[1] ?? '0.0.0';
    });
    // Templates without an agent-inject-secret-* annotation: vault-k8s 1.3.0 (its CHANGELOG, GH-505).
    if (!keys.some((k) => k.startsWith('vault.hashicorp.com/agent-inject-secret-'))) required.push('1.3.0');
    const needed = required.reduce((a, b) => (compareVersions(a, b) >= 0 ? a : b));
    const overlay = await comments(`${overlayDir}/kustomization.yaml`);
    const plan = await readFile(join(repoRoot, 'specs/vault/plan-vault.md'), 'utf8');
    expect(/vault-k8s >= (\d+\.\d+\.\d+)\./.exec(overlay)?.[1], 'the version the overlay tells operators to run').to.equal(needed);
    expect(/vault-k8s ≥ (\d+\.\d+\.\d+)\*\*/.exec(plan)?.[1], 'the version the plan tells operators to run').to.equal(needed);
  });

  it('gives the plan the Vault-side kubernetes auth commands and the injector version, as the overlay does', async function () {
    const overlay = await comments(`${overlayDir}/kustomization.yaml`);
    const plan = await readFile(join(repoRoot, 'specs/vault/plan-vault.md'), 'utf8');
    const oneLine = (text: string) => text.replace(/\\\n\s*#?\s*/g, '').replace(/\s+/g, ' ');
    const commands = oneLine(overlay)
      .match(/vault (?:auth enable|write) auth\/kubernetes\S*(?: \S+=\S+)*|vault auth enable kubernetes/g) ?? [];
    expect(commands).to.have.length(3);
    for (const command of commands) expect(oneLine(plan), command).to.contain(command);
    expect(plan).to.contain('vault-k8s ≥ 1.4.0');
  });

  it('renders agent-config/secrets.json.ctmpl, for the application saas in prod, 0440, failing on a missing key', async function () {
    const template = await readFile(join(repoRoot, 'agent-config/secrets.json.ctmpl'), 'utf8');
    expect(annotations['vault.hashicorp.com/agent-inject-template-app.json']?.trimEnd())
      .to.equal(template.replace('or (env "APP_NAME") "saas"', '"saas"').replace('(env "APP_ENV")', '"prod"')
        .replace('(env "DATABASE_CREDENTIALS")', '"dynamic"').trimEnd());
    expect(annotations).to.include({
      'vault.hashicorp.com/agent-inject': 'true',
      'vault.hashicorp.com/agent-inject-perms-app.json': '0440',
      'vault.hashicorp.com/error-on-missing-key-app.json': 'true',
      'vault.hashicorp.com/agent-pre-populate-only': 'false',
      'vault.hashicorp.com/agent-inject-token': 'true',
      'vault.hashicorp.com/role': 'saas-app-prod',
    });
  });

  it('configures the app exactly as compose does: agent mode, the injector\'s files, no secret', function () {
    const app = deployment.spec.template.spec.containers.find((c) => c.name === 'app');
    const env = Object.fromEntries(app?.env.map((e) => [e.name, e.value]) ?? []);
    expect(env).to.include({
      SECRETS_MODE: 'agent', APP_NAME: 'saas', APP_ENV: 'prod', SECRETS_FILE: '/vault/secrets/app.json', VAULT_TOKEN_FILE: '/vault/secrets/token',
      // The template above takes the database user from database/creds/saas-app-prod: the
      // application and environment written into it are the app's.
      DATABASE_CREDENTIALS: 'dynamic',
    });
    for (const name of Object.keys(env)) expect(name).to.not.match(/PASSWORD|SECRET_ID|ROLE_ID|^VAULT_TOKEN$/);
    expect(app?.readinessProbe.httpGet.path).to.equal('/readyz');
    // TLS to Vault with the vault-ca secret's CA; /vault/secrets is the injector's own volume,
    // which it mounts into every container (a second mount at that path would be refused).
    expect(env).to.include({ VAULT_CACERT: '/vault/tls/ca.crt' });
    expect(app?.volumeMounts).to.deep.include({ name: 'vault-ca', mountPath: '/vault/tls', readOnly: true });
    expect(app?.volumeMounts?.map((m) => m.mountPath)).to.not.include('/vault/secrets');
  });

  it('gives the app the sign-in settings, https as production needs them, and the TLS proxy\'s setting to fill in', function () {
    const app = deployment.spec.template.spec.containers.find((c) => c.name === 'app');
    const env = Object.fromEntries(app?.env.map((e) => [e.name, e.value]) ?? []);
    expect(Object.keys(env)).to.include.members(['OIDC_ISSUER_URL', 'OIDC_REDIRECT_URL', 'TRUSTED_PROXIES']);
    // The service's own parser, with APP_ENV=prod as the manifests set it: both https, the
    // redirect the service's /auth/callback. An http one would stop the pod at start-up.
    const settings = readSettings(env);
    expect(settings.appEnv).to.equal('prod');
    expect(new URL(settings.oidcIssuerUrl).protocol).to.equal('https:');
    expect(new URL(settings.oidcRedirectUrl)).to.include({ protocol: 'https:', pathname: '/auth/callback', search: '' });
    // The Ingress controller is the operator's to name: nothing is trusted until then.
    expect(settings.trustedProxies).to.deep.equal([]);
  });

  it('gives the pod longer to stop than the service\'s shutdown deadline for the DRAIN_DELAY_MS it sets', async function () {
    const base = parseAllDocuments(await readFile(join(repoRoot, `${baseDir}/deployment.yaml`), 'utf8'));
    for (const [what, pod] of [['the base', only(base.map((doc) => doc.toJS() as Document), 'Deployment')], ['the overlay', deployment]] as const) {
      const app = pod.spec.template.spec.containers.find((c) => c.name === 'app');
      const env = Object.fromEntries(app?.env.map((e) => [e.name, e.value]) ?? []);
      expect(env, `${what}: DRAIN_DELAY_MS set beside the grace period it decides`).to.have.property('DRAIN_DELAY_MS');
      // The service's own parser: a value it refused would stop the pod at start-up.
      const deadlineMs = shutdownTimeoutFor(readSettings(env).drainDelayMs);
      // Past the grace period the kubelet kills the pod: the shutdown's last steps and its log line lost.
      expect((pod.spec.template.spec.terminationGracePeriodSeconds ?? 30) * 1000, `${what}: grace period, ms`).to.be.greaterThan(deadlineMs);
    }
  });

  it('leaves the injector\'s annotations to the overlay: the base asks no injector for a sidecar', async function () {
    const base = parseAllDocuments(await readFile(join(repoRoot, `${baseDir}/deployment.yaml`), 'utf8'));
    const baseDeployment = only(base.map((doc) => doc.toJS() as Document), 'Deployment');
    // Every overlay builds on the base: one that delivers the secrets itself would get an injected agent too.
    expect(Object.keys(baseDeployment.spec.template.metadata.annotations)
      .filter((key) => key.startsWith('vault.hashicorp.com/'))).to.deep.equal([]);
    expect(Object.keys(annotations).filter((key) => key.startsWith('vault.hashicorp.com/'))).to.not.deep.equal([]);
  });

  it('runs the pod as the service account, in the namespace, that the Vault role binds', async function () {
    const role = (await comments(`${overlayDir}/kustomization.yaml`)).replace(/\\\n#\s*/g, '');
    expect(role).to.match(/auth\/kubernetes\/role\/saas-app-prod .*bound_service_account_names=saas-app bound_service_account_namespaces=saas /);
    expect(deployment.spec.template.spec.serviceAccountName).to.equal('saas-app');
    expect(only(documents, 'ServiceAccount').metadata.name).to.equal('saas-app');
    for (const document of documents) expect(document.metadata.namespace, document.kind).to.equal('saas');
  });

  it('exposes the operator\'s port to the cluster with the scrape annotations, and no Service for it: the one Service lists port 3000', function () {
    const app = deployment.spec.template.spec.containers.find((c) => c.name === 'app');
    const env = Object.fromEntries(app?.env.map((e) => [e.name, e.value]) ?? []);
    expect(env).to.include({ ADMIN_HOST: '0.0.0.0', ADMIN_PORT: '3001' });
    expect(app?.ports).to.deep.include({ name: 'admin', containerPort: 3001 });
    expect(annotations).to.include({
      'prometheus.io/scrape': 'true', 'prometheus.io/port': '3001', 'prometheus.io/path': '/metrics',
    });
    // The one Service routes to the app's port, by its name, and to nothing else.
    const service = only(documents, 'Service');
    expect(service.spec.ports, 'nothing routes outside traffic to the admin port').to.deep.equal([{ name: 'http', port: 3000, targetPort: 'http' }]);
    expect(app?.ports).to.deep.include({ name: 'http', containerPort: 3000 });
  });

  it('selects the app\'s pods, in the Service and in the disruption budget', function () {
    const podLabels = deployment.spec.template.metadata.labels;
    // A selector that matches no pod routes nothing and protects nothing, silently; an empty
    // one routes to, or counts, every pod of the namespace.
    for (const selector of [only(documents, 'Service').spec.selector, only(documents, 'PodDisruptionBudget').spec.selector.matchLabels]) {
      expect(selector).to.deep.equal({ app: 'saas-app' });
      expect(podLabels).to.include(selector);
    }
  });
});

/** A container and a pod as the least-privilege checks read them. */
interface Container {
  name: string;
  env?: { name: string; value: string }[];
  ports?: { name: string; containerPort: number }[];
  volumeMounts?: { name: string; mountPath: string; readOnly?: boolean }[];
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
  securityContext?: Record<string, unknown>;
}
interface PodTemplate {
  metadata: { labels: Record<string, string>; annotations?: Record<string, string> };
  spec: {
    automountServiceAccountToken?: boolean;
    containers: Container[];
    initContainers?: Container[];
    volumes: { name: string; secret?: { secretName: string }; projected?: { sources: { serviceAccountToken?: { audience?: string; expirationSeconds?: number; path: string } }[] } }[];
  };
}

/** Kubernetes quantities the manifests use: cpu in cores or m, memory in Mi or Gi. */
function quantity(value: string): number {
  const match = /^(\d+(?:\.\d+)?)(m|Mi|Gi)?$/.exec(value);
  if (match === null) throw new Error(`a quantity the check does not read: ${value}`);
  const units: Record<string, number> = { m: 1e-3, Mi: 2 ** 20, Gi: 2 ** 30 };
  return Number(match[1]) * (match[2] === undefined ? 1 : units[match[2]] ?? Number.NaN);
}

describe('deploy/kubernetes: least privilege in the shipped manifests, rendered by the pinned kubectl (no cluster; issue 33)', function () {
  const rendered: Record<'injector' | 'native-sidecar', Document[]> = { injector: [], 'native-sidecar': [] };
  const pod = (variant: keyof typeof rendered) => (only(rendered[variant], 'Deployment').spec.template as unknown as PodTemplate);
  const allContainers = (template: PodTemplate) => [...template.spec.containers, ...template.spec.initContainers ?? []];
  /** The native-sidecar overlay's schema Job. */
  const schemaJob = () => {
    const jobs = rendered['native-sidecar'].filter((d) => (d as { kind: string }).kind === 'Job');
    expect(jobs, 'one Job').to.have.length(1);
    return jobs[0] as unknown as { metadata: Metadata; spec: { template: PodTemplate } };
  };
  const envOf = (container: Container | undefined) => Object.fromEntries(container?.env?.map((e) => [e.name, e.value]) ?? []);
  let tokenReviewer: { kind: string; type?: string; metadata: Metadata }[];

  before(async function () {
    this.timeout(30 * 60_000);
    for (const variant of ['injector', 'native-sidecar'] as const) {
      rendered[variant] = parseAllDocuments(await renderOverlay(`deploy/kubernetes/overlays/${variant}`)).map((doc) => doc.toJS() as Document);
    }
    tokenReviewer = parseAllDocuments(await renderOverlay('deploy/kubernetes/token-reviewer')).map((doc) => doc.toJS() as typeof tokenReviewer[number]);
  });

  it('mounts no default service account token in the pod, and the agent\'s own token, for the audience vault, in its container only', async function () {
    for (const variant of ['injector', 'native-sidecar'] as const) {
      expect(pod(variant).spec.automountServiceAccountToken, variant).to.equal(false);
      const account = only(rendered[variant], 'ServiceAccount') as { automountServiceAccountToken?: boolean };
      expect(account.automountServiceAccountToken, `${variant}: the ServiceAccount`).to.equal(false);
      const tokens = pod(variant).spec.volumes.filter((v) => v.projected?.sources.some((source) => source.serviceAccountToken !== undefined));
      expect(tokens.map((v) => [v.name, v.projected?.sources[0]?.serviceAccountToken]), variant)
        .to.deep.equal([['vault-token', { audience: 'vault', expirationSeconds: 600, path: 'token' }]]);
    }
    // The native sidecar: only the agent mounts it, where kubernetes.hcl reads it.
    const sidecar = pod('native-sidecar');
    const mounts = allContainers(sidecar).flatMap((c) => (c.volumeMounts ?? []).filter((m) => m.name === 'vault-token').map((m) => ({ container: c.name, path: m.mountPath })));
    expect(mounts).to.deep.equal([{ container: 'vault-agent', path: '/var/run/secrets/vault' }]);
    const agentConfig = await readFile(join(repoRoot, 'agent-config/kubernetes.hcl'), 'utf8');
    expect(/^\s*token_path\s*=\s*"([^"]+)"/m.exec(agentConfig)?.[1]).to.equal('/var/run/secrets/vault/token');
    // The injector mounts the named volume in its own containers only.
    expect(pod('injector').metadata.annotations?.['vault.hashicorp.com/agent-service-account-token-volume-name']).to.equal('vault-token');
    expect(allContainers(pod('injector')).flatMap((c) => c.volumeMounts ?? []).map((m) => m.name)).to.not.include('vault-token');
    // The role binds that audience: kubernetes-auth.sh's default, and the plan's command.
    const script = await readFile(join(repoRoot, 'scripts/kubernetes-auth.sh'), 'utf8');
    expect(script).to.match(/^audience=\$\{KUBERNETES_AUDIENCE:-vault\}$/m);
    expect(script).to.match(/auth\/kubernetes\/role\/\$role" \\\n.*\n\s+audience="\$audience"/);
  });

  it('gives the operator\'s port on 0.0.0.0 the bearer token of the Secret saas-admin-token, mounted in the app container only', function () {
    for (const variant of ['injector', 'native-sidecar'] as const) {
      const template = pod(variant);
      const app = template.spec.containers.find((c) => c.name === 'app');
      const env = envOf(app);
      expect(env, variant).to.include({ ADMIN_HOST: '0.0.0.0' });
      // The service's own parser refuses a non-loopback ADMIN_HOST in prod without ADMIN_TOKEN_FILE.
      expect(() => readSettings(env), variant).to.not.throw();
      const volume = template.spec.volumes.find((v) => v.secret?.secretName === 'saas-admin-token');
      const mount = app?.volumeMounts?.find((m) => m.name === volume?.name);
      expect(mount, `${variant}: the Secret's mount`).to.not.equal(undefined);
      expect(mount?.readOnly).to.equal(true);
      expect(env.ADMIN_TOKEN_FILE?.startsWith(`${mount?.mountPath ?? '?'}/`), env.ADMIN_TOKEN_FILE).to.equal(true);
      expect(allContainers(template).filter((c) => c.volumeMounts?.some((m) => m.name === volume?.name)).map((c) => c.name)).to.deep.equal(['app']);
    }
  });

  it('reaches PostgreSQL with verify-full, the CA from the Secret postgres-ca', function () {
    const template = pod('native-sidecar');
    const app = template.spec.containers.find((c) => c.name === 'app');
    const env = envOf(app);
    expect(env).to.include({ DATABASE_SSL_MODE: 'verify-full' });
    const settings = readSettings(env);
    expect(settings.databaseSslMode).to.equal('verify-full');
    const volume = template.spec.volumes.find((v) => v.secret?.secretName === 'postgres-ca');
    const mount = app?.volumeMounts?.find((m) => m.name === volume?.name);
    expect(env.DATABASE_CA_FILE).to.equal(`${mount?.mountPath ?? '?'}/ca.crt`);
  });

  it('runs every container it declares with RuntimeDefault seccomp, no privilege escalation, no capabilities, a read-only root, not as root, with requests and limits', function () {
    const declared = [...pod('native-sidecar').spec.containers, ...pod('native-sidecar').spec.initContainers ?? []];
    expect(declared.map((c) => c.name).sort()).to.deep.equal(['app', 'vault-agent']);
    // The schema Job's pod too: its own container and the same agent.
    const job = schemaJob().spec.template;
    const jobContainers = [...job.spec.containers, ...job.spec.initContainers ?? []];
    expect(jobContainers.map((c) => c.name).sort()).to.deep.equal(['app', 'vault-agent']);
    for (const container of [...declared, ...jobContainers]) {
      expect(container.securityContext, container.name).to.deep.include({
        seccompProfile: { type: 'RuntimeDefault' }, allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] },
        readOnlyRootFilesystem: true, runAsNonRoot: true,
      });
      for (const resource of ['cpu', 'memory']) {
        const request = container.resources?.requests?.[resource];
        const limit = container.resources?.limits?.[resource];
        expect(request, `${container.name}: ${resource} request`).to.be.a('string');
        expect(limit, `${container.name}: ${resource} limit`).to.be.a('string');
        expect(quantity(request ?? '0'), `${container.name}: ${resource} request within its limit`).to.be.at.most(quantity(limit ?? '0'));
      }
    }
  });

  it('denies every pod of the namespace all traffic but what the policies allow, which select the shipped pods and ports', function () {
    const policies = rendered['native-sidecar'].filter((d): d is Policy => d.kind === 'NetworkPolicy');
    const byName = Object.fromEntries(policies.map((p) => [p.metadata.name, p.spec]));
    expect(Object.keys(byName).sort()).to.deep.equal(['default-deny', 'saas-app-egress', 'saas-app-ingress', 'saas-schema-egress']);
    expect(byName['default-deny']).to.deep.equal({ podSelector: {}, policyTypes: ['Ingress', 'Egress'] });
    const template = pod('native-sidecar');
    const app = template.spec.containers.find((c) => c.name === 'app');
    const env = envOf(app);
    const port = (name: string) => app?.ports?.find((p) => p.name === name)?.containerPort;
    for (const name of ['saas-app-ingress', 'saas-app-egress']) {
      const selector = byName[name]?.podSelector.matchLabels ?? {};
      // An empty selector would open every pod of the namespace; one matching no pod, none.
      expect(Object.keys(selector), name).to.not.deep.equal([]);
      expect(template.metadata.labels, `${name} selects the app's pods`).to.include(selector);
    }
    // In: the public port from the ingress controller's namespace, the admin port from monitoring's.
    expect(byName['saas-app-ingress']?.ingress).to.deep.equal([
      { from: [{ namespaceSelector: { matchLabels: { 'saas.network/ingress': 'true' } } }], ports: [{ protocol: 'TCP', port: port('http') }] },
      { from: [{ namespaceSelector: { matchLabels: { 'saas.network/monitoring': 'true' } } }], ports: [{ protocol: 'TCP', port: port('admin') }] },
    ]);
    expect([port('http'), port('admin')]).to.deep.equal([Number(env.PORT), Number(env.ADMIN_PORT)]);
    // Out: Vault's namespace and port as VAULT_ADDR names them, PostgreSQL's port, HTTPS, DNS.
    const vault = new URL(env.VAULT_ADDR ?? '');
    expect(byName['saas-app-egress']?.egress).to.deep.equal([
      { to: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': vault.hostname.split('.')[1] } } }], ports: [{ protocol: 'TCP', port: Number(vault.port) }] },
      { ports: [{ protocol: 'TCP', port: Number(env.DATABASE_PORT) }, { protocol: 'TCP', port: 443 }] },
      { to: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'kube-system' } } }], ports: [{ protocol: 'UDP', port: 53 }, { protocol: 'TCP', port: 53 }] },
    ]);
    // The schema Job's pod: its own label (not the Service's), out to Vault, PostgreSQL and DNS only.
    const job = schemaJob();
    expect(job.spec.template.metadata.labels).to.deep.equal({ app: 'saas-schema' }).and.to.include(byName['saas-schema-egress']?.podSelector.matchLabels ?? {});
    expect(byName['saas-schema-egress']?.egress).to.deep.equal([
      { to: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': vault.hostname.split('.')[1] } } }], ports: [{ protocol: 'TCP', port: Number(vault.port) }] },
      { ports: [{ protocol: 'TCP', port: Number(env.DATABASE_PORT) }] },
      { to: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'kube-system' } } }], ports: [{ protocol: 'UDP', port: 53 }, { protocol: 'TCP', port: 53 }] },
    ]);
  });

  it('tells the operator the namespace labels and Secrets it must create', async function () {
    const base = await comments('deploy/kubernetes/base/kustomization.yaml');
    const readme = await readFile(join(repoRoot, 'README.md'), 'utf8');
    for (const needed of ['saas.network/ingress', 'saas.network/monitoring', 'saas-admin-token', 'postgres-ca']) {
      expect(base, needed).to.contain(needed);
      expect(readme, needed).to.contain(needed);
    }
  });

  it('holds no never-expiring service account token: the reviewer\'s is a bound one the operator requests and renews', async function () {
    expect(tokenReviewer.map((d) => d.kind).sort()).to.deep.equal(['ClusterRoleBinding', 'Namespace', 'ServiceAccount']);
    expect(tokenReviewer.filter((d) => d.type === 'kubernetes.io/service-account-token')).to.deep.equal([]);
    const how = await comments('deploy/kubernetes/token-reviewer/kustomization.yaml');
    expect(how).to.match(/kubectl create token vault-token-reviewer -n vault --duration=\d+h/);
    const readme = await readFile(join(repoRoot, 'README.md'), 'utf8');
    expect(readme).to.match(/kubectl create token vault-token-reviewer -n vault --duration=\d+h/);
  });
});
