import { expect } from 'chai';
import { execFile, spawn } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { parse } from 'yaml';
import { readSettings } from '../../src/config/settings.js';
import { startService, type RunningService } from '../../src/start.js';
import { maxGraceFraction, renewalPeriodMs, requestToleranceMs } from '../../src/vault/agent-renewal.js';
import { checkFraction, checkSpread } from '../../src/vault/token-schedule.js';
import { prepareAgentDir, startAgent, waitForFile } from '../support/agent.js';
import { startDevServer, vaultServer, type DevServer } from '../support/bao.js';
import type { ManagedProcess } from '../support/processes.js';
import { capturingLogger } from '../support/rendered-secrets.js';
import { repoRoot } from '../support/repo-root.js';
import { asDuration, scaleDurations, shippedProduction } from '../support/shipped-durations.js';
import { tempDir } from '../support/temp-dirs.js';

const run = promisify(execFile);
const rulesFile = join(repoRoot, 'deploy/prometheus/alerts.yml');
const rulesTestFile = join(repoRoot, 'deploy/prometheus/alerts.test.yml');

interface Rule { alert: string; expr: string; for?: string; annotations?: Record<string, string> }
interface RulesFile { groups: { name: string; rules: Rule[] }[] }

async function shippedRules(): Promise<Rule[]> {
  return (parse(await readFile(rulesFile, 'utf8')) as RulesFile).groups.flatMap((group) => group.rules);
}

/** promtool as scripts/ensure-promtool.sh finds it (installing Debian's prometheus package when missing). */
async function ensurePromtool(): Promise<string> {
  return (await run('sh', [join(repoRoot, 'scripts/ensure-promtool.sh')], { maxBuffer: 16 * 1024 * 1024 })).stdout.trim();
}

/** Runs promtool with `input` on its stdin; never rejects: the exit code and both outputs say how it went. */
function promtool(bin: string, args: readonly string[], input = ''): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(bin, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    const chunks: Buffer[] = [];
    child.stdout.on('data', (chunk: Buffer) => chunks.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => chunks.push(chunk));
    child.on('error', reject);
    child.on('close', (code) => { resolve({ code, output: Buffer.concat(chunks).toString('utf8') }); });
    child.stdin.end(input);
  });
}

const promqlWords = new Set(['and', 'or', 'unless', 'bool', 'offset', 'by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'inf', 'nan']);

/**
 * The metric names a PromQL expression reads: identifiers left once strings, label matchers,
 * ranges and label lists are taken out, that are neither keywords nor function calls.
 */
function metricNames(expr: string): string[] {
  const bare = expr
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'/g, '""')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ');
  const names = [...bare.matchAll(/(?<![\w:])[a-zA-Z_:][\w:]*(?![\w:])(?!\s*\()/g)]
    .map((m) => m[0]).filter((word) => !promqlWords.has(word.toLowerCase()));
  return [...new Set(names)];
}

/** `name{label="value"}` matchers (equality only) in an expression. */
function equalityMatchers(expr: string): { name: string; label: string; value: string }[] {
  return [...expr.matchAll(/([a-zA-Z_:][a-zA-Z0-9_:]*)\{([^}]*)\}/g)].flatMap((m) =>
    [...(m[2] as string).matchAll(/([a-zA-Z_]\w*)\s*=\s*"([^"]*)"/g)].map((l) => ({ name: m[1] as string, label: l[1] as string, value: l[2] as string })));
}

/** Names a rule reads through rate() or increase(): counters; the others are compared as they are: gauges. */
function readAsCounter(expr: string, name: string): boolean {
  return new RegExp(`\\b(rate|irate|increase)\\s*\\(\\s*${name}\\b`).test(expr);
}

/** The numbers each comparison `name > 0 < N` sets as its threshold, in the order they appear. */
function thresholds(expr: string, name: string): number[] {
  return [...expr.matchAll(new RegExp(`${name} > 0 < (\\d+)`, 'g'))].map((m) => Number(m[1]));
}

describe('the Prometheus alerting rules (deploy/prometheus/), checked by promtool', function () {
  let bin: string;

  before(async function () {
    this.timeout(600_000); // a fresh machine installs the package first
    bin = await ensurePromtool();
  });

  it('promtool check rules accepts alerts.yml, every rule in it', async function () {
    const rules = await shippedRules();
    const { code, output } = await promtool(bin, ['check', 'rules', rulesFile]);
    expect(code, output).to.equal(0);
    expect(output).to.contain(`SUCCESS: ${rules.length} rules found`);
  });

  it('promtool test rules passes alerts.test.yml, which shows each alert a series that fires it and one beside it that does not', async function () {
    const { code, output } = await promtool(bin, ['test', 'rules', rulesTestFile]);
    expect(code, output).to.equal(0);
    expect(output).to.contain('SUCCESS');
    // Every alert has both cases: an alert added without its tests fails here.
    interface Case { eval_time: string; alertname: string; exp_alerts?: { exp_labels: Record<string, string> }[] }
    interface Test { input_series: { series: string }[]; alert_rule_test: Case[] }
    const tests = (parse(await readFile(rulesTestFile, 'utf8')) as { tests: Test[] }).tests;
    for (const { alert } of await shippedRules()) {
      const mine = tests.filter((t) => t.alert_rule_test.some((c) => c.alertname === alert));
      const cases = mine.flatMap((t) => t.alert_rule_test.filter((c) => c.alertname === alert));
      const firing = new Set(cases.flatMap((c) => (c.exp_alerts ?? []).map((a) => a.exp_labels.instance)));
      const instances = new Set(mine.flatMap((t) => t.input_series.map((s) => /instance="([^"]+)"/.exec(s.series)?.[1])));
      expect(firing.size, `${alert}: a case where it fires`).to.be.above(0);
      const silent = cases.some((c) => (c.exp_alerts ?? []).length === 0) || [...instances].some((i) => !firing.has(i));
      expect(silent, `${alert}: a case where it does not fire`).to.equal(true);
    }
  });

  it('the thresholds stay under the lowest TTLs a healthy service shows with the durations the project ships', async function () {
    const { durations } = await shippedProduction();
    const rules = new Map((await shippedRules()).map((rule) => [rule.alert, rule.expr]));
    const [tokenAlways, tokenUnlessOnTime] = thresholds(rules.get('SaasVaultTokenExpiringSoon') ?? '', 'saas_vault_token_ttl_seconds');
    const [lease] = thresholds(rules.get('SaasDatabaseLeaseEndingSoon') ?? '', 'saas_secret_lease_ttl_seconds');
    expect([tokenAlways, tokenUnlessOnTime, lease], 'the thresholds read from alerts.yml').to.satisfy((t: unknown[]) => t.every(Number.isFinite));
    // The service renews (SDK mode) at most checkFraction + checkSpread / 2 into the TTL.
    const sdkLeft = (ttlMs: number) => (1 - (checkFraction + checkSpread / 2)) * ttlMs / 1000;
    expect(tokenUnlessOnTime, 'SDK mode renews its token with this much left at the latest').to.be.below(sdkLeft(durations.tokenTtl));
    expect(lease, 'SDK mode renews its lease with this much left at the latest').to.be.below(sdkLeft(durations.leaseTtl));
    // The agent logs in again at the max TTL with more than its grace left (10 % of the TTL at
    // the least, half the most: maxGraceFraction), seen within one check interval at the worst.
    const agentLowest = ((maxGraceFraction / 2) * durations.tokenTtl - durations.checkInterval) / 1000;
    expect(tokenAlways, 'an agent on time logs in again with this much left at the least').to.be.at.most(agentLowest);
    expect(tokenAlways).to.be.below(tokenUnlessOnTime as number);
  });

  it('metricNames reads the names an expression uses, not its functions, labels or keywords', function () {
    expect(metricNames('increase(saas_x_total{outcome="refused"}[15m]) > 0')).to.deep.equal(['saas_x_total']);
    expect(metricNames('a > 0 < 20 or (b > 0 < 40 unless ignoring(path) c == 0)')).to.deep.equal(['a', 'b', 'c']);
    expect(metricNames('sum by (code) (rate(d[5m]))')).to.deep.equal(['d']);
  });
});

/** Every shipped duration divided by this factor (as the agent-overdue test does): a renewal period of about 7 s. */
const factor = 30;

describe(`the rules against the real /metrics of a service in agent mode, with a real ${vaultServer.name} agent and server (1/${factor} time)`, function () {
  this.timeout(120_000);
  let bin: string;
  let server: DevServer;
  let agent: ManagedProcess;
  let service: RunningService;
  let periodMs: number;

  before(async function () {
    this.timeout(600_000);
    bin = await ensurePromtool();
    const durations = scaleDurations((await shippedProduction()).durations, factor);
    // The renewal period, with the second the service allows the agent's requests (agent-renewal.ts).
    periodMs = renewalPeriodMs(durations.tokenTtl / 1000, durations.tokenTtl / 1000) + requestToleranceMs;
    server = await startDevServer();
    const agentDir = await prepareAgentDir(server, 'dev', {
      ROLE_TOKEN_TTL: asDuration(durations.tokenTtl), ROLE_TOKEN_MAX_TTL: asDuration(durations.tokenMaxTtl), ROLE_SECRET_ID_NUM_USES: '0',
    });
    agent = startAgent(server, agentDir);
    await waitForFile(agentDir.renderedFile, agent);
    service = await startService(readSettings({
      SECRETS_MODE: 'agent', APP_ENV: 'dev', PORT: '0', ADMIN_PORT: '0', DRAIN_DELAY_MS: '0', VAULT_ADDR: server.addr,
      SECRETS_FILE: agentDir.renderedFile, VAULT_TOKEN_FILE: agentDir.tokenFile, TOKEN_CHECK_MAX_INTERVAL_MS: String(durations.checkInterval),
    }), {}, capturingLogger().logger);
  });
  after(async function () {
    await service.close();
    await agent.stop();
    await server.stop();
  });

  const scrape = async (): Promise<string> => (await fetch(`http://127.0.0.1:${service.adminPort}/metrics`)).text();

  it('every metric the rules read is one the service exports, of the type the rule reads it as, with the label values they match', async function () {
    const text = await scrape();
    const types = new Map([...text.matchAll(/^# TYPE (\S+) (\S+)$/gm)].map((m) => [m[1] as string, m[2] as string]));
    const problems: string[] = [];
    for (const { alert, expr } of await shippedRules()) {
      for (const name of metricNames(expr)) {
        const type = types.get(name);
        const wanted = readAsCounter(expr, name) ? 'counter' : 'gauge';
        if (type === undefined) problems.push(`${alert}: ${name} is not in the service's /metrics`);
        else if (type !== wanted) problems.push(`${alert}: ${name} is a ${type}, read as a ${wanted}`);
      }
      for (const { name, label, value } of equalityMatchers(expr)) {
        const sample = new RegExp(`^${name}\\{[^}]*\\b${label}="${value}"`, 'm');
        if (!sample.test(text)) problems.push(`${alert}: no sample of ${name} has ${label}="${value}"`);
      }
    }
    expect(problems, 'the names are an interface: ../shared/DESIGN.md lists them').to.deep.equal([]);
  });

  it('promtool check metrics accepts the service\'s /metrics text', async function () {
    const { code, output } = await promtool(bin, ['check', 'metrics'], await scrape());
    expect(output, 'promtool\'s findings').to.equal('');
    expect(code).to.equal(0);
  });

  it('a SIGKILLed agent fires SaasAgentOverdue in promtool test rules on the gauge as scraped, and not on the samples before', async function () {
    // Scraped every 250 ms from the kill until the gauge says overdue, then replayed to promtool
    // as one scrape per 15 s, with the target's labels Prometheus would add.
    const samples: number[] = [];
    agent.child.kill('SIGKILL');
    for (const end = Date.now() + periodMs + 1000; samples.at(-1) !== 1;) {
      const value = /^saas_agent_overdue (\S+)$/m.exec(await scrape())?.[1];
      expect(value, 'saas_agent_overdue in /metrics').to.be.oneOf(['0', '1']);
      samples.push(Number(value));
      if (Date.now() > end) throw new Error(`saas_agent_overdue still 0 one renewal period (${periodMs} ms) + 1 s after the SIGKILL`);
      await new Promise((r) => setTimeout(r, 250));
    }
    const firstLate = samples.indexOf(1);
    const dir = await tempDir('promtool');
    await writeFile(join(dir, 'alerts.yml'), await readFile(rulesFile));
    const instance = 'app:3001';
    const rule = (await shippedRules()).find((r) => r.alert === 'SaasAgentOverdue');
    const annotations = Object.fromEntries(Object.entries(rule?.annotations ?? {})
      .map(([key, value]) => [key, value.replaceAll('{{ $labels.instance }}', instance)]));
    const at = (i: number) => `${i * 15}s`;
    await writeFile(join(dir, 'killed.test.yml'), JSON.stringify({
      rule_files: ['alerts.yml'], evaluation_interval: '15s',
      tests: [{
        interval: '15s',
        input_series: [{ series: `saas_agent_overdue{job="saas",instance="${instance}"}`, values: samples.join(' ') }],
        alert_rule_test: [
          // The last sample before it said overdue (the agent was already dead): silent.
          ...(firstLate > 0 ? [{ eval_time: at(firstLate - 1), alertname: 'SaasAgentOverdue', exp_alerts: [] }] : []),
          {
            eval_time: at(firstLate), alertname: 'SaasAgentOverdue',
            exp_alerts: [{ exp_labels: { severity: 'critical', job: 'saas', instance }, exp_annotations: annotations }],
          },
        ],
      }],
    }));
    const { code, output } = await promtool(bin, ['test', 'rules', join(dir, 'killed.test.yml')]);
    expect(code, `${output}\nsamples after the kill, 250 ms apart: ${samples.join(' ')}`).to.equal(0);
  });
});
