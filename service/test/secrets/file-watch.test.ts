import { expect } from 'chai';
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ConfigSnapshot } from '../../src/config/snapshot.js';
import { SnapshotHolder } from '../../src/config/snapshot-holder.js';
import { AgentFileSource, type AgentFileSourceOptions } from '../../src/secrets/agent-file-source.js';
import { watchFile, type FileWatch } from '../../src/secrets/file-watch.js';
import { appScope, capturingLogger, renderedDocument, renderLikeAgent } from '../support/rendered-secrets.js';
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

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('watchFile (real chokidar on a real folder)', function () {
  const debounceMs = 50;
  let dir: string;
  let file: string;
  let changes: number;
  let changedAt: number;
  let watch: FileWatch;

  async function startWatching(ms = debounceMs): Promise<void> {
    watch = watchFile(file, {
      onChange: () => { changes++; changedAt = Date.now(); },
      onError: (error) => { throw error; },
      debounceMs: ms,
    });
    await watch.ready;
  }

  beforeEach(async function () {
    dir = await tempDir('watch');
    file = join(dir, 'app.json');
    changes = 0;
  });
  afterEach(async function () {
    await watch.close();
  });

  it('reports a rename over the file, its removal and its re-creation', async function () {
    await startWatching();
    await renderLikeAgent(file, '1');
    await until(() => changes === 1, 2000, 'no change reported for the first render');
    await renderLikeAgent(file, '2');
    await until(() => changes === 2, 2000, 'no change reported for a rename over the file');
    await rm(file);
    await until(() => changes === 3, 2000, 'no change reported for the removal');
    await renderLikeAgent(file, '3');
    await until(() => changes === 4, 2000, 'no change reported for the re-creation');
  });

  it('reports a burst of renders as one change, once the burst has been quiet for the debounce time', async function () {
    await renderLikeAgent(file, '0');
    const quietMs = 300;
    await startWatching(quietMs);
    const start = Date.now();
    for (let v = 1; v <= 5; v++) await renderLikeAgent(file, String(v));
    await until(() => changes > 0, 3000, 'no change reported for the burst');
    // Every event came after `start`, so the quiet time after the last one ends later still.
    expect(changedAt - start).to.be.at.least(quietMs);
    // Long enough for a second, stray call to land: there must be none.
    await pause(quietMs * 2);
    expect(changes).to.equal(1);
  });

  it('ignores the other entries of the folder, such as the agent\'s temporary files and other sinks', async function () {
    await startWatching();
    await writeFile(join(dir, 'app.json.1234.tmp'), 'x');
    await writeFile(join(dir, 'token'), 'x');
    await rm(join(dir, 'app.json.1234.tmp'));
    // Ten times the debounce time: had their events counted, a change would be in by now.
    await pause(debounceMs * 10);
    expect(changes).to.equal(0);
    await renderLikeAgent(file, '1');
    await until(() => changes === 1, 2000, 'no change reported for the file itself');
  });

  it('reports nothing once closed, not even a change pending in its debounce', async function () {
    await startWatching(200);
    await renderLikeAgent(file, '1');
    await pause(50); // the event has arrived; its debounce has not run out
    await watch.close();
    await renderLikeAgent(file, '2');
    // Past the debounce of both renders: a call would have landed by now.
    await pause(400);
    expect(changes).to.equal(0);
  });

  it('settles ready when closed before the initial scan is done', async function () {
    watch = watchFile(file, { onChange: () => { changes++; }, onError: (error) => { throw error; }, debounceMs });
    await watch.close();
    await watch.ready;
  });
});

describe('AgentFileSource with the real file watch', function () {
  let file: string;
  let holder: SnapshotHolder;
  let source: AgentFileSource;

  async function startSource(options: Partial<AgentFileSourceOptions> = {}): Promise<void> {
    file = join(await tempDir('watch'), 'app.json');
    holder = new SnapshotHolder();
    await renderLikeAgent(file, JSON.stringify(renderedDocument('dev', 1)));
    source = new AgentFileSource({ file, scope: appScope('dev'), holder, logger: capturingLogger().logger, watchFile, ...options });
    source.start();
    await source.firstSnapshot(2000);
    await source.watching();
  }

  afterEach(async function () {
    await source.stop();
  });

  const version = () => (holder.current as ConfigSnapshot).sources[0]?.version;

  it('follows the file through removal and re-creation, seen by the watch alone', async function () {
    // A periodic check that never comes within the test: what is seen, the watch saw.
    await startSource({ backstopMs: 60_000 });
    await rm(file);
    await until(() => source.stats().rejected === 1, 1000, 'the removal was not seen');
    expect(version()).to.equal(1);
    await renderLikeAgent(file, JSON.stringify(renderedDocument('dev', 2)));
    await until(() => version() === 2, 1000, 'the re-created file was not loaded');
  });

  it('ends on the final content after 40 renames back to back', async function () {
    await startSource();
    const last = renderedDocument('dev', 41);
    for (let v = 2; v <= 40; v++) await renderLikeAgent(file, JSON.stringify(renderedDocument('dev', v)));
    await renderLikeAgent(file, JSON.stringify(last));
    // Events may be lost in such a burst; the periodic check (2 s) is the backstop.
    await until(() => version() === 41, 3000, 'the final render was not loaded');
    expect(holder.current?.secrets).to.deep.equal(Object.fromEntries(Object.entries(last).map(([g, e]) => [g, e.data])));
  });
});
