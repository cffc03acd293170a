import { expect } from 'chai';
import sinon from 'sinon';
import { LifetimeWatcher, type Finding, type Strategy, type Vouched } from '../../src/vault/lifetime-watcher.js';
import { serviceScheduleRules } from '../../src/vault/token-schedule.js';
import { retryAfterKey } from '../../src/vault/vault-transport.js';
import { rowIndex, table, type StateName, type WatchEvent } from '../../src/vault/watch-state.js';
import { answered, unreachable } from '../support/fake-vault.js';
import { capturingLogger } from '../support/rendered-secrets.js';

type Problem = 'gone' | 'missing' | 'expired' | 'replace_failed';
const vouched = (ttlSeconds: number, extra: Partial<Vouched> = {}): Vouched =>
  ({ kind: 'vouched', ttlSeconds, renewable: true, expires: true, fresh: true, ...extra });

/** A strategy that answers what the test queues: a finding, or an error to throw. */
class Scripted implements Strategy<Problem> {
  readonly steps: (Finding<Problem> | Error | Promise<Finding<Problem>>)[] = [];
  readonly replacements: (Vouched | Error)[] = [];
  stepCalls = 0;
  replaceCalls: string[] = [];
  replace?: (why: string) => Promise<Vouched>;

  constructor(canReplace: boolean) {
    if (canReplace) {
      this.replace = (why) => {
        this.replaceCalls.push(why);
        const next = this.replacements.shift() ?? new Error('no replacement queued');
        return next instanceof Error ? Promise.reject(next) : Promise.resolve(next);
      };
    }
  }

  describe(): string { return 'the scripted thing'; }

  step(): Promise<Finding<Problem>> {
    this.stepCalls++;
    const next = this.steps.shift() ?? new Error('no step queued');
    return next instanceof Error ? Promise.reject(next) : Promise.resolve(next);
  }

  expired(replaceProblem: string | undefined) { return { code: 'expired' as const, reason: `expired (${replaceProblem ?? 'none'})` }; }
  replaceFailed(problem: string) { return { code: 'replace_failed' as const, reason: problem }; }
}

/**
 * The watcher's state machine, run through the watcher itself, one test per row of
 * watch-state.ts's table (fake timers, a scripted strategy: no Vault involved). Each test names
 * the row it takes; the last test checks that every row is taken by one.
 */
describe('LifetimeWatcher: each transition of its state machine (fake timers, scripted strategy)', function () {
  let clock: sinon.SinonFakeTimers;
  let log: ReturnType<typeof capturingLogger>;
  let reports: { valid: number[]; invalid: [Problem, string][] };
  let watchers: LifetimeWatcher<Problem>[];
  const covered = new Set<number>();

  beforeEach(function () {
    clock = sinon.useFakeTimers();
    log = capturingLogger();
    reports = { valid: [], invalid: [] };
    watchers = [];
  });
  afterEach(async function () {
    await Promise.all(watchers.map((w) => w.stop()));
    clock.restore();
  });

  // The service's rules with random 0.5: the first retry after 375 ms (half of 500 ms and half
  // of that again), a maximum check interval of 10 s.
  function watch(strategy: Scripted, maxCheckIntervalMs = 10_000): LifetimeWatcher<Problem> {
    const watcher = new LifetimeWatcher<Problem>({
      strategy, logger: log.logger, rules: serviceScheduleRules(maxCheckIntervalMs, () => 0.5),
      report: { valid: (ttl) => reports.valid.push(ttl), invalid: (code, reason) => reports.invalid.push([code, reason]) },
    });
    watchers.push(watcher);
    return watcher;
  }

  /** Declares the row a test takes, checked against the table's own lookup. */
  function takes(from: StateName, event: WatchEvent, canReplace: boolean): void {
    const index = rowIndex(from, event, { canReplace });
    covered.add(index);
  }

  it('valid on vouched: adopts the TTL, reports valid, and wakes at the check time', async function () {
    takes('waiting', { kind: 'vouched' }, false);
    const s = new Scripted(false);
    s.steps.push(vouched(30));
    const w = watch(s, 0);
    await w.start();
    expect(w.state).to.equal('valid');
    expect(reports.valid).to.deep.equal([30]);
    expect(w.status().ttlSeconds).to.equal(30);
    expect(w.status().nextCheckInSeconds, 'two thirds of 30 s').to.equal(20);
  });

  it('valid on vouched and asked about now: steps again at once', async function () {
    takes('waiting', { kind: 'vouched', askNow: true }, false);
    const s = new Scripted(false);
    s.steps.push(vouched(30, { askNow: true }), vouched(29));
    const w = watch(s);
    await w.start();
    expect(s.stepCalls).to.equal(2);
    expect(reports.valid).to.deep.equal([30, 29]);
  });

  it('outdated on vouched: a replacement asked for during a check is not cancelled by its answer', async function () {
    takes('outdated', { kind: 'vouched' }, true);
    const s = new Scripted(true);
    s.steps.push(vouched(30));
    const w = watch(s);
    await w.start();
    let answer: (f: Finding<Problem>) => void = () => undefined;
    s.steps.push(new Promise((resolve) => { answer = resolve; }));
    const check = w.checkNow();
    await clock.tickAsync(0);
    const asked = w.replaceSoon('the token changed');
    expect(w.state).to.equal('outdated');
    s.replacements.push(vouched(60));
    s.steps.push(vouched(59)); // the check the wake asked for, after the one under way
    answer(vouched(25));
    await Promise.all([check, asked]);
    expect(s.replaceCalls).to.deep.equal(['the token changed']);
    expect(w.state).to.equal('valid');
  });

  it('outdated on outdated, when it can replace: adopts the capped TTL and replaces at once', async function () {
    takes('valid', { kind: 'outdated', why: 'max TTL' }, true);
    const s = new Scripted(true);
    s.steps.push({ kind: 'outdated', why: 'max TTL', vouched: vouched(3) });
    s.replacements.push(vouched(60));
    const w = watch(s);
    await w.start();
    expect(reports.valid).to.deep.equal([3, 60]);
    expect(s.replaceCalls).to.deep.equal(['max TTL']);
    expect(w.state).to.equal('valid');
  });

  it('stays on outdated when it cannot replace: adopts, and waits for the next check', async function () {
    takes('valid', { kind: 'outdated', why: 'max TTL' }, false);
    const s = new Scripted(false);
    s.steps.push(vouched(30), { kind: 'outdated', why: 'max TTL', vouched: vouched(3) });
    const w = watch(s);
    await w.start();
    await w.checkNow();
    expect(w.state).to.equal('valid');
    expect(reports.valid).to.deep.equal([30, 3]);
    expect(w.status().nextCheckInSeconds, 'two thirds of the capped 3 s').to.equal(2);
  });

  it('replacing on refused, when it can replace: forgets the expiry, reports, and replaces at once', async function () {
    takes('valid', { kind: 'refused', reason: 'revoked' }, true);
    const s = new Scripted(true);
    s.steps.push(vouched(30), { kind: 'refused', code: 'gone', reason: 'revoked' });
    s.replacements.push(vouched(60));
    const w = watch(s);
    await w.start();
    await w.checkNow();
    expect(reports.invalid).to.deep.equal([['gone', 'revoked']]);
    expect(s.replaceCalls).to.deep.equal(['revoked']);
    expect(reports.valid).to.deep.equal([30, 60]);
  });

  it('refused on refused, when it cannot replace: forgets the expiry, reports, and checks again after the backoff', async function () {
    takes('valid', { kind: 'refused', reason: 'revoked' }, false);
    const s = new Scripted(false);
    s.steps.push(vouched(30), { kind: 'refused', code: 'gone', reason: 'revoked' });
    const w = watch(s);
    await w.start();
    await w.checkNow();
    expect(w.state).to.equal('refused');
    expect(w.status()).to.include({ ttlSeconds: null, lastCheckOk: false, nextCheckInSeconds: 0.375 });
    expect(reports.invalid).to.deep.equal([['gone', 'revoked']]);
  });

  it('waiting on waiting: reports when the finding has a code, and looks again after the backoff', async function () {
    takes('waiting', { kind: 'waiting' }, false);
    const s = new Scripted(false);
    s.steps.push({ kind: 'waiting', code: 'missing', reason: 'no token' }, { kind: 'waiting', reason: 'still none' });
    const w = watch(s);
    await w.start();
    expect(w.state).to.equal('waiting');
    expect(w.status().nextCheckInSeconds).to.equal(0.375);
    await clock.tickAsync(375);
    expect(s.stepCalls).to.equal(2);
    expect(reports.invalid, 'the second finding had no code').to.deep.equal([['missing', 'no token']]);
  });

  it('idle on idle: forgets the expiry and looks again in a minute', async function () {
    takes('valid', { kind: 'idle' }, false);
    const s = new Scripted(false);
    s.steps.push(vouched(30), { kind: 'idle' });
    const w = watch(s, 0);
    await w.start();
    await w.checkNow();
    expect(w.state).to.equal('idle');
    expect(w.status()).to.include({ ttlSeconds: null, nextCheckInSeconds: 60 });
  });

  it('unanswered on unanswered from valid: warns, keeps the known expiry, and retries after the backoff', async function () {
    takes('valid', { kind: 'unanswered' }, false);
    const s = new Scripted(false);
    s.steps.push(vouched(30), unreachable());
    const w = watch(s);
    await w.start();
    await w.checkNow();
    expect(w.state).to.equal('unanswered');
    expect(w.status()).to.include({ ttlSeconds: 30, lastCheckOk: false, nextCheckInSeconds: 0.375 });
    expect(reports.invalid).to.deep.equal([]);
    expect(log.lines.some((l) => l.level === 'warn' && String(l.msg).startsWith('Vault said nothing about the scripted thing'))).to.be.true;
  });

  it('stays in its state on unanswered elsewhere, honours Retry-After, and says in one line when Vault answers again', async function () {
    takes('waiting', { kind: 'unanswered' }, false);
    const s = new Scripted(false);
    s.steps.push(answered(429, 'rate limit quota exceeded', { [retryAfterKey]: 2000 }), unreachable(), vouched(30));
    const w = watch(s);
    await w.start();
    expect(w.state).to.equal('waiting');
    await clock.tickAsync(1_999);
    expect(s.stepCalls, 'not before the 2 s Vault asked for').to.equal(1);
    await clock.tickAsync(1 + 750); // then the second backoff: half of 1 s and half of that again
    expect(s.stepCalls).to.equal(3);
    expect(w.state).to.equal('valid');
    const again = log.lines.filter((l) => String(l.msg) === 'Vault answers again about the scripted thing');
    expect(again.map((l) => l.failedAttempts)).to.deep.equal([2]);
  });

  it('valid on replaced: adopts the replacement and says so', async function () {
    takes('replacing', { kind: 'replaced' }, true);
    const s = new Scripted(true);
    s.steps.push({ kind: 'refused', code: 'gone', reason: 'revoked' });
    s.replacements.push(vouched(60));
    const w = watch(s);
    await w.start();
    expect(w.state).to.equal('valid');
    expect(log.lines.some((l) => l.msg === 'replaced the scripted thing' && l.ttlSeconds === 60)).to.be.true;
  });

  it('stays outdated when the replacement is refused: says traffic halts at the known expiry, retries, reports that expiry', async function () {
    takes('outdated', { kind: 'replaceRefused', problem: 'x' }, true);
    const s = new Scripted(true);
    s.steps.push({ kind: 'outdated', why: 'max TTL', vouched: vouched(3) });
    s.replacements.push(answered(400, 'invalid secret id'));
    const w = watch(s);
    await w.start();
    expect(w.state).to.equal('outdated');
    expect(reports.invalid, 'it still works').to.deep.equal([]);
    expect(log.lines.some((l) => l.level === 'error' && String(l.problem).includes('max TTL, and replacing it failed: 400 invalid secret id'))).to.be.true;
    expect(w.status().nextCheckInSeconds).to.equal(0.375);
  });

  it('stays replacing when the replacement is refused: reports that no replacement could be got', async function () {
    takes('replacing', { kind: 'replaceRefused', problem: 'x' }, true);
    const s = new Scripted(true);
    s.steps.push({ kind: 'refused', code: 'gone', reason: 'revoked' });
    s.replacements.push(answered(400, 'invalid secret id'), vouched(60));
    const w = watch(s);
    await w.start();
    expect(w.state).to.equal('replacing');
    expect(reports.invalid).to.deep.equal([['gone', 'revoked'], ['replace_failed', 'revoked, and replacing it failed: 400 invalid secret id']]);
    await clock.tickAsync(375);
    expect(w.state, 'the next wake replaces again').to.equal('valid');
    expect(s.stepCalls).to.equal(1);
  });

  it('a replacement asked for while replacing changes nothing', async function () {
    takes('replacing', { kind: 'replaceSoon', why: 'x' }, true);
    const s = new Scripted(true);
    s.steps.push({ kind: 'refused', code: 'gone', reason: 'revoked' });
    s.replacements.push(answered(400, 'invalid secret id'));
    const w = watch(s);
    await w.start();
    await w.replaceSoon('the token changed');
    expect(w.state).to.equal('replacing');
    expect(s.replaceCalls).to.deep.equal(['revoked']);
  });

  it('outdated on a replacement asked for, when it can replace: replaces at once', async function () {
    takes('valid', { kind: 'replaceSoon', why: 'x' }, true);
    const s = new Scripted(true);
    s.steps.push(vouched(30));
    s.replacements.push(vouched(60));
    const w = watch(s);
    await w.start();
    await w.replaceSoon('the token changed');
    expect(s.replaceCalls).to.deep.equal(['the token changed']);
    expect(w.state).to.equal('valid');
  });

  it('a replacement asked for when it cannot replace changes nothing', async function () {
    takes('valid', { kind: 'replaceSoon', why: 'x' }, false);
    const s = new Scripted(false);
    s.steps.push(vouched(30));
    const w = watch(s);
    await w.start();
    await w.replaceSoon('the token changed');
    expect(w.state).to.equal('valid');
    expect(s.stepCalls).to.equal(1);
  });

  it('reports the known expiry passing unverified, at that moment and not before, naming the last replacement problem', async function () {
    takes('outdated', { kind: 'expired' }, true);
    const s = new Scripted(true);
    s.steps.push({ kind: 'outdated', why: 'max TTL', vouched: vouched(3) });
    for (let i = 0; i < 20; i++) s.replacements.push(unreachable());
    s.replacements.unshift(answered(400, 'invalid secret id'));
    const w = watch(s);
    await w.start();
    await clock.tickAsync(2_999);
    expect(reports.invalid).to.deep.equal([]);
    await clock.tickAsync(1);
    expect(reports.invalid).to.deep.equal([['expired', 'expired (max TTL, and replacing it failed: 400 invalid secret id)']]);
    expect(w.state).to.equal('outdated');
  });

  it('every row of the table is taken by one of the tests above', function () {
    const missing = table.map((row, i) => ({ row, i })).filter(({ i }) => !covered.has(i)).map(({ row }) => JSON.stringify(row));
    expect(missing).to.deep.equal([]);
  });
});
