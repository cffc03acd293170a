import { expect } from 'chai';
import { join } from 'node:path';
import { waitForHttp } from './support/bao.js';
import { renderedDocument, renderLikeAgent } from './support/rendered-secrets.js';
import { spawnService, startService } from './support/service.js';
import { tempDir } from './support/temp-dirs.js';

describe('service/src/main.ts in agent mode', function () {
  this.timeout(30_000);

  it('listens once the rendered file holds valid secrets, and answers /readyz 200', async function () {
    const file = join(await tempDir('secrets'), 'app.json');
    await renderLikeAgent(file, JSON.stringify(renderedDocument('staging', 2)));
    const service = await startService({ SECRETS_MODE: 'agent', APP_ENV: 'staging', SECRETS_FILE: file });
    const health = await fetch(`${service.url}/healthz`);
    expect(health.status).to.equal(200);
    await service.process.stop();
  });

  it('waits for the first render when the agent is slower than the service', async function () {
    const file = join(await tempDir('secrets'), 'app.json');
    const service = await spawnService({ SECRETS_MODE: 'agent', APP_ENV: 'dev', SECRETS_FILE: file, SECRETS_WAIT_MS: '20000' });
    await new Promise((r) => setTimeout(r, 1000));
    expect(service.process.child.exitCode).to.equal(null);
    await renderLikeAgent(file, JSON.stringify(renderedDocument('dev', 1)));
    await waitForHttp(`${service.url}/readyz`, 200, service.process);
    await service.process.stop();
  });

  const failures: [string, (file: string) => Promise<void>, RegExp][] = [
    ['no file ever appears', () => Promise.resolve(), /: does not exist/],
    ['the file is not JSON', (file) => renderLikeAgent(file, 'garbage'), /is not valid JSON/],
    ['the file lacks a key', (file) => renderLikeAgent(file, JSON.stringify({
      ...renderedDocument('dev', 1), app: { path: 'secret/data/saas-project/dev/app', version: 1, data: {} },
    })), /app\.session_keys: must be a non-empty list of keys/],
  ];
  for (const [what, prepare, problem] of failures) {
    it(`exits 1 without listening when ${what}, naming the file and the problem`, async function () {
      const file = join(await tempDir('secrets'), 'app.json');
      await prepare(file);
      const service = await spawnService({ SECRETS_MODE: 'agent', APP_ENV: 'dev', SECRETS_FILE: file, SECRETS_WAIT_MS: '500' });
      expect(await service.process.exited).to.equal(1);
      const lines = (await service.process.log()).trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
      const fatal = lines.find((l) => l.level === 'fatal');
      expect(fatal?.msg).to.equal('not starting');
      expect(fatal?.reason).to.contain(`no valid secrets in ${file} within 500 ms (SECRETS_WAIT_MS)`);
      expect(fatal?.reason).to.match(problem);
      const refused = await fetch(`${service.url}/healthz`).then(() => 'answered', () => 'refused');
      expect(refused).to.equal('refused');
    });
  }

  it('exits 1 naming the setting when the environment is invalid', async function () {
    const service = await spawnService({ APP_ENV: 'qa' });
    expect(await service.process.exited).to.equal(1);
    expect(await service.process.log()).to.contain('appEnv: must be one of the possible values');
  });
});
