import { expect } from 'chai';
import { parseRenderedFile, SecretsFileError } from '../../src/secrets/rendered-file.js';
import { appScope, randomKey, renderedDocument, sampleSecrets } from '../support/rendered-secrets.js';

const file = '/vault/secrets/app.json';

function parse(document: unknown, appEnv = 'dev') {
  return parseRenderedFile(file, Buffer.from(JSON.stringify(document)), appScope(appEnv), 1000);
}

function refusal(document: unknown, appEnv = 'dev'): SecretsFileError {
  const content = Buffer.isBuffer(document) ? document : Buffer.from(JSON.stringify(document));
  try {
    parseRenderedFile(file, content, appScope(appEnv), 1000);
  } catch (error) {
    expect(error).to.be.instanceOf(SecretsFileError);
    return error as SecretsFileError;
  }
  throw new Error('expected the file to be refused');
}

describe('parseRenderedFile', function () {
  it('turns a complete render into a snapshot with every path, its version and the secrets', function () {
    const secrets = sampleSecrets();
    const snapshot = parse(renderedDocument('staging', 7, secrets), 'staging');
    expect(snapshot.secrets).to.deep.equal(secrets);
    expect(snapshot.sources).to.deep.equal([
      { group: 'database', path: 'secret/data/saas-project/staging/database', version: 7 },
      { group: 'api-keys', path: 'secret/data/saas-project/staging/api-keys', version: 7 },
      { group: 'oidc', path: 'secret/data/saas-project/staging/oidc', version: 7 },
      { group: 'app', path: 'secret/data/saas-project/staging/app', version: 7 },
    ]);
    expect(snapshot.loadedAt).to.equal(1000);
    expect(snapshot.revision).to.match(/^[0-9a-f]{64}$/);
  });

  it('expects the paths of its application (APP_NAME): another application\'s render is refused', function () {
    const billing = appScope('dev', 'billing');
    const snapshot = parseRenderedFile(file, Buffer.from(JSON.stringify(renderedDocument('dev', 3, sampleSecrets(), 'billing'))),
      billing, 1000);
    expect(snapshot.sources.map((s) => s.path)).to.deep.equal(
      ['database', 'api-keys', 'oidc', 'app'].map((group) => `secret/data/billing-project/dev/${group}`));
    const dynamic = { ...renderedDocument('dev', 3, sampleSecrets(), 'billing') } as Record<string, Record<string, unknown>>;
    dynamic.database = { ...dynamic.database, path: 'database/creds/billing-app-dev',
      lease: { id: 'database/creds/billing-app-dev/abc', duration: 60, renewable: true } };
    expect(parseRenderedFile(file, Buffer.from(JSON.stringify(dynamic)), billing, 1000, 'dynamic').lease?.path)
      .to.equal('database/creds/billing-app-dev');
    expect(() => parseRenderedFile(file, Buffer.from(JSON.stringify(renderedDocument('dev', 3))), billing, 1000))
      .to.throw(SecretsFileError, /database\.path: is secret\/data\/saas-project\/dev\/database, expected secret\/data\/billing-project\/dev\/database/);
  });

  describe('with dynamic database credentials (DATABASE_CREDENTIALS=dynamic)', function () {
    const dynamicDocument = (lease: unknown = { id: 'database/creds/saas-app-dev/abc', duration: 3600, renewable: true }) => {
      const document = renderedDocument('dev', 2) as Record<string, Record<string, unknown>>;
      const database = document.database ?? {};
      return { ...document, database: { path: 'database/creds/saas-app-dev', lease, data: database.data } };
    };
    const parseDynamic = (document: unknown) =>
      parseRenderedFile(file, Buffer.from(JSON.stringify(document)), appScope('dev'), 1000, 'dynamic');

    it('takes the database group from database/creds with its lease, and no version', function () {
      const snapshot = parseDynamic(dynamicDocument());
      expect(snapshot.lease).to.deep.equal({
        path: 'database/creds/saas-app-dev', id: 'database/creds/saas-app-dev/abc', durationSeconds: 3600, renewable: true,
      });
      expect(snapshot.sources[0]).to.deep.equal({ group: 'database', path: 'database/creds/saas-app-dev', version: null });
      expect(parse(renderedDocument('dev', 1)).lease, 'kv: no lease').to.equal(null);
    });

    it('refuses a lease without an id or a positive duration, naming the key', function () {
      for (const [lease, key] of [
        [{ duration: 3600, renewable: true }, 'database.lease.id'],
        [{ id: 'x', duration: 0, renewable: true }, 'database.lease.duration'],
        [{ id: 'x', duration: 60 }, 'database.lease.renewable'],
      ] as const) {
        try {
          parseDynamic(dynamicDocument(lease));
          expect.fail(`accepted ${key}`);
        } catch (error) {
          expect((error as SecretsFileError).key).to.equal(key);
        }
      }
    });

    it('names DATABASE_CREDENTIALS when the agent and the service disagree', function () {
      const error = refusal(dynamicDocument());
      expect(error.key).to.equal('database.path');
      expect(error.reason).to.include('DATABASE_CREDENTIALS is kv here');
      try {
        parseDynamic(renderedDocument('dev', 1));
        expect.fail('accepted a KV database group in dynamic mode');
      } catch (error) {
        expect((error as SecretsFileError).reason).to.include('DATABASE_CREDENTIALS is dynamic here');
      }
    });
  });

  it('gives equal content an equal revision and different content another', function () {
    const document = renderedDocument('dev', 1);
    expect(parse(document).revision).to.equal(parse(document).revision);
    expect(parse(renderedDocument('dev', 1)).revision).to.not.equal(parse(document).revision);
  });

  const secrets = sampleSecrets();
  const good = renderedDocument('dev', 3, secrets);
  const without = (group: string) => Object.fromEntries(Object.entries(good).filter(([g]) => g !== group));
  const withData = (group: string, data: unknown) => ({ ...good, [group]: { ...good[group], data } });
  const cases: [string, unknown, string | undefined, RegExp][] = [
    ['an empty file', Buffer.alloc(0), undefined, /is empty/],
    ['a partial render', Buffer.from(JSON.stringify(good).slice(0, 60)), undefined, /not valid JSON/],
    ['a JSON array', [], undefined, /not a JSON object/],
    ['a missing group', without('app'), 'app', /missing/],
    ['a group that is not an object', { ...good, database: 'x' }, 'database', /not an object/],
    ['a group without version', { ...good, app: { path: good.app?.path, data: {} } }, 'app.version', /missing/],
    ['a group without data', { ...good, app: { path: good.app?.path, version: 1 } }, 'app.data', /missing/],
    ['another environment\'s path', renderedDocument('prod', 1), 'database.path',
      /is secret\/data\/saas-project\/prod\/database, expected secret\/data\/saas-project\/dev\/database/],
    ['a version of 0', { ...good, database: { ...good.database, version: 0 } }, 'database.version', /positive/],
    ['an unknown group', { ...good, billing: { path: 'x', version: 1, data: {} } }, 'billing', /not a secret group/],
    ['a missing key', withData('database', { username: 'saas_app' }), 'database.password', /non-empty string/],
    ['an empty key', withData('database', { username: 'saas_app', password: '' }), 'database.password',
      /non-empty string/],
    ['a short signing key', withData('api-keys', { webhook_signing_key: 'short-but-secret' }),
      'api-keys.webhook_signing_key', /at least 32 characters/],
    ['no session key', withData('app', { session_keys: [] }), 'app.session_keys', /non-empty list/],
    ['a session key of the wrong type', withData('app', { session_keys: [12345] }), 'app.session_keys',
      /at least 32 characters/],
    ['an unknown key', withData('app', { session_keys: [randomKey()], debug_password: 'hunter2-hunter2' }),
      'app.debug_password', /not a key the service knows/],
  ];
  for (const [what, document, key, reason] of cases) {
    it(`refuses ${what}, naming the file and ${key ?? 'the problem'}`, function () {
      const error = refusal(document);
      expect(error.file).to.equal(file);
      expect(error.key).to.equal(key);
      expect(error.reason).to.match(reason);
      expect(error.message).to.contain(file);
    });
  }

  it('never puts a secret value in the error', function () {
    const errors = cases.map(([, document]) => refusal(document).message);
    const values = [
      secrets.database.password, secrets['api-keys'].webhook_signing_key, secrets.oidc.client_secret, ...secrets.app.session_keys,
      'short-but-secret', 'hunter2-hunter2', '12345',
    ];
    for (const message of errors) {
      for (const value of values) expect(message).to.not.contain(value);
    }
  });

  it('refuses a file over the size limit before parsing it', function () {
    const error = refusal(Buffer.alloc(1024 * 1024 + 1, 0x20));
    expect(error.reason).to.match(/over the 1048576-byte limit/);
  });
});
