import { expect } from 'chai';
import { spawn, type ChildProcess } from 'node:child_process';
import { RestartPolicy, stackRestartBounds, Supervisor, type RestartBounds } from '../../../scripts/stack/supervise.js';

const bounds: RestartBounds = { firstDelayMs: 50, maxDelayMs: 200, stableMs: 1000, limit: 4, windowMs: 5000 };

describe('the local stack\'s restart policy (scripts/stack/supervise.ts)', function () {
  it('doubles the delay up to its bound, then gives up at the count\'s bound, naming it', function () {
    const policy = new RestartPolicy(bounds);
    const decisions = [0, 10, 20, 30, 40].map((at) => policy.onExit(at, 5));
    expect(decisions.slice(0, 4)).to.deep.equal([
      { restart: true, delayMs: 50, atMaxDelay: false, count: 1 },
      { restart: true, delayMs: 100, atMaxDelay: false, count: 2 },
      { restart: true, delayMs: 200, atMaxDelay: true, count: 3 },
      { restart: true, delayMs: 200, atMaxDelay: true, count: 4 },
    ]);
    expect(decisions[4]).to.deep.equal({ restart: false, bound: 'the count\'s bound: 4 restarts within 5 s already' });
  });

  it('counts restarts per window, and starts the backoff again after a run of stableMs', function () {
    const policy = new RestartPolicy(bounds);
    for (const at of [0, 1, 2, 3]) policy.onExit(at, 5);
    expect(policy.onExit(4999, 5)).to.include({ restart: false });
    // The first restart (at 0) has left the window: one more is allowed, still backed off.
    expect(policy.onExit(5000, 5)).to.deep.include({ restart: true, delayMs: 200 });
    expect(policy.onExit(5000, 999)).to.include({ restart: false });
    expect(policy.onExit(7000, 1000)).to.deep.include({ restart: true, delayMs: 50 });
  });

  it('ships bounds whose backoff reaches its bound before the count\'s bound, within the window', function () {
    const { firstDelayMs, maxDelayMs, limit, windowMs } = stackRestartBounds;
    const delays = Array.from({ length: limit }, (_, i) => Math.min(firstDelayMs * 2 ** i, maxDelayMs));
    expect(delays.at(-1)).to.equal(maxDelayMs);
    expect(delays.reduce((a, b) => a + b, 0)).to.be.below(windowMs);
  });
});

describe('the local stack\'s supervisor, with real processes', function () {
  const children: ChildProcess[] = [];
  const start = (script: string) => () => {
    const child = spawn('sh', ['-c', script], { stdio: 'ignore' });
    children.push(child);
    return Promise.resolve(child);
  };
  afterEach(function () {
    for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    children.length = 0;
  });

  it('starts a process that exits again, by the policy, and logs which bound stopped it', async function () {
    const lines: string[] = [];
    const gaveUp = new Promise<void>((resolve) => {
      const supervisor = new Supervisor((line) => {
        lines.push(line);
        if (line.includes('not restarted again')) resolve();
      }, bounds);
      const startFailing = start('exit 3');
      void startFailing().then((child) => { supervisor.watch('failing', child, startFailing); });
    });
    await gaveUp;
    expect(children).to.have.length(1 + bounds.limit);
    expect(lines.filter((l) => l.includes('restarted (pid'))).to.have.length(bounds.limit);
    expect(lines[0]).to.equal('failing      exited with code 3; restarting it in 0.05 s, restart 1 of at most 4 within 5 s');
    expect(lines.at(-1)).to.equal('failing      exited with code 3; not restarted again (the count\'s bound: 4 restarts within 5 s already)');
    expect(lines.some((l) => l.includes('(the backoff\'s bound)'))).to.equal(true);
  });

  it('after stop(), starts nothing again', async function () {
    const lines: string[] = [];
    const supervisor = new Supervisor((line) => { lines.push(line); }, bounds);
    const startSleeping = start('exec sleep 30');
    const first = await startSleeping();
    supervisor.watch('sleeper', first, startSleeping);
    const restarted = new Promise<void>((resolve) => {
      const watching = setInterval(() => { if (children.length === 2) { clearInterval(watching); resolve(); } }, 5);
    });
    first.kill('SIGKILL');
    await restarted;
    expect(lines).to.deep.equal([
      'sleeper      was killed by SIGKILL; restarting it in 0.05 s, restart 1 of at most 4 within 5 s',
      'sleeper      restarted (pid ' + String(children[1]?.pid) + ')',
    ]);
    await supervisor.stop();
    children[1]?.kill('SIGKILL');
    await new Promise((r) => setTimeout(r, bounds.maxDelayMs * 2));
    expect(children).to.have.length(2);
    expect(lines).to.have.length(2);
  });
});
