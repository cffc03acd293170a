import { expect } from 'chai';
import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import sinon from 'sinon';
import { buildSnapshot, type ConfigSnapshot } from '../../src/config/snapshot.js';
import { SnapshotHolder } from '../../src/config/snapshot-holder.js';
import { readSettings, settingsSchema } from '../../src/config/settings.js';
import { PoolHolder } from '../../src/db/pool-holder.js';
import { sessionsPerUser } from '../../src/db/sessions.js';
import { createApp, type AppDependencies } from '../../src/http/app.js';
import { callbacksAtOnce } from '../../src/http/auth-routes.js';
import { routeDependencies } from '../../src/http/route-dependencies.js';
import { TrafficGate } from '../../src/http/traffic-gate.js';
import { signInLifetimeMs } from '../../src/sign-in/sign-in-state.js';
import { finishSignIn, type IssuerAnswer } from '../../../scripts/sign-in/play-browser.js';
import { startDevServer, vaultServer, type DevServer } from '../support/bao.js';
import { startTestPostgres, type TestPostgres } from '../support/postgres.js';
import { appScope, capturingLogger, renderedDocument, sampleSecrets } from '../support/rendered-secrets.js';
import { addIdentityProvider, devRedirectUrl, type IdentityProvider } from '../support/sign-in.js';

/**
 * A proxy in front of Vault that is the issuer's address (ISSUER_ADDR): the service talks to
 * the issuer through it, and a test can have it change the ID token the token endpoint returns
 * (`tamper`) or hold the token endpoint's requests until it lets them through (`hold`).
 */
async function startIssuerProxy(vaultAddr: string) {
  const target = new URL(vaultAddr);
  const proxy = { url: '', server: createServer(), tamper: false, hold: false, held: [] as (() => void)[] };
  const forward = (req: IncomingMessage, res: ServerResponse) => {
    const upstream = request({ host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers }, (answer) => {
      const chunks: Buffer[] = [];
      answer.on('data', (chunk: Buffer) => chunks.push(chunk));
      answer.on('end', () => {
        let body = Buffer.concat(chunks);
        if (proxy.tamper && req.url?.endsWith('/token') && answer.statusCode === 200) {
          const tokens = JSON.parse(body.toString('utf8')) as { id_token: string };
          const [header, payload, signature] = tokens.id_token.split('.');
          const claims = JSON.parse(Buffer.from(payload ?? '', 'base64url').toString('utf8')) as Record<string, unknown>;
          // Another tenant, the issuer's signature kept: only the signature check can tell.
          claims.tenant = 'globex';
          tokens.id_token = [header, Buffer.from(JSON.stringify(claims)).toString('base64url'), signature].join('.');
          body = Buffer.from(JSON.stringify(tokens));
        }
        res.writeHead(answer.statusCode ?? 502, { ...answer.headers, 'content-length': String(body.length) }).end(body);
      });
    });
    upstream.on('error', () => res.writeHead(502).end());
    req.pipe(upstream);
  };
  proxy.server.on('request', (req, res) => {
    // Held: the token endpoint's requests wait until the test lets them through.
    if (proxy.hold && req.url?.endsWith('/token')) proxy.held.push(() => { forward(req, res); });
    else forward(req, res);
  });
  proxy.server.listen(0, '127.0.0.1');
  await new Promise((r) => proxy.server.once('listening', r));
  proxy.url = `http://127.0.0.1:${(proxy.server.address() as AddressInfo).port}`;
  return proxy;
}

async function listen(app: ReturnType<typeof createApp>): Promise<{ url: string; server: Server }> {
  const server = app.listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server };
}

interface ErrorBody { error: { code: string; message: string } }

describe(`sign-in with OpenID Connect against ${vaultServer.name}'s provider, sessions in a real PostgreSQL`, function () {
  this.timeout(60_000);
  let postgres: TestPostgres;
  let vault: DevServer;
  let proxy: Awaited<ReturnType<typeof startIssuerProxy>>;
  let identity: IdentityProvider;
  let holder: SnapshotHolder;
  let pools: PoolHolder;
  let log: ReturnType<typeof capturingLogger>;
  const servers: Server[] = [];
  let version = 1;

  /** The issuer's settings, every other one as shipped. */
  const signInEnv = (extra: NodeJS.ProcessEnv = {}) => ({
    OIDC_ISSUER_URL: identity.issuerUrl, OIDC_REDIRECT_URL: devRedirectUrl, TENANT_REQUESTS_PER_SECOND: '1000', ...extra,
  });
  /** An instance of the service (a replica: its own session store and issuer client, the same PostgreSQL). */
  async function instance(env: NodeJS.ProcessEnv = signInEnv(), overrides: Partial<AppDependencies> = {}): Promise<string> {
    const gate = new TrafficGate(log.logger);
    gate.valid();
    const deps: AppDependencies = {
      holder, gate, logger: log.logger, retryAfterSeconds: () => 1, pools,
      ...routeDependencies(readSettings(env)), ...overrides,
    };
    const { url, server } = await listen(createApp(deps));
    servers.push(server);
    return url;
  }
  function serveOidc(credentials: { client_id: string; client_secret: string }): void {
    const secrets = (holder.current as ConfigSnapshot).secrets;
    version++;
    holder.swap(buildSnapshot(appScope('dev'), renderedDocument('dev', version, {
      database: { ...secrets.database }, 'api-keys': { ...secrets['api-keys'] }, oidc: credentials,
      app: { session_keys: [...secrets.app.session_keys] },
    }), `rev-${version}`, Date.now()));
  }
  const session = (url: string, cookie: string) => fetch(`${url}/api/session`, { headers: { Cookie: cookie } });
  const post = (url: string, path: string, cookie: string) => fetch(`${url}${path}`, { method: 'POST', headers: { Cookie: cookie } });
  async function refusal(response: Response): Promise<ErrorBody['error'] & { status: number }> {
    return { status: response.status, ...(await response.json() as ErrorBody).error };
  }
  /** The callback, played as the browser would, but answered as it is (no check that it succeeded). */
  const callback = (answer: IssuerAnswer, cookie = [...answer.jar.values()].map((c) => `${c.name}=${c.value}`).join('; ')) =>
    fetch(answer.callback, { headers: { Cookie: cookie } });

  let app: string;
  before(async function () {
    postgres = await startTestPostgres();
    const secrets = sampleSecrets();
    await postgres.provision(secrets.database.username, secrets.database.password);
    vault = await startDevServer();
    proxy = await startIssuerProxy(vault.addr);
    identity = await addIdentityProvider(vault, devRedirectUrl, { extraEnv: { ISSUER_ADDR: proxy.url } });
    secrets.oidc = await identity.credentials();
    log = capturingLogger();
    holder = new SnapshotHolder();
    holder.swap(buildSnapshot(appScope('dev'), renderedDocument('dev', version, secrets), 'rev-1', Date.now()));
    pools = new PoolHolder({ host: '127.0.0.1', port: postgres.layout.port, database: 'saas' }, holder, log.logger);
    app = await instance();
  });
  after(async function () {
    await Promise.all(servers.map((server) => new Promise((r) => server.close(r))));
    await pools.close();
    await new Promise((r) => proxy.server.close(r));
    await vault.stop();
    await postgres.stop();
  });

  it('signs a demo user in with the tenant its verified ID token names: a round trip, and another tenant\'s project is 404', async function () {
    const acme = await identity.signIn(app, 'acme');
    expect(acme.tenant).to.equal('acme');
    expect(acme.cookies.map((c) => c.name), 'the sign-in cookie is gone, the session\'s is set').to.deep.equal(['saas_session', 'saas_session.sig']);
    for (const cookie of acme.cookies) expect(cookie).to.include({ httpOnly: true, secure: false });
    const created = await fetch(`${app}/api/projects`, {
      method: 'POST', headers: { Cookie: acme.cookieHeader, 'Content-Type': 'application/json' }, body: JSON.stringify({ name: 'Apollo' }),
    });
    expect(created.status).to.equal(201);
    const { id } = await created.json() as { id: string };
    expect((await fetch(`${app}/api/projects/${id}`, { headers: { Cookie: acme.cookieHeader } })).status).to.equal(200);
    const globex = await identity.signIn(app, 'globex');
    expect(globex.tenant).to.equal('globex');
    expect(await refusal(await fetch(`${app}/api/projects/${id}`, { headers: { Cookie: globex.cookieHeader } })))
      .to.include({ status: 404, code: 'not_found' });
  });

  it('sends the browser to the issuer with PKCE (S256), a state, a nonce and the registered redirect', async function () {
    const answer = await identity.atIssuer(app, 'acme');
    const query = answer.authorize.searchParams;
    expect(answer.authorize.origin + answer.authorize.pathname).to.equal(`${proxy.url}/ui/vault/identity/oidc/provider/saas-dev/authorize`);
    expect(Object.fromEntries(['response_type', 'scope', 'redirect_uri', 'code_challenge_method', 'client_id'].map((k) => [k, query.get(k)])))
      .to.deep.equal({
        response_type: 'code', scope: 'openid tenant', redirect_uri: devRedirectUrl, code_challenge_method: 'S256',
        client_id: (await identity.credentials()).client_id,
      });
    for (const check of ['code_challenge', 'state', 'nonce']) expect(query.get(check), check).to.match(/^[\w-]{43}$/);
    expect([...answer.jar.keys()]).to.deep.equal(['saas_sign_in', 'saas_sign_in.sig']);
    expect((await finishSignIn(answer)).tenant).to.equal('acme');
  });

  it('refuses a callback with no sign-in under way, another state, or a sign-in older than 10 minutes', async function () {
    const none = await refusal(await fetch(`${app}/auth/callback?code=abc&state=def`));
    expect(none).to.deep.equal({
      status: 400, code: 'sign_in_failed', message: 'no sign-in is under way in this browser: start again at GET /auth/login',
    });

    const forged = await identity.atIssuer(app, 'acme');
    forged.callback.searchParams.set('state', 'x'.repeat(43));
    const wrongState = await refusal(await callback(forged));
    expect(wrongState).to.include({ status: 400, code: 'sign_in_failed' });
    expect(wrongState.message, wrongState.message).to.match(/state/);

    const late = await identity.atIssuer(app, 'acme');
    // The service's clock only, moved past the sign-in's lifetime: the cookie it wrote is too old.
    const clock = sinon.useFakeTimers({ now: Date.now() + signInLifetimeMs + 1000, toFake: ['Date'] });
    try {
      expect(await refusal(await callback(late))).to.deep.equal({
        status: 400, code: 'sign_in_failed', message: 'the sign-in took longer than 10 minutes: start again at GET /auth/login',
      });
    } finally {
      clock.restore();
    }
  });

  it('refuses a callback played again, even with the sign-in cookie kept: the issuer spends a code once', async function () {
    const answer = await identity.atIssuer(app, 'acme');
    const kept = [...answer.jar.values()].map((c) => `${c.name}=${c.value}`).join('; ');
    const first = await callback(answer, kept);
    expect(first.status).to.equal(200);
    expect(first.headers.getSetCookie().some((c) => c.startsWith('saas_session=') && !/expires=Thu, 01 Jan 1970/.test(c))).to.be.true;
    const replay = await callback(answer, kept);
    const replayed = await refusal(replay);
    expect(replayed).to.include({ status: 400, code: 'sign_in_failed' });
    expect(replayed.message).to.match(/the issuer refused the code: invalid_grant/);
    expect(replay.headers.getSetCookie().filter((c) => c.startsWith('saas_session=')), 'no session from a replay').to.deep.equal([]);
  });

  it('refuses an ID token changed on its way from the issuer (another tenant, the signature kept)', async function () {
    proxy.tamper = true;
    try {
      const changed = await refusal(await callback(await identity.atIssuer(app, 'acme')));
      expect(changed).to.include({ status: 400, code: 'sign_in_failed' });
      expect(changed.message, changed.message).to.match(/signature/i);
    } finally {
      proxy.tamper = false;
    }
    expect((await identity.signIn(app, 'acme')).tenant, 'the same flow, untouched').to.equal('acme');
  });

  it('answers 403 no_tenant when the ID token has no tenant in the claim OIDC_TENANT_CLAIM names', async function () {
    const other = await instance(signInEnv({ OIDC_TENANT_CLAIM: 'organisation' }));
    const refused = await refusal(await callback(await identity.atIssuer(other, 'acme')));
    expect(refused).to.include({ status: 403, code: 'no_tenant' });
    expect(refused.message).to.match(/^the ID token's claim organisation \(OIDC_TENANT_CLAIM\) names no tenant/);
  });

  it('uses a new client secret at the next sign-in, without a restart', async function () {
    const before = await identity.credentials();
    // Vault gives a client's secret once, at its creation: a new secret is a new client.
    await fetch(`${vault.addr}/v1/identity/oidc/client/saas-app-dev`, { method: 'DELETE', headers: { 'X-Vault-Token': vault.rootToken } });
    identity = await addIdentityProvider(vault, devRedirectUrl, { extraEnv: { ISSUER_ADDR: proxy.url } });
    const rotated = await identity.credentials();
    expect(rotated.client_secret).to.not.equal(before.client_secret);
    // The snapshot still holds the old client: the issuer no longer knows it.
    let refusedWhileOld = '';
    await identity.signIn(app, 'acme').catch((error: unknown) => { refusedWhileOld = (error as Error).message; });
    expect(refusedWhileOld).to.match(/the issuer refused the sign-in|Vault answered/);
    serveOidc(rotated);
    expect((await identity.signIn(app, 'acme')).tenant, 'the rotated client, same process').to.equal('acme');
  });

  it('ends a session on every replica at once: logout on one, the cookie refused on another', async function () {
    const second = await instance();
    const acme = await identity.signIn(app, 'acme');
    expect((await session(second, acme.cookieHeader)).status, 'the session, seen from the other replica').to.equal(200);
    const out = await post(app, '/auth/logout', acme.cookieHeader);
    expect(out.status).to.equal(204);
    expect(out.headers.getSetCookie().some((c) => /^saas_session=;.*expires=Thu, 01 Jan 1970/.test(c)), 'the browser told to forget it').to.be.true;
    expect(await refusal(await session(second, acme.cookieHeader))).to.include({ status: 401, code: 'session_ended' });
    expect(await refusal(await session(app, acme.cookieHeader))).to.include({ status: 401, code: 'session_ended' });
  });

  it('signs a user out everywhere: every session of that user ends, another user\'s stay', async function () {
    const second = await instance();
    const laptop = await identity.signIn(app, 'globex');
    const phone = await identity.signIn(second, 'globex');
    const acme = await identity.signIn(app, 'acme');
    const everywhere = await post(second, '/auth/logout-everywhere', phone.cookieHeader);
    expect(everywhere.status).to.equal(200);
    expect((await everywhere.json() as { ended: number }).ended).to.be.at.least(2);
    for (const [what, cookie] of [['the laptop', laptop], ['the phone', phone]] as const) {
      expect((await session(app, cookie.cookieHeader)).status, what).to.equal(401);
    }
    expect((await session(second, acme.cookieHeader)).status, 'another user').to.equal(200);
  });

  it(`holds a user to ${sessionsPerUser} live sessions: a sign-in beyond them ends that user's oldest`, async function () {
    const sessions = [];
    for (let i = 0; i <= sessionsPerUser; i++) sessions.push((await identity.signIn(app, 'globex')).cookieHeader);
    const statuses = await Promise.all(sessions.map(async (cookie) => (await session(app, cookie)).status));
    expect(statuses).to.deep.equal([401, ...Array<number>(sessionsPerUser).fill(200)]);
  });

  // The shipped lifetimes (30 min idle, 8 h in all), divided by one factor.
  const factor = 900;
  const idleMs = settingsSchema.sessionIdleTimeoutMs.default / factor;
  const absoluteMs = settingsSchema.sessionAbsoluteTimeoutMs.default / factor;

  it(`ends a session unused for the idle timeout, and one used all along at the absolute timeout (shipped ones ÷ ${factor}: ${idleMs / 1000} s, ${absoluteMs / 1000} s)`, async function () {
    this.timeout(absoluteMs + 30_000);
    const short = await instance(signInEnv({ SESSION_IDLE_TIMEOUT_MS: String(idleMs), SESSION_ABSOLUTE_TIMEOUT_MS: String(absoluteMs) }));
    const idle = await identity.signIn(short, 'acme');
    const used = await identity.signIn(short, 'globex');
    const since = Date.now();
    // Used every quarter of the idle timeout from its sign-in on: alive until the absolute timeout.
    const usedUntilEnded = (async () => {
      while (Date.now() - since < absoluteMs + 5000) {
        const status = (await session(short, used.cookieHeader)).status;
        if (status !== 200) return { status, after: Date.now() - since };
        await new Promise((r) => setTimeout(r, idleMs / 4));
      }
      return { status: 200, after: Date.now() - since };
    })();
    expect((await session(short, idle.cookieHeader)).status).to.equal(200);
    // Unused for the idle timeout and a second: ended.
    await new Promise((r) => setTimeout(r, idleMs + 1000));
    expect(await refusal(await session(short, idle.cookieHeader))).to.include({ status: 401, code: 'session_ended' });
    const { status, after: endedAfter } = await usedUntilEnded;
    expect(status, 'the used session, at its end').to.equal(401);
    expect(endedAfter, 'ended, not before the absolute timeout').to.be.at.least(absoluteMs - 1000);
    expect(endedAfter, 'within a poll and a second of it').to.be.at.most(absoluteMs + idleMs / 4 + 1000);
  });

  it(`finishes at most ${callbacksAtOnce} sign-ins at once on a replica: one more answers 503 sign_in_busy`, async function () {
    const answers = await Promise.all(Array.from({ length: callbacksAtOnce + 1 }, () => identity.atIssuer(app, 'acme')));
    proxy.hold = true;
    const finishing = answers.slice(0, callbacksAtOnce).map((answer) => callback(answer));
    try {
      // Every one of them is waiting on the issuer before the last one comes.
      for (const deadline = Date.now() + 10_000; proxy.held.length < callbacksAtOnce;) {
        if (Date.now() > deadline) throw new Error(`only ${proxy.held.length} callbacks reached the issuer`);
        await new Promise((r) => setTimeout(r, 20));
      }
      const busy = await callback(answers[callbacksAtOnce] as IssuerAnswer);
      expect(busy.headers.get('retry-after')).to.equal('1');
      expect(await refusal(busy)).to.deep.equal({
        status: 503, code: 'sign_in_busy', message: `${callbacksAtOnce} sign-ins are finishing on this replica, its bound: retry in 1 s`,
      });
    } finally {
      proxy.hold = false;
      for (const release of proxy.held.splice(0)) release();
    }
    expect((await Promise.all(finishing)).map((r) => r.status)).to.deep.equal(Array<number>(callbacksAtOnce).fill(200));
  });

  it('answers /auth/login 503 without an issuer, and 400 tls_required over plain HTTP outside dev', async function () {
    const none = await instance({ TENANT_REQUESTS_PER_SECOND: '1000' });
    expect(await refusal(await fetch(`${none}/auth/login`, { redirect: 'manual' }))).to.deep.equal({
      status: 503, code: 'sign_in_unavailable', message: 'sign-in is not configured: set OIDC_ISSUER_URL and OIDC_REDIRECT_URL',
    });
    const plain = await instance(signInEnv(), { plainHttpCookies: false });
    const refused = await refusal(await fetch(`${plain}/auth/login`, { redirect: 'manual' }));
    expect(refused).to.include({ status: 400, code: 'tls_required' });
    expect(refused.message).to.match(/TRUSTED_PROXIES/);
  });

  it('logs no cookie, code or token: the sign-ins above left none in the service\'s log', async function () {
    const answer = await identity.atIssuer(app, 'acme');
    const code = answer.callback.searchParams.get('code') ?? '';
    const signedIn = await finishSignIn(answer);
    const text = log.text();
    expect(text).to.include('"msg":"signed in"');
    const values = [code, ...signedIn.cookies.map((c) => c.value), ...[...answer.jar.values()].map((c) => c.value)];
    expect(values.filter((value) => value.length > 8 && text.includes(value))).to.deep.equal([]);
  });
});
