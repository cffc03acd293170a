import { expect } from 'chai';
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import sinon from 'sinon';
import type { ConfigSnapshot } from '../../src/config/snapshot.js';
import { SnapshotHolder } from '../../src/config/snapshot-holder.js';
import { AgentFileSource } from '../../src/secrets/agent-file-source.js';
import type { FileWatchOptions, WatchFile } from '../../src/secrets/file-watch.js';
import { appScope, capturingLogger, randomKey, renderedDocument, renderLikeAgent, sampleSecrets } from '../support/rendered-secrets.js';
import { tempDir } from '../support/temp-dirs.js';

// Taken before sinon replaces the globals: bounds a wait for real file I/O while fake time stands still.
const realSetTimeout = setTimeout;
const realClearTimeout = clearTimeout;

/**
 * Unit tests with fake timers and real temp files. The file watch is a hand-driven stand-in
 * (chokidar's own timers would freeze under fake time): `emit()` is one debounced change. The
 * real watch, its debounce and its filtering are tested in file-watch.test.ts.
 */
describe('AgentFileSource (fake timers, temp files, hand-driven file watch)', function () {
  let clock: sinon.SinonFakeTimers;
  let file: string;
  let holder: SnapshotHolder;
  let log: ReturnType<typeof capturingLogger>;
  let emit: () => void;
  let watched: { file: string; options: FileWatchOptions; closed: boolean } | undefined;
  let source: AgentFileSource;
  let swaps: ConfigSnapshot[];

  const fakeWatch: WatchFile = (watchedFile, options) => {
    emit = options.onChange;
    const entry = { file: watchedFile, options, closed: false };
    watched = entry;
    return { ready: Promise.resolve(), close: () => { entry.closed = true; return Promise.resolve(); } };
  };

  function nextSwap(): Promise<ConfigSnapshot> {
    return new Promise((resolve) => {
      const unsubscribe = holder.onSwap((snapshot) => { unsubscribe(); resolve(snapshot); });
    });
  }

  async function render(version: number, secrets = sampleSecrets()): Promise<void> {
    await renderLikeAgent(file, JSON.stringify(renderedDocument('dev', version, secrets)));
  }

  async function startWithVersion(version: number): Promise<void> {
    await render(version);
    const first = nextSwap();
    source.start();
    await clock.tickAsync(25);
    await first;
  }

  beforeEach(async function () {
    file = join(await tempDir('rendered'), 'app.json');
    clock = sinon.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date'] });
    holder = new SnapshotHolder();
    log = capturingLogger();
    swaps = [];
    watched = undefined;
    holder.onSwap((snapshot) => swaps.push(snapshot));
    source = new AgentFileSource({ file, scope: appScope('dev'), holder, logger: log.logger, watchFile: fakeWatch });
  });
  afterEach(async function () {
    clock.restore();
    await source.stop();
  });

  it('watches its file with its debounce time, and stops the watch when stopped', async function () {
    source = new AgentFileSource({ file, scope: appScope('dev'), holder, logger: log.logger, watchFile: fakeWatch, debounceMs: 40 });
    source.start();
    expect(watched).to.include({ file, closed: false });
    expect(watched?.options.debounceMs).to.equal(40);
    await source.stop();
    expect(watched?.closed).to.equal(true);
  });

  it('reads the file at each change the watch reports, before any periodic check', async function () {
    await startWithVersion(1);
    for (const version of [2, 3]) {
      await render(version);
      const swapped = nextSwap();
      emit();
      // No fake time passes: the read follows the change, not a timer.
      expect((await swapped).sources[0]?.version).to.equal(version);
    }
    expect(source.stats()).to.include({ reloads: 3, rejected: 0 });
  });

  it('does not swap when the agent rewrites identical content', async function () {
    const secrets = sampleSecrets();
    await render(1, secrets);
    const first = nextSwap();
    source.start();
    await clock.tickAsync(25);
    await first;
    await render(1, secrets);
    emit();
    await clock.tickAsync(25);
    await source.check();
    expect(swaps).to.have.length(1);
    expect(log.lines.filter((l) => l.msg === 'secrets loaded from the rendered file')).to.have.length(1);
    // Two reads found it unchanged: the rewrite's, and check()'s.
    expect(source.stats(), 'counted apart from reloads').to.include({ reloads: 1, unchanged: 2, rejected: 0 });
  });

  it('picks up a change whose event was lost at the next periodic check, 2000 ms after start()', async function () {
    const swappedAt: number[] = [];
    holder.onSwap(() => swappedAt.push(Date.now()));
    const startedAt = Date.now();
    await startWithVersion(1);
    await render(2);
    // No event for it: a read needs a timer, and the first one due is the periodic check's.
    await clock.nextAsync();
    expect(Date.now() - startedAt, 'the first timer after the first read').to.equal(2000);
    await new Promise<void>((resolve, reject) => {
      const bound = realSetTimeout(() => { reject(new Error('the periodic check did not swap the new render in within 1 s of its timer')); }, 1000);
      const swapped = () => { realClearTimeout(bound); resolve(); };
      if (swappedAt.length >= 2) swapped();
      else holder.onSwap(swapped);
    });
    expect(swappedAt.map((at) => at - startedAt), 'fake times of the swaps').to.deep.equal([25, 2000]);
    expect(holder.current?.sources[0]?.version).to.equal(2);
  });

  const badFiles: [string, () => Promise<void>, RegExp][] = [
    ['removed', () => rm(file), /does not exist/],
    ['empty', () => renderLikeAgent(file, ''), /is empty/],
    ['partial', () => renderLikeAgent(file, JSON.stringify(renderedDocument('dev', 9)).slice(0, 100)), /not valid JSON/],
    ['garbage', () => renderLikeAgent(file, 'not json at all'), /not valid JSON/],
    ['missing a key', () => renderLikeAgent(file, JSON.stringify({
      ...renderedDocument('dev', 9),
      'api-keys': { path: 'secret/data/saas-project/dev/api-keys', version: 9, data: {} },
    })), /api-keys\.webhook_signing_key: must be a string of at least 32 characters/],
    ['carrying an unknown key', () => renderLikeAgent(file, JSON.stringify(renderedDocument('dev', 9, {
      ...sampleSecrets(), app: { session_keys: [randomKey()], extra: 'x' } as never,
    }))), /app\.extra: is not a key the service knows/],
    ['over the size limit', () => writeFile(file, Buffer.alloc(2 * 1024 * 1024, 0x7b)), /over the 1048576-byte limit/],
  ];
  for (const [what, spoil, reason] of badFiles) {
    it(`keeps the last good snapshot when the file is ${what}, and logs and counts it once`, async function () {
      await startWithVersion(1);
      const good = holder.current;
      await spoil();
      emit();
      await clock.tickAsync(25);
      await source.check();
      // The same bad file seen again (an event, the periodic check) is not a new problem.
      emit();
      await clock.tickAsync(2000);
      await source.check();

      expect(holder.current).to.equal(good);
      expect(source.stats()).to.include({ reloads: 1, rejected: 1 });
      expect(source.stats().lastError).to.match(reason).and.to.contain(file);
      const errors = log.lines.filter((l) => l.level === 'error');
      expect(errors).to.have.length(1);
      expect(errors[0]).to.include({ file, msg: 'rendered secrets file refused; keeping the last good configuration' });
      expect(`${String(errors[0]?.key)}: ${String(errors[0]?.reason)}`).to.match(reason);
      for (const value of [good?.secrets.database.password, good?.secrets['api-keys'].webhook_signing_key]) {
        expect(log.text()).to.not.contain(value);
      }

      const recovered = nextSwap();
      await render(2);
      emit();
      await clock.tickAsync(25);
      expect((await recovered).sources[0]?.version).to.equal(2);
    });
  }

  it('resolves the first snapshot as soon as a valid render appears', async function () {
    source.start();
    const first = source.firstSnapshot(30_000);
    await clock.tickAsync(1000);
    await render(4);
    emit();
    await clock.tickAsync(25);
    expect((await first).sources[0]?.version).to.equal(4);
  });

  it('gives up waiting for the first render after the timeout, naming the file and the problem', async function () {
    await renderLikeAgent(file, '{"database":');
    source.start();
    const first = source.firstSnapshot(5000).then(() => 'resolved', (error: unknown) => error as Error);
    await clock.tickAsync(25);
    await source.check();
    await clock.tickAsync(4975);
    const error = await first;
    expect(error).to.be.instanceOf(Error);
    expect((error as Error).message).to.equal(
      `no valid secrets in ${file} within 5000 ms (SECRETS_WAIT_MS); last problem: ${file}: is not valid JSON (a partial or corrupt render)`,
    );
  });
});
