import { expect } from 'chai';
import { repoRoot } from '../support/repo-root.js';
import { unitFiles } from '../support/unit-files.js';

describe('npm run test:unit picks the test files that need no server', function () {
  it('takes a file of fake timers, leaves out one that starts a dev server, and one that starts processes through a support module', async function () {
    const files = [
      'service/test/vault/lifetime-watcher.test.ts', // fake timers and a scripted strategy only
      'service/test/main.test.ts', // starts bao (support/bao.ts spawns it)
      'service/test/reliability/faults.test.ts', // through reliability/harness.ts
      'service/test/specs/imports.test.ts', // reads files only (support/repo-root.ts)
    ];
    expect(await unitFiles(repoRoot, files)).to.deep.equal(['service/test/vault/lifetime-watcher.test.ts', 'service/test/specs/imports.test.ts']);
  });
});
