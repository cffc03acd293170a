import { expect } from 'chai';
import { secretGroups } from '../../src/config/secret-catalogue.generated.js';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { ConfigSnapshot } from '../../src/config/snapshot.js';
import { SnapshotHolder } from '../../src/config/snapshot-holder.js';
import { AgentFileSource } from '../../src/secrets/agent-file-source.js';
import { watchFile } from '../../src/secrets/file-watch.js';
import { fastExitConfig, prepareAgentDir, startAgent, waitForFile, type AgentDir } from '../support/agent.js';
import { repoRoot, startDevServer, type DevServer, vaultServer } from '../support/bao.js';
import type { ManagedProcess } from '../support/processes.js';
import { appScope, capturingLogger, randomKey } from '../support/rendered-secrets.js';
import { vaultData } from '../support/vault-http.js';

interface KvRead {
  data: Record<string, unknown>;
  metadata: { version: number };
}

/** The dev re-render interval, read from the env file the agent runs with. */
async function devRenderIntervalMs(): Promise<number> {
  const hcl = await readFile(join(repoRoot, 'agent-config/env/dev.hcl'), 'utf8');
  const match = /static_secret_render_interval\s*=\s*"(\d+)s"/.exec(hcl);
  if (match?.[1] === undefined) throw new Error('no static_secret_render_interval in seconds in env/dev.hcl');
  return Number(match[1]) * 1000;
}

function mode(info: { mode: number }): string {
  return (info.mode & 0o777).toString(8);
}

describe(`agent-config/ run by a real ${vaultServer.name} agent against a real ${vaultServer.name} dev server`, function () {
  this.timeout(60_000);
  let server: DevServer;
  let agentDir: AgentDir;
  let agent: ManagedProcess;

  before(async function () {
    server = await startDevServer();
    agentDir = await prepareAgentDir(server);
    // Its last test makes the agent give up: in seconds, with the tests' retry override.
    agent = startAgent(server, agentDir, 'dev', 'dev', {}, [fastExitConfig]);
    await waitForFile(agentDir.renderedFile, agent);
  });
  after(async function () {
    await agent.stop();
    await server.stop();
  });

  async function vaultSecret(group: string): Promise<KvRead> {
    return vaultData<KvRead>(server.addr, server.rootToken, 'GET', `secret/data/saas-project/dev/${group}`);
  }

  it('renders every secret of the environment, with each path and its KV version, readable by owner and group only',
    async function () {
      const rendered = JSON.parse(await readFile(agentDir.renderedFile, 'utf8')) as Record<string, unknown>;
      const expected: Record<string, unknown> = {};
      for (const group of secretGroups) {
        const secret = await vaultSecret(group);
        expected[group] = { path: `secret/data/saas-project/dev/${group}`, version: secret.metadata.version, data: secret.data };
      }
      expect(rendered).to.deep.equal(expected);
      expect(mode(await stat(agentDir.renderedFile))).to.equal('440');
    });

  it('writes the agent\'s token to the sink, mode 0440, carrying only the environment\'s policy', async function () {
    expect(mode(await stat(agentDir.tokenFile))).to.equal('440');
    const token = (await readFile(agentDir.tokenFile, 'utf8')).trim();
    const self = await vaultData<{ policies: string[] }>(server.addr, token, 'GET', 'auth/token/lookup-self');
    expect([...self.policies].sort()).to.deep.equal(['default', 'saas-app-dev']);
  });

  it('removes the secret id file once it has read it', async function () {
    const secretIdThere = await stat(join(agentDir.credentialsDir, 'secret-id')).then(() => true, () => false);
    expect(secretIdThere).to.be.false;
    expect(await stat(join(agentDir.credentialsDir, 'role-id')).then(() => true, () => false)).to.be.true;
  });

  describe('the service side, watching the real rendered file', function () {
    let holder: SnapshotHolder;
    let source: AgentFileSource;
    let log: ReturnType<typeof capturingLogger>;

    before(async function () {
      holder = new SnapshotHolder();
      log = capturingLogger();
      source = new AgentFileSource({
        file: agentDir.renderedFile, scope: appScope('dev'), holder, logger: log.logger, watchFile,
      });
      source.start();
      await source.firstSnapshot(5000);
      // Renders timed below must be seen by the watch, not by a late periodic check.
      await source.watching();
    });
    after(async function () {
      await source.stop();
    });

    it('shows a new KV version within the render interval plus one second, three times running', async function () {
      const budget = (await devRenderIntervalMs()) + 1000;
      for (let rotation = 0; rotation < 3; rotation++) {
        const key = randomKey();
        const written = await vaultData<{ version: number }>(server.addr, server.rootToken, 'POST',
          'secret/data/saas-project/dev/api-keys', { data: { webhook_signing_key: key } });
        const started = Date.now();
        const snapshot = await new Promise<ConfigSnapshot>((resolve, reject) => {
          const timer = setTimeout(() => {
            unsubscribe();
            reject(new Error(`version ${written.version} not loaded within ${budget} ms`));
          }, budget);
          const unsubscribe = holder.onSwap((next) => {
            if (next.sources.find((s) => s.group === 'api-keys')?.version !== written.version) return;
            clearTimeout(timer);
            unsubscribe();
            resolve(next);
          });
        });
        expect(Date.now() - started).to.be.at.most(budget);
        expect(snapshot.secrets['api-keys'].webhook_signing_key).to.equal(key);
      }
      expect(source.stats()).to.include({ rejected: 0 });
      expect(log.text()).to.not.contain(holder.current?.secrets['api-keys'].webhook_signing_key);
    });

    // Last in this suite: the agent exits on it.
    it('treats a key missing from a new version as an error: the agent stops, the service keeps the last good',
      async function () {
        const good = holder.current;
        await vaultData(server.addr, server.rootToken, 'POST', 'secret/data/saas-project/dev/database',
          { data: { username: 'saas_app' } });
        const exit = await agent.exited;
        expect(exit).to.equal(1);
        expect(await agent.log()).to.match(/map has no entry for key \\?"password\\?"/);
        const rendered = JSON.parse(await readFile(agentDir.renderedFile, 'utf8')) as { database: { data: object } };
        expect(rendered.database.data).to.have.property('password');
        await source.check();
        expect(holder.current).to.equal(good);
      });
  });
});

describe(`agent-config/ rendering a path the policy denies, with a real ${vaultServer.name} agent and dev server`, function () {
  this.timeout(60_000);
  let server: DevServer;
  before(async function () {
    server = await startDevServer();
  });
  after(async function () {
    await server.stop();
  });

  it('fails loudly: the agent exits 1, names the denied path, and renders nothing', async function () {
    const agentDir = await prepareAgentDir(server, 'dev');
    // Credentials for dev, template for prod: every read is outside the policy.
    const agent = startAgent(server, agentDir, 'dev', 'prod', {}, [fastExitConfig]);
    expect(await agent.exited).to.equal(1);
    const log = await agent.log();
    expect(log).to.contain('secret/data/saas-project/prod/database');
    expect(log).to.match(/Code: 403/);
    expect(await stat(agentDir.renderedFile).then(() => true, () => false)).to.be.false;
  });
});
