import { expect } from 'chai';
import { Deployment as DeploymentModel } from 'kubernetes-models/apps/v1';
import { ServiceAccount } from 'kubernetes-models/v1';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import ts from 'typescript';
import { parseAllDocuments } from 'yaml';
import { repoRoot } from '../support/bao.js';

/** The models of the kinds the manifest holds: kubernetes-models' precompiled OpenAPI validators. */
const models = { Deployment: DeploymentModel, ServiceAccount } as const;
type Kind = keyof typeof models;
const isKind = (kind: unknown): kind is Kind => typeof kind === 'string' && Object.hasOwn(models, kind);

/**
 * The validators accept fields the schema does not know (Kubernetes itself drops them, with at
 * most a warning): a misspelled `readinesProbe` would pass. This walks a document along the
 * model's TypeScript interface, which kubernetes-models generates from the same OpenAPI schema,
 * and returns the path of every field the interface does not declare. Maps (`annotations`,
 * `labels`: a string index signature) accept any key. Offline: only the installed .d.ts files.
 */
function unknownFields(kind: Kind, document: unknown): string[] {
  const entry = join(repoRoot, 'service/test/deploy/kubernetes-kinds.virtual.ts');
  const source = `import type { IDeployment } from 'kubernetes-models/apps/v1/Deployment';
import type { IServiceAccount } from 'kubernetes-models/v1/ServiceAccount';
export interface Kinds { Deployment: IDeployment; ServiceAccount: IServiceAccount }\n`;
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
  const kindsType = checker.getDeclaredTypeOfSymbol(kinds);
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
 * The injector's annotations the manifest uses, and a few newer ones, each with the first
 * vault-k8s release that reads it (a trailing `-` marks a per-file annotation). Read from
 * vault-k8s's agent-inject/agent/annotations.go at each release tag.
 */
const injectorAnnotations: readonly (readonly [string, string])[] = [
  ['agent-inject', '0.1.0'], ['role', '0.1.0'], ['ca-cert', '0.1.0'], ['tls-secret', '0.1.0'],
  ['agent-pre-populate-only', '0.1.0'], ['agent-inject-template-', '0.1.0'], ['agent-inject-token', '0.3.0'],
  ['agent-inject-file-', '0.5.0'], ['agent-inject-perms-', '0.12.0'], ['template-static-secret-render-interval', '0.12.0'],
  ['auth-min-backoff', '0.16.0'], ['error-on-missing-key-', '1.4.0'], ['agent-template-left-delim-', '1.5.0'],
  ['template-lease-renewal-threshold', '1.7.0'],
];

function compareVersions(a: string, b: string): number {
  const [x, y] = [a, b].map((v) => v.split('.').map(Number));
  for (let i = 0; i < 3; i++) if ((x?.[i] ?? 0) !== (y?.[i] ?? 0)) return (x?.[i] ?? 0) - (y?.[i] ?? 0);
  return 0;
}

interface Deployment {
  kind: string;
  spec: {
    template: {
      metadata: { annotations: Record<string, string> };
      spec: {
        serviceAccountName: string;
        containers: {
          name: string; env: { name: string; value: string }[]; readinessProbe: { httpGet: { path: string } };
          ports: { name: string; containerPort: number }[];
        }[];
      };
    };
  };
}

describe('deploy/kubernetes/base/deployment.yaml: the agent injector in place of the compose agent', function () {
  let deployment: Deployment;
  let annotations: Record<string, string>;
  let documents: { kind: string }[];

  before(async function () {
    const docs = parseAllDocuments(await readFile(join(repoRoot, 'deploy/kubernetes/base/deployment.yaml'), 'utf8'));
    for (const doc of docs) expect(doc.errors).to.deep.equal([]);
    documents = docs.map((doc) => doc.toJS() as { kind: string });
    const found = docs.map((doc) => doc.toJS() as Deployment).find((doc) => doc.kind === 'Deployment');
    if (found === undefined) throw new Error('no Deployment');
    deployment = found;
    annotations = deployment.spec.template.metadata.annotations;
  });

  it('is valid against the Kubernetes OpenAPI schemas (kubernetes-models), offline', function () {
    expect(documents.map((d) => d.kind)).to.deep.equal(['ServiceAccount', 'Deployment']);
    for (const document of documents) {
      const { kind } = document;
      if (!isKind(kind)) throw new Error(`no model for kind ${kind}`);
      // validate() throws with the schema's errors (types, required fields, enums).
      expect(() => { new models[kind](document as never).validate(); }, kind).to.not.throw();
    }
  });

  it('holds no field the schemas do not know (a misspelling would be dropped silently)', function () {
    for (const document of documents) {
      const { kind } = document;
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
    const manifest = await readFile(join(repoRoot, 'deploy/kubernetes/base/deployment.yaml'), 'utf8');
    const plan = await readFile(join(repoRoot, 'specs/vault/plan-vault.md'), 'utf8');
    expect(/vault-k8s >= (\d+\.\d+\.\d+)\./.exec(manifest)?.[1], 'the version the manifest tells operators to run').to.equal(needed);
    expect(/vault-k8s ≥ (\d+\.\d+\.\d+)\*\*/.exec(plan)?.[1], 'the version the plan tells operators to run').to.equal(needed);
  });

  it('gives the plan the Vault-side kubernetes auth commands and the injector version, as the manifest does', async function () {
    const manifest = await readFile(join(repoRoot, 'deploy/kubernetes/base/deployment.yaml'), 'utf8');
    const plan = await readFile(join(repoRoot, 'specs/vault/plan-vault.md'), 'utf8');
    const oneLine = (text: string) => text.replace(/\\\n\s*#?\s*/g, '').replace(/\s+/g, ' ');
    const commands = oneLine(manifest.split('\n').filter((l) => l.startsWith('#')).join('\n'))
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
  });

  it('exposes the operator\'s port to the cluster with the scrape annotations, and no Service for it', function () {
    const app = deployment.spec.template.spec.containers.find((c) => c.name === 'app');
    const env = Object.fromEntries(app?.env.map((e) => [e.name, e.value]) ?? []);
    expect(env).to.include({ ADMIN_HOST: '0.0.0.0', ADMIN_PORT: '3001' });
    expect(app?.ports).to.deep.include({ name: 'admin', containerPort: 3001 });
    expect(annotations).to.include({
      'prometheus.io/scrape': 'true', 'prometheus.io/port': '3001', 'prometheus.io/path': '/metrics',
    });
    expect(documents.filter((d) => d.kind === 'Service'), 'nothing routes outside traffic to the admin port').to.deep.equal([]);
  });
});
