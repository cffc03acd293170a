import { expect } from 'chai';
import { access, readFile } from 'node:fs/promises';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { dirname, join } from 'node:path';
import { parseDurationMs, readSettings, settingsSchema } from '../../src/config/settings.js';
import { buildSnapshot } from '../../src/config/snapshot.js';
import { SnapshotHolder } from '../../src/config/snapshot-holder.js';
import { PoolHolder } from '../../src/db/pool-holder.js';
import { createApp } from '../../src/http/app.js';
import { routeDependencies } from '../../src/http/route-dependencies.js';
import { TrafficGate } from '../../src/http/traffic-gate.js';
import { instrumentVaultApi } from '../../src/metrics/instrumented-vault-api.js';
import type { ServiceMetrics } from '../../src/metrics/service-metrics.js';
import { credentialVariables } from '../../src/vault/approle-credentials.js';
import { retryDelayMs, serviceScheduleRules } from '../../src/vault/token-schedule.js';
import type { VaultApi } from '../../src/vault/vault-api.js';
import { repoRoot } from '../support/repo-root.js';
import { appScope, capturingLogger, renderedDocument } from '../support/rendered-secrets.js';
import { durationMs, retryBudgetMs } from '../support/shipped-durations.js';

const exists = (path: string) => access(path).then(() => true, () => false);

/** The rows of the first Markdown table after `heading`, each as its trimmed cells. */
function tableAfter(markdown: string, heading: string): string[][] {
  const start = markdown.indexOf(`\n${heading}\n`);
  if (start < 0) throw new Error(`no heading "${heading}"`);
  const lines = markdown.slice(start).split('\n');
  const first = lines.findIndex((line) => line.startsWith('|'));
  const rows: string[][] = [];
  for (const line of lines.slice(first)) {
    if (!line.startsWith('|')) break;
    rows.push(line.slice(1, -1).split(' | ').map((cell) => cell.trim()));
  }
  return rows.slice(2); // the header and its separator
}

/** GitHub's anchor for a heading: lower case, punctuation but `-` and `_` dropped, spaces to `-`. */
function anchor(heading: string): string {
  return heading.toLowerCase().replace(/[^\p{L}\p{N}\s_-]/gu, '').replace(/\s/g, '-');
}

const headingsOf = (markdown: string) => markdown.split('\n').filter((l) => /^#{1,6} /.test(l)).map((l) => l.replace(/^#+ /, ''));

type Entry = (typeof settingsSchema)[keyof typeof settingsSchema];
const durationFormats = new Set(['positive-duration', 'duration', 'interval']);

/** The schema's default as the README's table writes it: none for an empty string or list, a duration's value in ms. */
function documentedDefault(entry: Entry, cell: string): unknown {
  if (cell === 'none') return Array.isArray(entry.default) ? [] : '';
  const value = /^`([^`]*)`$/.exec(cell)?.[1];
  if (value === undefined) return `a default in backticks or none, not ${cell}`;
  if (typeof entry.format === 'string' && durationFormats.has(entry.format)) return parseDurationMs(value);
  if (typeof entry.default === 'number') return Number(value);
  if (typeof entry.default === 'boolean') return value === 'true' ? true : value === 'false' ? false : value;
  return value;
}

/** The settings table of `markdown` lists every variable the service reads, each once, and no other. */
function checkListing(markdown: string): void {
  const listed = tableAfter(markdown, '## Settings')
    .map(([variable]) => /^`([A-Z][A-Z0-9_]*)`$/.exec(variable ?? '')?.[1] ?? `not one variable in backticks: ${variable}`);
  const read = [...Object.values(settingsSchema).map((entry) => entry.env), ...credentialVariables];
  expect([...listed].sort()).to.deep.equal([...read].sort());
}

/** The settings table of `markdown` gives each setting the schema's default, and none to the credentials. */
function checkDefaults(markdown: string): void {
  const defaults = new Map(tableAfter(markdown, '## Settings').map(([variable, cell]) => [variable?.slice(1, -1), cell ?? '']));
  for (const entry of Object.values(settingsSchema)) {
    expect(documentedDefault(entry, defaults.get(entry.env) ?? ''), entry.env).to.deep.equal(entry.default);
  }
  for (const variable of credentialVariables) expect(defaults.get(variable), variable).to.equal('none');
}

/** `text` with its one `from` made `to`: a mutation of the real document, checked to have happened. */
function mutated(text: string, from: string | RegExp, to: string | ((found: string) => string)): string {
  const result = typeof to === 'string' ? text.replace(from, to) : text.replace(from, to);
  expect(result, `the mutation ${String(from)} changed nothing`).to.not.equal(text);
  return result;
}

/** One capture of `pattern` in `text`; fails naming the pattern when the text no longer says it. */
function said(text: string, pattern: RegExp): string[] {
  const match = pattern.exec(text);
  expect(match, `the README no longer says ${String(pattern)}`).to.not.equal(null);
  return (match as RegExpExecArray).slice(1);
}

/** "0.25", "10" or "241" seconds as the README writes them, in milliseconds. */
const secondsMs = (text: string) => Math.round(Number(text) * 1000);

describe('README.md agrees with the code', function () {
  let readme: string;
  before(async function () {
    readme = await readFile(join(repoRoot, 'README.md'), 'utf8');
  });

  describe('its settings table', function () {
    it('lists every variable the service reads, each once, and no other: the settings schema and the AppRole credentials', function () {
      checkListing(readme);
    });

    it('gives each setting the schema\'s default, and none to the credentials', function () {
      checkDefaults(readme);
    });

    it('says something of each', function () {
      for (const [variable, , meaning] of tableAfter(readme, '## Settings')) expect(meaning ?? '', variable).to.have.length.greaterThan(10);
    });

    it('fails those checks on the real README with a row taken out, a row added, or a default changed', function () {
      const row = (variable: string) => new RegExp(`^\\| \`${variable}\` \\|.*\\n`, 'm');
      expect(() => { checkListing(mutated(readme, row('PORT'), '')); }, 'PORT taken out').to.throw(/expected/);
      expect(() => { checkListing(mutated(readme, row('VAULT_SECRET_ID_FILE'), '')); }, 'a credential taken out').to.throw(/expected/);
      const extra = '| `EXTRA_SETTING` | none | a variable the service does not read |\n';
      expect(() => { checkListing(mutated(readme, row('PORT'), (line) => `${line}${extra}`)); }, 'a row added').to.throw(/expected/);
      expect(() => { checkDefaults(mutated(readme, '| `DRAIN_DELAY_MS` | `5s` |', '| `DRAIN_DELAY_MS` | `5m` |')); }, 'a duration')
        .to.throw(/DRAIN_DELAY_MS/);
      expect(() => { checkDefaults(mutated(readme, '| `PORT` | `3000` |', '| `PORT` | `3001` |')); }, 'a number').to.throw(/PORT/);
      expect(() => { checkDefaults(mutated(readme, '| `VAULT_SKIP_VERIFY` | `false` |', '| `VAULT_SKIP_VERIFY` | `true` |')); }, 'a boolean')
        .to.throw(/VAULT_SKIP_VERIFY/);
      expect(() => { checkDefaults(mutated(readme, '| `VAULT_ROLE_ID` | none |', '| `VAULT_ROLE_ID` | `x` |')); }, 'a credential')
        .to.throw(/VAULT_ROLE_ID/);
    });
  });

  it('names every `operation` label the service counts its calls to Vault under, and no other', async function () {
    const operations = new Set<string>();
    const metrics = {
      vaultCall: (operation: string, call: () => Promise<unknown>) => { operations.add(operation); return call(); },
    } as unknown as ServiceMetrics;
    const api = new Proxy({}, { get: (_target, name) => (name === 'addr' ? 'http://127.0.0.1:1' : () => Promise.resolve(undefined)) });
    const instrumented = instrumentVaultApi(api as VaultApi, metrics) as unknown as Record<string, unknown>;
    for (const [name, method] of Object.entries(instrumented)) {
      if (typeof method === 'function') await (method as (...args: unknown[]) => Promise<unknown>).call(instrumented, 'a', 'b', 1);
      else expect(name).to.equal('addr');
    }
    expect(operations.size).to.be.greaterThan(5);
    const row = readme.split('\n').find((line) => line.startsWith('| `saas_vault_requests_total{operation,outcome}`')) ?? '';
    const sentence = /`operation` is (.*?);/.exec(row)?.[1] ?? '';
    const documented = [...sentence.matchAll(/`([a-z-]+)`/g)].map((m) => m[1]);
    expect([...documented].sort()).to.deep.equal([...operations].sort());
  });

  describe('what the public port answers for /status and /metrics, asked of the service\'s own app', function () {
    let server: Server;
    let url: string;
    let gate: TrafficGate;
    let pools: PoolHolder;

    before(async function () {
      const { logger } = capturingLogger();
      gate = new TrafficGate(logger);
      const holder = new SnapshotHolder();
      holder.swap(buildSnapshot(appScope('dev'), renderedDocument('dev', 3), 'rev', Date.now()));
      // Nothing here reaches the database: the pool connects lazily.
      pools = new PoolHolder({ host: '127.0.0.1', port: 1, database: 'none' }, holder, logger);
      const app = createApp({ holder, gate, logger, retryAfterSeconds: () => 1, pools, ...routeDependencies(readSettings({})) });
      server = app.listen(0, '127.0.0.1');
      await new Promise((resolve) => server.once('listening', resolve));
      url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    });
    after(async function () {
      await new Promise((resolve) => server.close(resolve));
      await pools.close();
    });

    it('is what the README says: one status while traffic is open, the halt\'s while halted', async function () {
      const section = readme.slice(readme.indexOf('## The operator\'s port'), readme.indexOf('## The service\'s API'));
      const [open = '', halted = ''] = said(section.replace(/\s+/g, ' '),
        /public port answers (\d{3}) for both while traffic is open, and the halt's (\d{3}) while halted/);
      gate.valid();
      for (const path of ['/status', '/metrics']) expect((await fetch(`${url}${path}`)).status, `${path}, open`).to.equal(Number(open));
      gate.halt('vault_token_invalid', 'a test halt');
      for (const path of ['/status', '/metrics']) {
        const answer = await fetch(`${url}${path}`);
        expect(answer.status, `${path}, halted`).to.equal(Number(halted));
        expect(await answer.json(), path).to.have.nested.property('error.code', 'vault_token_invalid');
      }
    });
  });

  it('gives the service\'s retry schedule and the agent\'s as the code and agent-config/env/*.hcl ship them', async function () {
    const text = readme.replace(/\s+/g, ' ');
    // The service: serviceScheduleRules at the default check interval, its lowest and highest random draw.
    const [firstLow = '', firstHigh = '', lastLow = '', lastHigh = ''] = said(text,
      /retries with capped backoff \(the first after ([\d.]+) to ([\d.]+) s, each next about twice as long, up to ([\d.]+) to ([\d.]+) s;/);
    const rules = (draw: number) => serviceScheduleRules(settingsSchema.tokenCheckMaxIntervalMs.default, () => draw);
    const highest = 1 - Number.EPSILON;
    expect([retryDelayMs(0, rules(0)), retryDelayMs(0, rules(highest))]).to.deep.equal([secondsMs(firstLow), secondsMs(firstHigh)]);
    expect([retryDelayMs(30, rules(0)), retryDelayMs(30, rules(highest))]).to.deep.equal([secondsMs(lastLow), secondsMs(lastHigh)]);
    expect(retryDelayMs(1, rules(0)), 'each next about twice as long').to.equal(2 * retryDelayMs(0, rules(0)));
    // The agent: every environment's file, where the README says the policy lives.
    const [retries = '', minBackoff = '', maxBackoff = '', total = ''] = said(text,
      /`num_retries = (\d+)`, backing off from `min_backoff` (\d+) s to `max_backoff` (\d+) s: (\d+) s\)/);
    for (const env of ['dev', 'staging', 'prod']) {
      const hcl = await readFile(join(repoRoot, `agent-config/env/${env}.hcl`), 'utf8');
      const setting = (name: string) => new RegExp(`^\\s*${name}\\s*=\\s*"?([^"\\s]+)"?`, 'm').exec(hcl)?.[1] ?? `no ${name}`;
      const shipped = { minBackoff: durationMs(setting('min_backoff')), maxBackoff: durationMs(setting('max_backoff')) };
      expect({ retries: setting('num_retries'), ...shipped }, env)
        .to.deep.equal({ retries, minBackoff: secondsMs(minBackoff), maxBackoff: secondsMs(maxBackoff) });
      expect(retryBudgetMs(shipped, { numRetries: Number(retries), secretIdNumUses: 0 }), env).to.equal(secondsMs(total));
    }
    expect(await readFile(join(repoRoot, 'agent-config/agent.hcl'), 'utf8'), 'agent.hcl sets no backoff').to.not.match(/^\s*(?:min|max)_backoff/m);
  });

  it('links only to files that exist and headings that exist, as do CONTRIBUTING.md and the files that cite a README section', async function () {
    const documents = ['README.md', 'CONTRIBUTING.md', 'RELIABILITY.md', 'BENCHMARKS.md'];
    for (const document of documents) {
      const text = await readFile(join(repoRoot, document), 'utf8');
      for (const [, target = '', fragment] of text.matchAll(/\]\(((?!https?:)[^)#\s]*)(?:#([^)\s]+))?\)/g)) {
        const file = target === '' ? document : join(dirname(document), target);
        expect(await exists(join(repoRoot, file)), `${document} links to ${file}`).to.be.true;
        if (fragment !== undefined && file.endsWith('.md')) {
          const headings = headingsOf(await readFile(join(repoRoot, file), 'utf8')).map(anchor);
          expect(headings, `${document} links to ${file}#${fragment}`).to.include(fragment);
        }
      }
    }
    // docker-compose.yml's header sends its reader to the README's "Compose on a Docker engine".
    const headings = headingsOf(readme);
    for (const cited of ['docker-compose.yml', 'docker-compose.prod.yml']) {
      const text = await readFile(join(repoRoot, cited), 'utf8');
      for (const [, section = ''] of text.matchAll(/README "([^"]+)"/g)) expect(headings, `${cited} cites README "${section}"`).to.include(section);
    }
  });

  it('runs only npm scripts package.json defines, and signs in as a demo user demo-identity.sh makes', async function () {
    const scripts = Object.keys((JSON.parse(await readFile(join(repoRoot, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts);
    for (const document of ['README.md', 'CONTRIBUTING.md', 'RELIABILITY.md', 'BENCHMARKS.md']) {
      const text = await readFile(join(repoRoot, document), 'utf8');
      for (const [command, script = ''] of text.matchAll(/\bnpm run (?:--silent |-s )?([a-z][\w:.-]*)/g)) {
        expect(scripts, `${document}: ${command}`).to.include(script);
      }
    }
    // "Try it" signs in with dev:sign-in, as one of the demo users the stack's provider has by default.
    const tryIt = readme.slice(readme.indexOf('\n## Try it\n'), readme.indexOf('\n## Settings\n'));
    const [user = ''] = said(tryIt, /^npm run --silent dev:sign-in -- ([a-z0-9-]+) jar\b/m);
    const [demoUsers = ''] = said(await readFile(join(repoRoot, 'scripts/demo-identity.sh'), 'utf8'), /^users=\$\{DEMO_USERS:-([^}]*)\}$/m);
    expect(demoUsers.split(' ')).to.include(user);
    expect(tryIt, 'the removed stand-in sign-in').to.not.contain('/api/session');
  });

  it('counts no tests: a number of tests written into a document is stale at the next commit', async function () {
    for (const document of ['README.md', 'CONTRIBUTING.md', 'RELIABILITY.md', 'BENCHMARKS.md', 'specs/vault/plan-vault.md']) {
      const text = await readFile(join(repoRoot, document), 'utf8');
      expect(text.match(/\b\d[\d,]* (?:tests|passing)\b|\b(?:Of|of) the \d+ tests\b|\d+ tests? (?:de|dans)\b/g), document).to.equal(null);
    }
  });
});
