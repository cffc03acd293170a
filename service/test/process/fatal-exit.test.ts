import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { EventEmitter, once } from 'node:events';
import { join } from 'node:path';
import sinon from 'sinon';
import { exitOnFatalErrors, flushThenExit } from '../../src/process/fatal-exit.js';
import { repoRoot } from '../support/repo-root.js';
import { capturingLogger } from '../support/rendered-secrets.js';

describe('flushThenExit', function () {
  it('exits only once the log is flushed, with the code asked for', function () {
    let flushed: (() => void) | undefined;
    const exit = sinon.fake();
    const exitNow = flushThenExit({ flushLog: (done) => { flushed = done; }, exit });
    exitNow(3);
    expect(exit.called, 'no exit before the log is out').to.be.false;
    flushed?.();
    expect(exit.args).to.deep.equal([[3]]);
  });

  it('flushes once and exits once, however many exits are asked for; a crash while a clean exit flushes makes it 1', function () {
    const dones: (() => void)[] = [];
    const exit = sinon.fake();
    const exitNow = flushThenExit({ flushLog: (done) => { dones.push(done); }, exit });
    exitNow(0);
    exitNow(1);
    exitNow(143);
    expect(dones).to.have.length(1);
    dones[0]?.();
    expect(exit.args).to.deep.equal([[1]]);
  });
});

describe('exitOnFatalErrors, with a fake process', function () {
  it('logs one fatal line with the message only, then exits 1, for an uncaught exception', function () {
    const events = new EventEmitter();
    const log = capturingLogger();
    const exit = sinon.fake();
    exitOnFatalErrors({ events, logger: log.logger, exit });
    const error = Object.assign(new Error('cannot read the thing'), { password: 'hunter2-never-logged' });
    events.emit('uncaughtException', error);
    expect(exit.args).to.deep.equal([[1]]);
    expect(log.lines).to.have.length(1);
    expect(log.lines[0]).to.include({ level: 'fatal', msg: 'uncaught exception: exiting', err: 'cannot read the thing' });
    expect(log.text()).to.not.contain('hunter2').and.not.contain('at ');
  });

  it('logs the type only of a rejection that is not an Error', function () {
    const events = new EventEmitter();
    const log = capturingLogger();
    const exit = sinon.fake();
    exitOnFatalErrors({ events, logger: log.logger, exit });
    events.emit('unhandledRejection', 'some-value-that-could-be-a-secret');
    expect(exit.args).to.deep.equal([[1]]);
    expect(log.lines[0]).to.include({ level: 'fatal', msg: 'unhandled rejection: exiting', err: 'a thrown string, not an Error' });
    expect(log.text()).to.not.contain('some-value');
  });
});

describe('a real process ending on an uncaught error (test/fixtures/crashes.ts), logging asynchronously', function () {
  this.timeout(20_000);

  /** Runs the fixture; its stdout is read slowly at first, so lines are still buffered when it fails. */
  async function crash(how: 'throw' | 'reject', lines: number) {
    const child = spawn(process.execPath, ['--import', 'tsx', join(repoRoot, 'service/test/fixtures/crashes.ts'), how], {
      cwd: repoRoot, env: { PATH: process.env.PATH, LINES: String(lines) }, stdio: ['ignore', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stderr.on('data', (chunk: Buffer) => err.push(chunk));
    // Not reading for a while fills the pipe: writes are left unfinished when the error comes.
    child.stdout.pause();
    setTimeout(() => { child.stdout.on('data', (chunk: Buffer) => out.push(chunk)); child.stdout.resume(); }, 500);
    const [code] = await once(child, 'close') as [number | null];
    const text = Buffer.concat(out).toString('utf8');
    return { code, stderr: Buffer.concat(err).toString('utf8'), lines: text.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>) };
  }

  for (const [how, msg, err] of [
    ['throw', 'uncaught exception: exiting', 'thrown on purpose'],
    ['reject', 'unhandled rejection: exiting', 'rejected on purpose'],
  ] as const) {
    it(`exits 1 after every line, in order, the last being "${msg}"`, async function () {
      const lines = 2000;
      const result = await crash(how, lines);
      expect(result.code, result.stderr).to.equal(1);
      expect(result.stderr, 'no stack trace from Node').to.equal('');
      expect(result.lines.at(-1)).to.include({ level: 'fatal', msg, err });
      expect(result.lines.slice(0, -1).map((l) => l.n)).to.deep.equal([...Array(lines).keys()]);
    });
  }
});
