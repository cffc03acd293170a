import { expect } from 'chai';
import { access, readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { parseDurationMs, settingsSchema } from '../../src/config/settings.js';
import { instrumentVaultApi } from '../../src/metrics/instrumented-vault-api.js';
import type { ServiceMetrics } from '../../src/metrics/service-metrics.js';
import type { VaultApi } from '../../src/vault/vault-api.js';
import { credentialVariables } from '../../src/vault/approle-credentials.js';
import { repoRoot } from '../support/bao.js';

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

/** The schema's default as the README's table writes it: none for an empty string, a duration's value in ms. */
function documentedDefault(entry: Entry, cell: string): unknown {
  if (cell === 'none') return '';
  const value = /^`([^`]*)`$/.exec(cell)?.[1];
  if (value === undefined) return `a default in backticks or none, not ${cell}`;
  if (typeof entry.format === 'string' && durationFormats.has(entry.format)) return parseDurationMs(value);
  if (typeof entry.default === 'number') return Number(value);
  if (typeof entry.default === 'boolean') return value === 'true' ? true : value === 'false' ? false : value;
  return value;
}

describe('README.md agrees with the code', function () {
  let readme: string;
  before(async function () {
    readme = await readFile(join(repoRoot, 'README.md'), 'utf8');
  });

  describe('its settings table', function () {
    let rows: string[][];
    before(function () {
      rows = tableAfter(readme, '## Settings');
    });

    it('lists every variable the service reads, each once, and no other: the settings schema and the AppRole credentials', function () {
      const listed = rows.map(([variable]) => /^`([A-Z][A-Z0-9_]*)`$/.exec(variable ?? '')?.[1] ?? `not one variable in backticks: ${variable}`);
      const read = [...Object.values(settingsSchema).map((entry) => entry.env), ...credentialVariables];
      expect([...listed].sort()).to.deep.equal([...read].sort());
    });

    it('gives each setting the schema\'s default, and none to the credentials', function () {
      const defaults = new Map(rows.map(([variable, cell]) => [variable?.slice(1, -1), cell ?? '']));
      for (const entry of Object.values(settingsSchema)) {
        expect(documentedDefault(entry, defaults.get(entry.env) ?? ''), entry.env).to.deep.equal(entry.default);
      }
      for (const variable of credentialVariables) expect(defaults.get(variable), variable).to.equal('none');
    });

    it('says something of each', function () {
      for (const [variable, , meaning] of rows) expect(meaning ?? '', variable).to.have.length.greaterThan(10);
    });

    it('would catch a missing variable, an extra one and a different default', function () {
      const table = (body: string) => tableAfter(`\n## Settings\n\n| variable | default | meaning |\n| --- | --- | --- |\n${body}\n`, '## Settings');
      const port = settingsSchema.port;
      expect(documentedDefault(port, table('| `PORT` | `3001` | the port |')[0]?.[1] ?? '')).to.not.equal(port.default);
      expect(documentedDefault(settingsSchema.drainDelayMs, '`5s`')).to.equal(5000);
      expect(documentedDefault(settingsSchema.drainDelayMs, '`5m`')).to.not.equal(settingsSchema.drainDelayMs.default);
      expect(documentedDefault(settingsSchema.webhookUrl, 'none')).to.equal('');
      expect(table('| `PORT` | `3000` | the port |\n| `EXTRA_SETTING` | none | not read |').map(([v]) => v)).to.deep.equal(['`PORT`', '`EXTRA_SETTING`']);
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

  it('says what the public port answers for /status and /metrics: 404 while open, 503 while halted', function () {
    const section = readme.slice(readme.indexOf('## The operator\'s port'), readme.indexOf('## The service\'s API'));
    expect(section).to.match(/404 for both while\s+traffic is open, and 503/);
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

  it('counts no tests: a number of tests written into a document is stale at the next commit', async function () {
    for (const document of ['README.md', 'CONTRIBUTING.md', 'RELIABILITY.md', 'BENCHMARKS.md', 'specs/vault/plan-vault.md']) {
      const text = await readFile(join(repoRoot, document), 'utf8');
      expect(text.match(/\b\d[\d,]* (?:tests|passing)\b|\b(?:Of|of) the \d+ tests\b|\d+ tests? (?:de|dans)\b/g), document).to.equal(null);
    }
  });
});
