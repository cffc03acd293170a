import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { parseRenderedFile } from '../../src/secrets/rendered-file.js';
import { fastExitConfig, prepareAgentDir, startAgent, waitForFile, type AgentDir } from '../support/agent.js';
import { repoRoot, startDevServer, type DevServer } from '../support/bao.js';
import { freePort } from '../support/ports.js';
import type { ManagedProcess } from '../support/processes.js';
import { copyProject } from '../support/project-copy.js';
import { recordOutput, registerSecret } from '../support/leak-scan.js';
import { appScope, randomKey } from '../support/rendered-secrets.js';
import { startService, type ServiceProcess } from '../support/service.js';
import { vaultData } from '../support/vault-http.js';

const run = promisify(execFile);

/** The generated files, which the one edit below must change and nothing else may. */
const generated = [
  'agent-config/secrets.json.ctmpl', 'deploy/kubernetes/overlays/injector/deployment-patch.yaml',
  'service/src/config/secret-catalogue.generated.ts', 'scripts/lib/example-secrets.sh',
];

interface Status { secrets: { paths: { path: string; version: number | null }[] } }

describe('adding a secret to a copy of the project: one catalogue edit, a real bao dev server, agent and service', function () {
  this.timeout(120_000);
  const billingPath = 'secret/data/saas-project/dev/billing';
  let project: string;
  let server: DevServer;
  let agentDir: AgentDir;
  let agent: ManagedProcess | undefined;
  let service: ServiceProcess | undefined;
  let key: string;

  before(async function () {
    project = await copyProject();
    // The one edit: a new group with one key, as the README's "Adding a secret" shows.
    const cataloguePath = join(project, 'agent-config/secret-catalogue.json');
    const catalogue = JSON.parse(await readFile(cataloguePath, 'utf8')) as { groups: Record<string, unknown> };
    catalogue.groups.billing = {
      doc: 'the payment provider', source: 'kv',
      keys: { invoice_signing_key: { type: 'string', minLength: 40, doc: 'signs invoices', example: { randomHex: 20 } } },
    };
    await writeFile(cataloguePath, `${JSON.stringify(catalogue, null, 2)}\n`);
    const generation = await run('npm', ['run', '--silent', 'secrets:generate'], { cwd: project });
    recordOutput('secrets:generate in the copy', generation.stdout + generation.stderr);
    server = await startDevServer();
  });
  after(async function () {
    await service?.process.stop();
    await agent?.stop();
    await server.stop();
  });

  it('generates the template, the manifest, the types and the example values from that edit alone', async function () {
    for (const path of generated) {
      expect(await readFile(join(project, path), 'utf8'), path).to.contain('invoice_signing_key');
      expect(await readFile(join(repoRoot, path), 'utf8'), `${path} in the repository`).to.not.contain('invoice_signing_key');
    }
  });

  it('has the bootstrap write a dev example, the agent render the value written in Vault, and the service validate and serve it',
    async function () {
      agentDir = await prepareAgentDir(server, 'dev', {}, project);
      const example = await vaultData<{ data: Record<string, string> }>(server.addr, server.rootToken, 'GET', billingPath);
      registerSecret('billing example', example.data.invoice_signing_key);
      expect(example.data.invoice_signing_key, 'the example the catalogue describes').to.match(/^[0-9a-f]{40}$/);

      key = `${randomKey()}0123456789`;
      registerSecret('billing key', key);
      const written = await vaultData<{ version: number }>(server.addr, server.rootToken, 'POST', billingPath,
        { data: { invoice_signing_key: key } });
      // Its last test makes the agent give up: in seconds, with the tests' retry override.
      agent = startAgent(server, agentDir, 'dev', 'dev', {}, [fastExitConfig]);
      await waitForFile(agentDir.renderedFile, agent);
      const content = await readFile(agentDir.renderedFile);
      const rendered = JSON.parse(content.toString('utf8')) as Record<string, unknown>;
      expect(rendered.billing).to.deep.equal({ path: billingPath, version: written.version, data: { invoice_signing_key: key } });
      // The repository's service does not know the group: the copy's catalogue is what lets it through.
      expect(() => parseRenderedFile(agentDir.renderedFile, content, appScope('dev'), Date.now())).to.throw(/billing: not a secret group/);

      await waitForFile(agentDir.tokenFile, agent);
      service = await startService({
        SECRETS_MODE: 'agent', APP_ENV: 'dev', VAULT_ADDR: server.addr, SECRETS_FILE: agentDir.renderedFile,
        VAULT_TOKEN_FILE: agentDir.tokenFile, DATABASE_PORT: String(await freePort()),
      }, project);
      const status = await (await fetch(`${service.adminUrl}/status`)).json() as Status;
      expect(status.secrets.paths).to.deep.include({ path: billingPath, version: written.version });
    });

  // Last: the agent exits on it.
  it('fails the render loudly when Vault lacks a key the catalogue requires, and the service keeps the last good', async function () {
    if (agent === undefined || service === undefined) this.skip();
    const before = await (await fetch(`${service.adminUrl}/status`)).json() as Status;
    await vaultData(server.addr, server.rootToken, 'POST', billingPath, { data: { another_key: 'x' } });
    expect(await agent.exited).to.equal(1);
    expect(await agent.log()).to.match(/map has no entry for key \\?"invoice_signing_key\\?"/);
    const rendered = JSON.parse(await readFile(agentDir.renderedFile, 'utf8')) as { billing: { data: object } };
    expect(rendered.billing.data).to.deep.equal({ invoice_signing_key: key });
    const after = await (await fetch(`${service.adminUrl}/status`)).json() as Status;
    expect(after.secrets.paths).to.deep.equal(before.secrets.paths);
  });
});
