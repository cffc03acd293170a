import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { playSignIn, signInAtIssuer, type IssuerAnswer, type SignedIn } from '../../../scripts/sign-in/play-browser.js';
import { fetchTrusting } from '../../src/sign-in/oidc-issuer.js';
import { baoEnv, serverBin, startDevServer, type DevServer } from './bao.js';
import { runScript } from './bao-server.js';
import { registerSecret } from './leak-scan.js';
import { tempDir } from './temp-dirs.js';

/**
 * OIDC_REDIRECT_URL of a test's service in dev: the tests' browser calls /auth/callback where
 * the service listens (any port), as a browser behind a port-forward or a proxy would.
 */
export const devRedirectUrl = 'http://127.0.0.1/auth/callback';
/** The same outside dev, where the redirect is https (the service behind a TLS proxy it trusts). */
export const tlsRedirectUrl = 'https://127.0.0.1/auth/callback';

/** Vault's OpenID Connect provider as scripts/demo-identity.sh makes it, on one server. */
export interface IdentityProvider {
  /** OIDC_ISSUER_URL for the service. */
  readonly issuerUrl: string;
  /** The service's sign-in settings: OIDC_ISSUER_URL, OIDC_REDIRECT_URL (and OIDC_CA_FILE for a TLS Vault). */
  readonly serviceEnv: Readonly<Record<string, string>>;
  /** The client's credentials, as the script wrote them to the oidc group. */
  credentials(): Promise<{ client_id: string; client_secret: string }>;
  /** Signs in as a demo user (acme, globex) at the service at `appUrl`, as a browser does. */
  signIn(appUrl: string, user?: string, headers?: Record<string, string>): Promise<SignedIn>;
  /** The sign-in up to the issuer's answer, for a test that plays the callback its own way. */
  atIssuer(appUrl: string, user?: string, headers?: Record<string, string>): Promise<IssuerAnswer>;
  /** A demo user's password, as the script wrote it. */
  password(user: string): Promise<string>;
}

type Server = Pick<DevServer, 'addr' | 'rootToken' | 'dir'>;

/** What a Vault over TLS needs: its CA (a PEM file), for the script's CLI and the browser's calls. */
export interface ProviderOptions {
  readonly appEnv?: string;
  readonly caFile?: string;
  readonly extraEnv?: NodeJS.ProcessEnv;
}

/**
 * Runs scripts/demo-identity.sh against `server` (the provider, the demo users, the oidc group
 * of `appEnv`); the service's /auth/callback registered as `redirectUrl`.
 */
export async function addIdentityProvider(server: Server, redirectUrl: string, options: ProviderOptions = {}): Promise<IdentityProvider> {
  const { appEnv = 'dev', caFile, extraEnv = {} } = options;
  const usersDir = join(await tempDir('demo-users'), 'users');
  const env = baoEnv(server.dir, {
    VAULT_ADDR: server.addr, VAULT_TOKEN: server.rootToken, VAULT_CLI: serverBin, ...(caFile === undefined ? {} : { VAULT_CACERT: caFile }),
    ...extraEnv,
  });
  const run = await runScript('scripts/demo-identity.sh', [appEnv, redirectUrl, usersDir], env);
  if (run.code !== 0) throw new Error(`demo-identity.sh failed (${run.code}): ${run.stderr}`);
  const app = extraEnv.APP_NAME ?? 'saas';
  const issuerUrl = `${extraEnv.ISSUER_ADDR ?? server.addr}/v1/identity/oidc/provider/${app}-${appEnv}`;
  const password = async (user: string) => {
    const value = (await readFile(join(usersDir, user), 'utf8')).trim();
    registerSecret(`demo user ${user}'s password`, value);
    return value;
  };
  const vaultFetch = caFile === undefined ? undefined : await fetchTrusting(caFile);
  return {
    issuerUrl,
    serviceEnv: { OIDC_ISSUER_URL: issuerUrl, OIDC_REDIRECT_URL: redirectUrl, ...(caFile === undefined ? {} : { OIDC_CA_FILE: caFile }) },
    async credentials() {
      const response = await (vaultFetch ?? fetch)(`${server.addr}/v1/secret/data/${app}-project/${appEnv}/oidc`,
        { headers: { 'X-Vault-Token': server.rootToken } });
      const { data } = await response.json() as { data: { data: { client_id: string; client_secret: string } } };
      registerSecret('the oidc client secret', data.data.client_secret);
      return data.data;
    },
    password,
    async atIssuer(appUrl, user = 'acme', headers = {}) {
      return signInAtIssuer({
        appUrl, user, password: await password(user), vaultAddr: server.addr, headers, ...(vaultFetch === undefined ? {} : { vaultFetch }),
      });
    },
    async signIn(appUrl, user = 'acme', headers = {}) {
      // The cookies are not registered with the leak scan: the callback's answer carries them by
      // design. http/auth-routes.test.ts checks that no log holds one.
      return playSignIn({
        appUrl, user, password: await password(user), vaultAddr: server.addr, headers, ...(vaultFetch === undefined ? {} : { vaultFetch }),
      });
    },
  };
}

/** A dev server of its own with the provider: for apps run in the test's process, with no other Vault. */
export async function startIdentityProvider(redirectUrl: string, extraEnv: NodeJS.ProcessEnv = {}):
  Promise<IdentityProvider & { server: DevServer }> {
  const server = await startDevServer();
  return { server, ...await addIdentityProvider(server, redirectUrl, { extraEnv }) };
}
