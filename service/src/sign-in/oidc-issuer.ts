import { readFile } from 'node:fs/promises';
import * as oidc from 'openid-client';
import { Agent, fetch as undiciFetch } from 'undici';

/** The client's credentials: the catalogue's oidc group, from the request's snapshot. */
export interface ClientCredentials {
  readonly client_id: string;
  readonly client_secret: string;
}

export interface IssuerOptions {
  /** OIDC_ISSUER_URL. */
  readonly url: string;
  /** Plain http is dev's (settings.ts refuses it elsewhere). */
  readonly allowHttp: boolean;
  /** How long one call to the issuer may take. */
  readonly timeoutMs: number;
  /** OIDC_CA_FILE: the CA (PEM file) the issuer's certificate chains to; empty: the system's CAs. */
  readonly caFile: string;
}

/** The issuer could not be reached or described itself wrongly: sign-in is unavailable for now. */
export class IssuerUnavailable extends Error {}

/**
 * The issuer as openid-client sees it, for the client credentials of the request's snapshot.
 * The discovery document is fetched once per credentials (a rotated client secret makes a new
 * configuration, used from the next sign-in on) and fetched again after a failure. ID tokens
 * are checked in full, their signature included against the issuer's keys: the token endpoint's
 * answer is not taken on trust.
 */
export class OidcIssuer {
  readonly #options: IssuerOptions;
  #current: { key: string; configuration: Promise<oidc.Configuration> } | undefined;

  constructor(options: IssuerOptions) {
    this.#options = options;
  }

  get url(): string {
    return this.#options.url;
  }

  async configuration(credentials: ClientCredentials): Promise<oidc.Configuration> {
    const key = `${credentials.client_id}\n${credentials.client_secret}`;
    if (this.#current?.key !== key) {
      const configuration = this.#discover(credentials);
      this.#current = { key, configuration };
      // A failed discovery is not kept: the next sign-in tries again.
      configuration.catch(() => {
        if (this.#current?.configuration === configuration) this.#current = undefined;
      });
    }
    return this.#current.configuration;
  }

  async #discover(credentials: ClientCredentials): Promise<oidc.Configuration> {
    const { url, allowHttp, timeoutMs, caFile } = this.#options;
    try {
      const configuration = await oidc.discovery(new URL(url), credentials.client_id, credentials.client_secret, undefined, {
        timeout: Math.ceil(timeoutMs / 1000),
        ...(caFile === '' ? {} : { [oidc.customFetch]: await fetchTrusting(caFile) }),
        // openid-client marks it deprecated to make it stand out: dev's plain-http Vault only.
        // eslint-disable-next-line @typescript-eslint/no-deprecated
        ...(allowHttp ? { execute: [oidc.allowInsecureRequests] } : {}),
      });
      oidc.enableNonRepudiationChecks(configuration);
      return configuration;
    } catch (error) {
      throw new IssuerUnavailable(`the issuer ${url} did not give its discovery document: ${(error as Error).message}`);
    }
  }
}

/**
 * fetch trusting the CA in `caFile` alone (undici's, with a dispatcher of its own: Node's
 * global fetch takes no CA option). Read at each discovery, so a renewed CA file is used.
 */
export async function fetchTrusting(caFile: string): Promise<(url: string, init?: object) => Promise<Response>> {
  let ca: string;
  try {
    ca = await readFile(caFile, 'utf8');
  } catch (error) {
    throw new Error(`cannot read OIDC_CA_FILE ${caFile}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`, { cause: error });
  }
  const dispatcher = new Agent({ connect: { ca } });
  return async (url, init) => asGlobalResponse(await undiciFetch(url, { ...init, dispatcher }));
}

/** undici's answer as a Response of the global fetch's, which openid-client checks answers against. */
function asGlobalResponse(answer: Awaited<ReturnType<typeof undiciFetch>>): Response {
  const body = [101, 204, 205, 304].includes(answer.status) ? null : answer.body as ReadableStream | null;
  return new Response(body, { status: answer.status, statusText: answer.statusText, headers: [...answer.headers] });
}
