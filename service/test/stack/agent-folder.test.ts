import { expect } from 'chai';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import sinon from 'sinon';
import { agentFolder, tmpfsAt, unmountAgentFolder } from '../../../scripts/stack/stack.js';
import { tempDir } from '../support/temp-dirs.js';

describe('the local stack\'s agent folder (scripts/stack/stack.ts)', function () {
  afterEach(function () {
    sinon.restore();
  });

  it('stays on the persistent filesystem when not root, and says so in one line', async function () {
    sinon.stub(process, 'getuid').returns(1000);
    const dir = join(await tempDir('agent-folder'), 'agent');
    const lines: string[] = [];
    await agentFolder(dir, (line) => { lines.push(line); });
    expect(await tmpfsAt(dir)).to.equal(false);
    expect((await stat(dir)).mode & 0o777).to.equal(0o700);
    expect(lines).to.deep.equal([`vault-agent  ${dir} is on the persistent filesystem, not a tmpfs: mounting one needs root on Linux`
      + ` (here uid 1000 on ${process.platform})`]);
  });

  it('as root on Linux, mounts a tmpfs of 1 MiB, mode 0700, and unmounts it', async function () {
    if (process.platform !== 'linux' || process.getuid?.() !== 0) this.skip();
    const dir = join(await tempDir('agent-folder'), 'agent');
    const lines: string[] = [];
    await agentFolder(dir, (line) => { lines.push(line); });
    try {
      expect(await tmpfsAt(dir)).to.equal(true);
      expect((await stat(dir)).mode & 0o777).to.equal(0o700);
    } finally {
      await unmountAgentFolder(dir, (line) => { lines.push(line); });
    }
    expect(await tmpfsAt(dir)).to.equal(false);
    expect(lines).to.deep.equal([`vault-agent  ${dir} is a tmpfs (size=1m,mode=0700,nosuid,nodev,noexec)`, `vault-agent  ${dir} unmounted`]);
  });
});
