import { expect } from 'chai';
import { readSettings } from '../../src/config/settings.js';

describe('readSettings', function () {
  it('reads every setting from the environment', function () {
    const settings = readSettings({
      APP_ENV: 'prod', PORT: '8080', SECRETS_MODE: 'sdk', SECRETS_FILE: '/run/s.json', SECRETS_WAIT_MS: '500',
      LOG_LEVEL: 'warn', VAULT_ADDR: 'https://vault:8200', VAULT_TOKEN_FILE: '/run/token', VAULT_CONNECT_TIMEOUT_MS: '900',
    });
    expect(settings).to.deep.equal({
      appEnv: 'prod', port: 8080, secretsMode: 'sdk', secretsFile: '/run/s.json', secretsWaitMs: 500, logLevel: 'warn',
      vaultAddr: 'https://vault:8200', vaultTokenFile: '/run/token', vaultConnectTimeoutMs: 900,
      vaultRequestTimeoutMs: 5000, tokenCheckMaxIntervalMs: 0,
      databaseHost: '127.0.0.1', databasePort: 5432, databaseName: 'saas', webhookUrl: '', vaultCaCert: '',
    });
  });

  it('defaults to agent mode in dev, reading the file the agent renders', function () {
    expect(readSettings({})).to.include({ appEnv: 'dev', secretsMode: 'agent', secretsFile: '/vault/secrets/app.json' });
  });

  it('names the setting that is wrong', function () {
    expect(() => readSettings({ APP_ENV: 'qa' })).to.throw(/appEnv: must be one of the possible values: \["dev","staging","prod"\]/);
    expect(() => readSettings({ PORT: 'eighty' })).to.throw(/port: ports must be within range/);
    expect(() => readSettings({ SECRETS_MODE: 'env' })).to.throw(/secretsMode/);
  });

  it('ignores variables that are not settings, whatever they hold', function () {
    expect(readSettings({ DATABASE_PASSWORD: 'x', HOME: '/root' })).to.not.have.property('DATABASE_PASSWORD');
  });
});
