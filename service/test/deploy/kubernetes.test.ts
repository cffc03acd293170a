import { expect } from 'chai';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { repoRoot } from '../support/bao.js';

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

describe('deploy/kubernetes/saas-app.yaml: the agent injector in place of the compose agent', function () {
  let deployment: Deployment;
  let annotations: Record<string, string>;
  let documents: { kind: string }[];

  before(async function () {
    const docs = parseAllDocuments(await readFile(join(repoRoot, 'deploy/kubernetes/saas-app.yaml'), 'utf8'));
    for (const doc of docs) expect(doc.errors).to.deep.equal([]);
    documents = docs.map((doc) => doc.toJS() as { kind: string });
    const found = docs.map((doc) => doc.toJS() as Deployment).find((doc) => doc.kind === 'Deployment');
    if (found === undefined) throw new Error('no Deployment');
    deployment = found;
    annotations = deployment.spec.template.metadata.annotations;
  });

  it('renders agent-config/secrets.json.ctmpl, for prod, 0440, failing on a missing key', async function () {
    const template = await readFile(join(repoRoot, 'agent-config/secrets.json.ctmpl'), 'utf8');
    expect(annotations['vault.hashicorp.com/agent-inject-template-app.json']?.trimEnd())
      .to.equal(template.replace('(env "APP_ENV")', '"prod"').trimEnd());
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
      SECRETS_MODE: 'agent', APP_ENV: 'prod', SECRETS_FILE: '/vault/secrets/app.json', VAULT_TOKEN_FILE: '/vault/secrets/token',
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
