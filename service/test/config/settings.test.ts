import { expect } from 'chai';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseTrustedProxies, readSettings, readSomeSettings, renderIntervalMs, rereadIntervalMs } from '../../src/config/settings.js';
import { renewalDelayMs, serviceScheduleRules, wakeDelayMs } from '../../src/vault/token-schedule.js';
import { repoRoot } from '../support/repo-root.js';

describe('readSettings', function () {
  it('reads every setting from the environment', function () {
    const settings = readSettings({
      APP_ENV: 'prod', PORT: '8080', SECRETS_MODE: 'sdk', SECRETS_FILE: '/run/s.json', SECRETS_WAIT_MS: '500',
      LOG_LEVEL: 'warn', VAULT_ADDR: 'https://vault:8200', VAULT_TOKEN_FILE: '/run/token', VAULT_CONNECT_TIMEOUT_MS: '900',
      VAULT_REQUEST_TIMEOUT_MS: '700', TOKEN_CHECK_MAX_INTERVAL_MS: '4000', VAULT_CACERT: '/run/ca.pem',
      VAULT_SKIP_VERIFY: 'true', VAULT_NAMESPACE: 'team-a/saas', ADMIN_PORT: '9200', ADMIN_HOST: '0.0.0.0', ADMIN_TOKEN_FILE: '/run/admin-token',
      DRAIN_DELAY_MS: '0', DATABASE_HOST: 'db', DATABASE_PORT: '6432', DATABASE_NAME: 'app', WEBHOOK_URL: 'https://hooks.example/in', TENANT_PROJECT_QUOTA: '250', TENANT_REQUESTS_PER_SECOND: '7', TRUSTED_PROXIES: '10.0.0.0/8,::1',
      DATABASE_CREDENTIALS: 'dynamic', SECRETS_REREAD_INTERVAL_MS: '2500', DATABASE_SSL_MODE: 'verify-full',
      DATABASE_CA_FILE: '/run/pg-ca.pem', APP_NAME: 'billing',
      OIDC_ISSUER_URL: 'https://id.example/realms/saas', OIDC_REDIRECT_URL: 'https://app.example/auth/callback',
      OIDC_CA_FILE: '/run/id-ca.pem', OIDC_SCOPES: 'openid org', OIDC_TENANT_CLAIM: 'org', SESSION_IDLE_TIMEOUT_MS: '10m',
      SESSION_ABSOLUTE_TIMEOUT_MS: '12h',
    });
    expect(settings).to.deep.equal({
      appName: 'billing', appEnv: 'prod', port: 8080, secretsMode: 'sdk', secretsFile: '/run/s.json', secretsWaitMs: 500, logLevel: 'warn',
      vaultAddr: 'https://vault:8200', vaultTokenFile: '/run/token', vaultConnectTimeoutMs: 900,
      vaultRequestTimeoutMs: 700, tokenCheckMaxIntervalMs: 4000, vaultCaCert: '/run/ca.pem',
      vaultSkipVerify: true, vaultNamespace: 'team-a/saas', adminPort: 9200, adminHost: '0.0.0.0', adminTokenFile: '/run/admin-token',
      drainDelayMs: 0, databaseHost: 'db', databasePort: 6432, databaseName: 'app', webhookUrl: 'https://hooks.example/in', tenantProjectQuota: 250, tenantRequestsPerSecond: 7, trustedProxies: ['10.0.0.0/8', '::1'],
      databaseCredentials: 'dynamic', secretsRereadIntervalMs: 2500, databaseSslMode: 'verify-full',
      databaseCaFile: '/run/pg-ca.pem',
      oidcIssuerUrl: 'https://id.example/realms/saas', oidcRedirectUrl: 'https://app.example/auth/callback', oidcCaFile: '/run/id-ca.pem',
      oidcScopes: 'openid org', oidcTenantClaim: 'org', sessionIdleTimeoutMs: 600_000, sessionAbsoluteTimeoutMs: 43_200_000,
    });
  });

  it('holds database credentials in KV by default; SDK mode re-reads KV at the agent\'s render interval of APP_ENV', function () {
    expect(readSettings({}).databaseCredentials).to.equal('kv');
    expect(() => readSettings({ DATABASE_CREDENTIALS: 'vault' })).to.throw(/^DATABASE_CREDENTIALS must be one of kv, dynamic$/);
    for (const [appEnv, ms] of [['dev', 5000], ['staging', 60_000], ['prod', 300_000]] as const) {
      expect(rereadIntervalMs(readSettings({ APP_ENV: appEnv }))).to.equal(ms);
    }
    expect(rereadIntervalMs(readSettings({ APP_ENV: 'prod', SECRETS_REREAD_INTERVAL_MS: '1500' }))).to.equal(1500);
  });

  it('re-reads at the interval agent-config/env/<env>.hcl renders at', async function () {
    for (const appEnv of ['dev', 'staging', 'prod'] as const) {
      const hcl = await readFile(join(repoRoot, `agent-config/env/${appEnv}.hcl`), 'utf8');
      const [, amount, unit] = /static_secret_render_interval\s*=\s*"(\d+)([sm])"/.exec(hcl) ?? [];
      expect(Number(amount) * (unit === 'm' ? 60_000 : 1000), appEnv).to.equal(renderIntervalMs[appEnv]);
    }
  });

  it('defaults to agent mode in dev, reading the file the agent renders', function () {
    expect(readSettings({})).to.include({ appEnv: 'dev', secretsMode: 'agent', secretsFile: '/vault/secrets/app.json' });
  });

  it('puts the operator\'s port on loopback by default, without a token', function () {
    expect(readSettings({})).to.include({ adminPort: 3001, adminHost: '127.0.0.1', adminTokenFile: '' });
  });

  it('by default schedules the next token check at most 10 s away, whatever the TTL (the kill switch); 0 leaves it to the TTL',
    function () {
      // The watcher waits wakeDelayMs(until the renewal is due) between checks: what the
      // default makes of it, for TTLs from a minute to Vault's 768 h, at the spread's far end.
      const latest = () => 0.999;
      const defaults = serviceScheduleRules(readSettings({}).tokenCheckMaxIntervalMs, latest);
      for (const ttlMs of [60_000, 3_600_000, 768 * 3_600_000]) {
        expect(wakeDelayMs(renewalDelayMs(ttlMs, defaults), defaults), `a ${ttlMs} ms TTL`).to.equal(10_000);
      }
      const ttlDecides = serviceScheduleRules(readSettings({ TOKEN_CHECK_MAX_INTERVAL_MS: '0' }).tokenCheckMaxIntervalMs, () => 0.5);
      expect(wakeDelayMs(renewalDelayMs(3_600_000, ttlDecides), ttlDecides), 'two thirds of an hour').to.equal(2_400_000);
    });

  it('reads some settings as readSettings reads them: the variable named, never its value, the TLS pair together', function () {
    const keys = ['databasePort', 'databaseSslMode', 'databaseCaFile'] as const;
    expect(readSomeSettings(keys, { DATABASE_PORT: '6432', APP_ENV: 'nonsense' })).to.deep.equal({
      databasePort: 6432, databaseSslMode: 'disable', databaseCaFile: '',
    });
    expect(() => readSomeSettings(keys, { DATABASE_PORT: 'p4ss' })).to.throw(/^DATABASE_PORT must be a port number from 0 to 65535$/)
      .and.satisfy((error: Error) => !error.message.includes('p4ss'));
    expect(() => readSomeSettings(keys, { DATABASE_SSL_MODE: 'verify-full' }))
      .to.throw(/^DATABASE_CA_FILE must name the CA certificate \(PEM\) when DATABASE_SSL_MODE is verify-full$/);
  });

  it('takes VAULT_NAMESPACE as namespace names joined by /, at most 128 characters; empty is the root namespace', function () {
    expect(readSettings({}).vaultNamespace).to.equal('');
    expect(readSettings({ VAULT_NAMESPACE: 'saas' }).vaultNamespace).to.equal('saas');
    expect(readSettings({ VAULT_NAMESPACE: 'team-a/saas_1' }).vaultNamespace).to.equal('team-a/saas_1');
    expect(readSettings({ VAULT_NAMESPACE: 'a'.repeat(128) }).vaultNamespace).to.have.length(128);
    for (const wrong of ['/saas', 'saas/', 'a//b', '../root', 'saas ns', 'a'.repeat(129)]) {
      expect(() => readSettings({ VAULT_NAMESPACE: wrong }), wrong).to.throw(/^VAULT_NAMESPACE must be namespace names .* at most 128 characters, or empty$/);
    }
  });

  it('verifies Vault\'s TLS certificate unless VAULT_SKIP_VERIFY is exactly "true"', function () {
    expect(readSettings({}).vaultSkipVerify).to.equal(false);
    expect(readSettings({ VAULT_SKIP_VERIFY: 'false' }).vaultSkipVerify, 'node-vault took "false" as skip').to.equal(false);
    expect(readSettings({ VAULT_SKIP_VERIFY: 'true' }).vaultSkipVerify).to.equal(true);
    for (const wrong of ['1', 'yes', 'TRUE', '']) {
      expect(() => readSettings({ VAULT_SKIP_VERIFY: wrong }), wrong).to.throw(/^VAULT_SKIP_VERIFY must be true or false$/);
    }
  });

  it('names the environment variable that is wrong and what it must be, without its value', function () {
    const cases: [NodeJS.ProcessEnv, string][] = [
      [{ APP_ENV: 'qa' }, 'APP_ENV must be one of dev, staging, prod'],
      [{ PORT: 'eighty' }, 'PORT must be a port number from 0 to 65535'],
      [{ SECRETS_MODE: 'env' }, 'SECRETS_MODE must be one of agent, sdk, auto'],
      [{ LOG_LEVEL: 'verbose' }, 'LOG_LEVEL must be one of trace, debug, info, warn, error, fatal'],
      [{ DATABASE_PORT: '-1' }, 'DATABASE_PORT must be a port number from 0 to 65535'],
      // A dash would let billing-app-* match another application's names.
      [{ APP_NAME: 'bill-ing' }, 'APP_NAME must be lowercase letters and digits, starting with a letter, at most 20'],
    ];
    for (const [env, message] of cases) {
      expect(() => readSettings(env), JSON.stringify(env)).to.throw(Error, new RegExp(`^${message}$`));
    }
  });

  it('reports every invalid variable at once', function () {
    expect(() => readSettings({ APP_ENV: 'qa', SECRETS_MODE: 'env' })).to.throw(
      /^APP_ENV must be one of dev, staging, prod; SECRETS_MODE must be one of agent, sdk, auto$/);
  });

  it('accepts an http or https VAULT_ADDR, or none, and refuses anything else', function () {
    expect(readSettings({ VAULT_ADDR: 'http://127.0.0.1:8200' }).vaultAddr).to.equal('http://127.0.0.1:8200');
    expect(readSettings({ VAULT_ADDR: 'https://vault.internal' }).vaultAddr).to.equal('https://vault.internal');
    expect(readSettings({ VAULT_ADDR: '' }).vaultAddr, 'empty: start-up names it when a mode needs it').to.equal('');
    for (const wrong of ['vault:8200', '127.0.0.1:8200', 'ftp://vault:8200', 'http//vault']) {
      expect(() => readSettings({ VAULT_ADDR: wrong }), wrong).to.throw(
        /^VAULT_ADDR must be an http:\/\/ or https:\/\/ URL, or empty$/);
    }
  });

  const durations = 'a whole number of milliseconds, or one with a unit: 250ms, 10s, 5m, 1h \\(at most 2147483647 ms\\)';

  it('refuses 0 and anything but a positive duration for timeouts and waits', function () {
    for (const variable of ['VAULT_CONNECT_TIMEOUT_MS', 'VAULT_REQUEST_TIMEOUT_MS', 'SECRETS_WAIT_MS']) {
      for (const wrong of ['0', '0s', '-5', '1.5', '12abc', '10x', '10 s', '10S', '', '2147483648', '600h']) {
        expect(() => readSettings({ [variable]: wrong }), `${variable}=${wrong}`).to.throw(
          new RegExp(`^${variable} must be a duration above 0: ${durations}$`));
      }
      expect(() => readSettings({ [variable]: '1' }), `${variable}=1`).to.not.throw();
    }
  });

  it('reads 10s as 10 000 ms and 5m as 300 000 ms, not as 10 and 5 (convict\'s nat was a bare parseInt)', function () {
    const read = readSettings({
      TOKEN_CHECK_MAX_INTERVAL_MS: '10s', SECRETS_REREAD_INTERVAL_MS: '5m', DRAIN_DELAY_MS: '250ms',
      VAULT_CONNECT_TIMEOUT_MS: '1h', VAULT_REQUEST_TIMEOUT_MS: '1500', SECRETS_WAIT_MS: '2s',
    });
    expect(read).to.include({
      tokenCheckMaxIntervalMs: 10_000, secretsRereadIntervalMs: 300_000, drainDelayMs: 250,
      vaultConnectTimeoutMs: 3_600_000, vaultRequestTimeoutMs: 1500, secretsWaitMs: 2000,
    });
  });

  it('refuses 10x, 3000abc and every value that is not exactly a duration, naming the variable and never the value', function () {
    for (const variable of ['TOKEN_CHECK_MAX_INTERVAL_MS', 'SECRETS_REREAD_INTERVAL_MS', 'DRAIN_DELAY_MS']) {
      for (const wrong of ['10x', '3000abc', '5 m', '1.5s', '-1', '', 's', '0x10', '1e3', '99999999999999999999']) {
        let message = '';
        try {
          readSettings({ [variable]: wrong });
        } catch (error) {
          message = (error as Error).message;
        }
        expect(message, `${variable}=${wrong}`).to.match(new RegExp(`^${variable} must be `));
        if (wrong !== '' && wrong !== 's' && wrong !== '-1') expect(message, `${variable}=${wrong}`).to.not.contain(wrong);
      }
    }
  });

  it('refuses ports that are not exactly a number from 0 to 65535: 3000abc is no port 3000', function () {
    for (const variable of ['PORT', 'ADMIN_PORT', 'DATABASE_PORT']) {
      for (const wrong of ['3000abc', '3000.5', ' 3000', '65536', '0x50', '']) {
        expect(() => readSettings({ [variable]: wrong }), `${variable}=${wrong}`).to.throw(
          new RegExp(`^${variable} must be a port number from 0 to 65535$`));
      }
    }
    expect(readSettings({ PORT: '0', ADMIN_PORT: '65535', DATABASE_PORT: '6432' })).to.include(
      { port: 0, adminPort: 65_535, databasePort: 6432 });
  });

  it('refuses a project quota that is not exactly a whole number from 1 up, naming the variable', function () {
    for (const wrong of ['0', '10k', '1.5', ' 5', '-1', '', '1000000000']) {
      expect(() => readSettings({ TENANT_PROJECT_QUOTA: wrong }), `TENANT_PROJECT_QUOTA=${wrong}`).to.throw(
        /^TENANT_PROJECT_QUOTA must be a whole number from 1 to 999999999$/);
    }
    expect(readSettings({ TENANT_PROJECT_QUOTA: '1' }).tenantProjectQuota).to.equal(1);
    expect(readSettings({}).tenantProjectQuota).to.equal(1000);
  });

  it('parses TRUSTED_PROXIES: addresses and CIDR blocks, IPv4 and IPv6; anything else refused', function () {
    expect(parseTrustedProxies('')).to.deep.equal([]);
    expect(parseTrustedProxies(' 10.0.0.0/8, 192.168.1.7 ,fd00::/8,::1')).to.deep.equal(['10.0.0.0/8', '192.168.1.7', 'fd00::/8', '::1']);
    for (const wrong of ['10.0.0.0/33', 'fd00::/129', 'proxy.example', '10.0.0.1/8/1', '10.0.0.0/x', '*']) {
      expect(parseTrustedProxies(wrong), wrong).to.equal(undefined);
    }
  });

  it('refuses TRUSTED_PROXIES that are not addresses or CIDR blocks, naming the variable; none by default', function () {
    for (const wrong of ['proxy.example', '10.0.0.0/33', '*']) {
      expect(() => readSettings({ TRUSTED_PROXIES: wrong }), `TRUSTED_PROXIES=${wrong}`).to.throw(/^TRUSTED_PROXIES must be IP addresses or CIDR blocks/);
    }
    expect(readSettings({}).trustedProxies).to.deep.equal([]);
  });

  it('asks for ADMIN_TOKEN_FILE when the operator\'s port is not on loopback, outside dev', function () {
    expect(() => readSettings({ APP_ENV: 'prod', ADMIN_HOST: '0.0.0.0' }))
      .to.throw(/^ADMIN_TOKEN_FILE must be set when ADMIN_HOST is not loopback \(0\.0\.0\.0\) outside APP_ENV=dev/);
    expect(() => readSettings({ APP_ENV: 'staging', ADMIN_HOST: '10.0.0.5' })).to.throw(/^ADMIN_TOKEN_FILE must be set/);
    expect(readSettings({ APP_ENV: 'prod', ADMIN_HOST: '0.0.0.0', ADMIN_TOKEN_FILE: '/run/admin-token' }).adminHost).to.equal('0.0.0.0');
    expect(readSettings({ APP_ENV: 'prod' }).adminHost, 'loopback by default').to.equal('127.0.0.1');
    expect(readSettings({ APP_ENV: 'prod', ADMIN_HOST: '::1' }).adminHost).to.equal('::1');
    expect(readSettings({ ADMIN_HOST: '0.0.0.0' }).adminHost, 'dev').to.equal('0.0.0.0');
  });

  it('takes the issuer and the redirect together, the redirect https or, in dev only, http on a loopback host', function () {
    const issuer = 'https://id.example/realms/saas';
    expect(readSettings({ OIDC_ISSUER_URL: issuer, OIDC_REDIRECT_URL: 'https://app.example/auth/callback', APP_ENV: 'prod' }))
      .to.include({ oidcIssuerUrl: issuer, oidcRedirectUrl: 'https://app.example/auth/callback', oidcScopes: 'openid tenant', oidcTenantClaim: 'tenant' });
    expect(readSettings({ OIDC_ISSUER_URL: 'http://127.0.0.1:8200/v1/identity/oidc/provider/saas-dev', OIDC_REDIRECT_URL: 'http://localhost:3000/auth/callback' }).oidcRedirectUrl)
      .to.equal('http://localhost:3000/auth/callback');
    const refused: [NodeJS.ProcessEnv, RegExp][] = [
      [{ OIDC_ISSUER_URL: issuer }, /^OIDC_ISSUER_URL and OIDC_REDIRECT_URL go together/],
      [{ OIDC_REDIRECT_URL: 'https://app.example/auth/callback' }, /^OIDC_ISSUER_URL and OIDC_REDIRECT_URL go together/],
      [{ OIDC_ISSUER_URL: issuer, OIDC_REDIRECT_URL: 'http://app.example/auth/callback' }, /^OIDC_REDIRECT_URL must be https, or http on a loopback host/],
      [{ OIDC_ISSUER_URL: issuer, OIDC_REDIRECT_URL: 'http://127.0.0.1/auth/callback', APP_ENV: 'staging' }, /^OIDC_REDIRECT_URL must be https, or http on a loopback host/],
      [{ OIDC_ISSUER_URL: issuer, OIDC_REDIRECT_URL: 'https://app.example/login' }, /^OIDC_REDIRECT_URL must be the service's \/auth\/callback/],
      [{ OIDC_ISSUER_URL: 'http://id.example', OIDC_REDIRECT_URL: 'https://app.example/auth/callback', APP_ENV: 'prod' }, /^OIDC_ISSUER_URL must be https outside APP_ENV=dev$/],
      [{ OIDC_SCOPES: 'profile tenant' }, /^OIDC_SCOPES must be scope names separated by single spaces, openid among them$/],
      [{ OIDC_TENANT_CLAIM: 'ten ant' }, /^OIDC_TENANT_CLAIM must be a claim name/],
      [{ SESSION_IDLE_TIMEOUT_MS: '0' }, /^SESSION_IDLE_TIMEOUT_MS must be a duration above 0/],
    ];
    for (const [env, message] of refused) expect(() => readSettings(env), JSON.stringify(env)).to.throw(message);
  });

  it('keeps 0 for the token check and KV re-read intervals, and refuses anything from 1 ms to below the 100 ms floor', function () {
    for (const variable of ['TOKEN_CHECK_MAX_INTERVAL_MS', 'SECRETS_REREAD_INTERVAL_MS']) {
      for (const tooShort of ['1', '10', '99', '99ms']) {
        expect(() => readSettings({ [variable]: tooShort }), `${variable}=${tooShort}`).to.throw(
          new RegExp(`^${variable} must be 0 or a duration of at least 100 ms: ${durations}$`));
      }
    }
    expect(readSettings({ TOKEN_CHECK_MAX_INTERVAL_MS: '100', SECRETS_REREAD_INTERVAL_MS: '0s' })).to.include(
      { tokenCheckMaxIntervalMs: 100, secretsRereadIntervalMs: 0 });
    expect(readSettings({ TOKEN_CHECK_MAX_INTERVAL_MS: '0ms' }).tokenCheckMaxIntervalMs).to.equal(0);
    // The drain delay calls nothing: any duration, 0 included.
    expect(readSettings({ DRAIN_DELAY_MS: '1' }).drainDelayMs).to.equal(1);
  });

  it('ignores variables that are not settings, whatever they hold', function () {
    expect(readSettings({ DATABASE_PASSWORD: 'x', HOME: '/root' })).to.not.have.property('DATABASE_PASSWORD');
  });
});
