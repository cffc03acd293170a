import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import convict from 'convict';
import { checkCatalogue } from '../../../scripts/secrets/catalogue.js';
import { staleFiles } from '../../../scripts/secrets/generate.js';
import { generatedPaths } from '../../../scripts/secrets/outputs.js';
import type { SecretCatalogue } from '../../src/config/secret-catalogue.js';
import { secretCatalogue } from '../../src/config/secret-catalogue.generated.js';
import { schemaOf, secretGroups } from '../../src/config/secret-schema.js';
import { repoRoot } from '../support/repo-root.js';
import { copyProject } from '../support/project-copy.js';

function runGenerate(cwd: string, ...args: string[]): Promise<{ code: number; output: string }> {
  return new Promise((resolve) => {
    execFile('npm', ['run', '--silent', 'secrets:generate', '--', ...args], { cwd }, (error, stdout, stderr) => {
      resolve({ code: error === null ? 0 : typeof error.code === 'number' ? error.code : 1, output: stdout + stderr });
    });
  });
}

const catalogueText = readFile(join(repoRoot, 'agent-config/secret-catalogue.json'), 'utf8');

describe('scripts/secrets/: the secret catalogue and the files generated from it (pure logic, and the command on a copy)', function () {
  this.timeout(60_000);

  it('leaves no generated file stale: each is what npm run secrets:generate makes of the catalogue', async function () {
    expect([...(await staleFiles(repoRoot)).keys()]).to.deep.equal([]);
  });

  it('gives the service the catalogue as it is in the file: the same groups, keys and requirements', async function () {
    expect(checkCatalogue(JSON.parse(await catalogueText))).to.deep.equal(secretCatalogue);
    expect(secretGroups).to.deep.equal(Object.keys(secretCatalogue.groups));
  });

  it('--check names each stale file and exits 1; the command rewrites them and --check then passes', async function () {
    const project = await copyProject();
    const path = join(project, 'agent-config/secret-catalogue.json');
    const catalogue = JSON.parse(await readFile(path, 'utf8')) as { groups: { app: { keys: Record<string, unknown> } } };
    catalogue.groups.app.keys.csrf_key = { type: 'string', minLength: 32, doc: 'CSRF tokens', example: { randomHex: 32 } };
    await writeFile(path, JSON.stringify(catalogue));
    const check = await runGenerate(project, '--check');
    expect(check.code).to.equal(1);
    for (const generated of Object.values(generatedPaths)) expect(check.output).to.contain(`${generated} is stale`);
    expect((await runGenerate(project)).code).to.equal(0);
    expect(await runGenerate(project, '--check')).to.deep.equal({ code: 0, output: '' });
    expect(await readFile(join(project, generatedPaths.template), 'utf8')).to.contain('"csrf_key": {{ .Data.data.csrf_key | toJSON }}');
  });

  it('refuses a catalogue the service or the template could not honour, naming what is wrong', async function () {
    const base = JSON.parse(await catalogueText) as { groups: Record<string, { doc: string; source: string; keys: Record<string, unknown> }> };
    const variant = (change: (groups: typeof base.groups) => void): unknown => {
      const copy = structuredClone(base);
      change(copy.groups);
      return copy;
    };
    const key = { type: 'string', minLength: 32, doc: 'a key', example: { randomHex: 32 } };
    const cases: [string, unknown, RegExp][] = [
      ['a dynamic group other than database', variant((g) => { g.extra = { doc: 'x', source: 'kv-or-database-engine', keys: { username: key } }; }),
        /groups\.extra: only the database group/],
      ['no database group', variant((g) => { delete g.database; }), /needs a database group/],
      ['a database key the engine does not issue', variant((g) => { (g.database as { keys: Record<string, unknown> }).keys.host = key; }),
        /keys\.host: the database engine issues only/],
      ['an example shorter than its key requires', variant((g) => { g.extra = { doc: 'x', source: 'kv', keys: { k: { ...key, example: { randomHex: 8 } } } }; }),
        /16 characters, shorter than minLength 32/],
      ['a key name the template cannot read', variant((g) => { g.extra = { doc: 'x', source: 'kv', keys: { 'a-key': key } }; }), /a key name is/],
      ['a group name that is no path segment', variant((g) => { g.Extra_1 = { doc: 'x', source: 'kv', keys: { k: key } }; }), /a group name is/],
      ['a doc that would end the generated comment', variant((g) => { g.extra = { doc: 'x */ y', source: 'kv', keys: { k: key } }; }), /cannot hold \*\//],
      ['a group without keys', variant((g) => { g.extra = { doc: 'x', source: 'kv', keys: {} }; }), /at least one key/],
      ['an unknown field', variant((g) => { g.extra = { doc: 'x', source: 'kv', keys: { k: { ...key, optional: true } } }; }), /optional/],
    ];
    for (const [what, json, message] of cases) expect(() => checkCatalogue(json), what).to.throw(message);
  });

  it('builds the service\'s schema from a catalogue: type and minimum length, per key', function () {
    const catalogue: SecretCatalogue = { groups: { extra: { doc: 'x', source: 'kv', keys: {
      word: { type: 'string', minLength: 40, doc: 'a word', example: { randomHex: 20 } },
      list: { type: 'string-list', minLength: 3, doc: 'a list', example: { randomHex: 2 } },
    } } } };
    const validate = (data: object) => {
      const config = convict(schemaOf(catalogue), { env: {}, args: [] });
      config.load(data);
      config.validate({ allowed: 'strict' });
    };
    expect(() => { validate({ extra: { word: 'a'.repeat(40), list: ['abc'] } }); }).to.not.throw();
    expect(() => { validate({ extra: { word: 'a'.repeat(39), list: ['abc'] } }); }).to.throw(/extra\.word: must be a string of at least 40 characters/);
    expect(() => { validate({ extra: { word: 'a'.repeat(40), list: [] } }); }).to.throw(/extra\.list: must be a non-empty list of keys/);
    expect(() => { validate({ extra: { word: 'a'.repeat(40), list: ['ab'] } }); }).to.throw(/every key must be a string of at least 3 characters/);
    expect(() => { validate({ extra: { word: 'a'.repeat(40), list: ['abc'], more: 'x' } }); }).to.throw(/more/);
  });
});
