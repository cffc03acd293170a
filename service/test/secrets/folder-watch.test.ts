import { expect } from 'chai';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { ConfigSnapshot } from '../../src/config/snapshot.js';
import { SnapshotHolder } from '../../src/config/snapshot-holder.js';
import { AgentFileSource } from '../../src/secrets/agent-file-source.js';
import { watchFolder } from '../../src/secrets/folder-watch.js';
import { capturingLogger, renderedDocument, renderLikeAgent } from '../support/rendered-secrets.js';
import { tempDir } from '../support/temp-dirs.js';

function until(predicate: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  return new Promise((resolve, reject) => {
    const poll = () => {
      if (predicate()) resolve();
      else if (Date.now() > deadline) reject(new Error(`${what} within ${timeoutMs} ms`));
      else setTimeout(poll, 10);
    };
    poll();
  });
}

describe('watchFolder (real chokidar on a real folder)', function () {
  let dir: string;
  let names: string[];
  let stop: () => Promise<void>;

  beforeEach(async function () {
    dir = await tempDir('watch');
    names = [];
    stop = watchFolder(dir, (name) => names.push(name), (error) => { throw error; });
    await new Promise((r) => setTimeout(r, 200)); // chokidar's initial scan
  });
  afterEach(async function () {
    await stop();
  });

  it('reports a rename over the file, its removal and its re-creation, by name', async function () {
    const file = join(dir, 'app.json');
    await renderLikeAgent(file, '1');
    await until(() => names.includes('app.json'), 2000, 'no event for the first render');
    names.length = 0;
    await renderLikeAgent(file, '2');
    await until(() => names.includes('app.json'), 2000, 'no event for a rename over the file');
    names.length = 0;
    await rm(file);
    await until(() => names.includes('app.json'), 2000, 'no event for the removal');
    names.length = 0;
    await renderLikeAgent(file, '3');
    await until(() => names.includes('app.json'), 2000, 'no event for the re-creation');
  });
});

describe('AgentFileSource with the real folder watch', function () {
  let file: string;
  let holder: SnapshotHolder;
  let source: AgentFileSource;

  beforeEach(async function () {
    file = join(await tempDir('watch'), 'app.json');
    holder = new SnapshotHolder();
    await renderLikeAgent(file, JSON.stringify(renderedDocument('dev', 1)));
    source = new AgentFileSource({ file, appEnv: 'dev', holder, logger: capturingLogger().logger, watchFolder });
    source.start();
    await source.firstSnapshot(2000);
  });
  afterEach(async function () {
    await source.stop();
  });

  const version = () => (holder.current as ConfigSnapshot).sources[0]?.version;

  it('follows the file through removal and re-creation', async function () {
    await rm(file);
    await new Promise((r) => setTimeout(r, 100));
    expect(version()).to.equal(1);
    await renderLikeAgent(file, JSON.stringify(renderedDocument('dev', 2)));
    await until(() => version() === 2, 1000, 'the re-created file was not loaded');
  });

  it('ends on the final content after 40 renames back to back', async function () {
    const last = renderedDocument('dev', 41);
    for (let v = 2; v <= 40; v++) await renderLikeAgent(file, JSON.stringify(renderedDocument('dev', v)));
    await renderLikeAgent(file, JSON.stringify(last));
    // Events may be lost in such a burst; the periodic check (2 s) is the backstop.
    await until(() => version() === 41, 3000, 'the final render was not loaded');
    expect(holder.current?.secrets).to.deep.equal(Object.fromEntries(Object.entries(last).map(([g, e]) => [g, e.data])));
  });
});
