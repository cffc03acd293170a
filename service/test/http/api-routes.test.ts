import { expect } from 'chai';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { buildSnapshot, type ConfigSnapshot } from '../../src/config/snapshot.js';
import { SnapshotHolder } from '../../src/config/snapshot-holder.js';
import { PoolHolder } from '../../src/db/pool-holder.js';
import { readSettings } from '../../src/config/settings.js';
import { pageSize } from '../../src/http/api-routes.js';
import { createApp, type AppDependencies } from '../../src/http/app.js';
import { routeDependencies } from '../../src/http/route-dependencies.js';
import { TenantRate } from '../../src/http/tenant-rate.js';
import { TrustedProxies } from '../../src/http/trusted-proxies.js';
import { TrafficGate } from '../../src/http/traffic-gate.js';
import { verifyWebhook } from '../../src/http/webhook-signature.js';
import { WebhookDeliveries } from '../../src/http/webhook-deliveries.js';
import { startTestPostgres, type TestPostgres } from '../support/postgres.js';
import { appScope, capturingLogger, randomKey, renderedDocument, sampleSecrets } from '../support/rendered-secrets.js';
import { startIdentityProvider, type IdentityProvider } from '../support/sign-in.js';
import type { DevServer } from '../support/bao.js';

interface Received {
  body: string;
  signature: string;
}

/** A local webhook receiver: what the outbound integration would call. */
async function startReceiver(): Promise<{ url: string; received: Received[]; server: Server }> {
  const received: Received[] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => { body += chunk.toString('utf8'); });
    req.on('end', () => {
      received.push({ body, signature: String(req.headers['x-saas-signature']) });
      res.writeHead(204).end();
    });
  });
  server.listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks`, received, server };
}

/** The test's quota: above the default page, so that an unpaged list of a full tenant is cut short. */
const quota = pageSize.default + 10;

/** The tenants these tests sign in as: each a demo user of Vault's OpenID Connect provider. */
const tenants = ['acme', 'globex', 'pages', 'full', 'roomy', 'ended'];

describe('the SaaS API on a real PostgreSQL, signed in through OpenBao\'s OpenID Connect provider', function () {
  this.timeout(30_000);
  let postgres: TestPostgres;
  let identity: IdentityProvider & { server: DevServer };
  let holder: SnapshotHolder;
  /** Every secret value the holder has served since the first snapshot, with what it was. */
  const served = new Map<string, string>();
  let pools: PoolHolder;
  let server: Server;
  let url: string;
  let deps: AppDependencies;
  let receiver: Awaited<ReturnType<typeof startReceiver>>;
  let webhooks: WebhookDeliveries;
  let log: ReturnType<typeof capturingLogger>;
  let version = 1;

  type Secrets = ReturnType<typeof sampleSecrets>;

  /** What the agent's next render brings: `next` swapped in as a new snapshot. */
  function serve(next: Secrets): void {
    version++;
    holder.swap(buildSnapshot(appScope('dev'), renderedDocument('dev', version, next), `rev-${version}`, Date.now()));
  }

  /** The secrets in use now, as a copy to change: each test starts from them, whatever ran before. */
  function current(): Secrets {
    const { database, 'api-keys': apiKeys, oidc, app } = (holder.current as ConfigSnapshot).secrets;
    return {
      database: { username: database.username, password: database.password },
      'api-keys': { webhook_signing_key: apiKeys.webhook_signing_key },
      oidc: { ...oidc },
      app: { session_keys: [...app.session_keys] },
    };
  }

  /** A new database password: PostgreSQL's first, then Vault's, as a rotation does. */
  async function rotatePassword(between: () => Promise<void> = () => Promise.resolve()): Promise<void> {
    const rotated = current();
    rotated.database.password = randomKey();
    await postgres.provision(rotated.database.username, rotated.database.password); // ALTER ROLE ... PASSWORD
    await between();
    serve(rotated);
  }

  before(async function () {
    postgres = await startTestPostgres();
    const secrets = sampleSecrets();
    await postgres.provision(secrets.database.username, secrets.database.password);
    // The redirect the issuer holds: the tests' browser calls the callback where the app listens.
    const redirectUrl = 'http://127.0.0.1/auth/callback';
    identity = await startIdentityProvider(redirectUrl, { DEMO_USERS: tenants.join(' ') });
    secrets.oidc = await identity.credentials();
    receiver = await startReceiver();
    log = capturingLogger();
    holder = new SnapshotHolder();
    holder.onSwap(({ revision, secrets: { database, 'api-keys': apiKeys, app } }) => {
      served.set(database.password, `the database password of ${revision}`);
      served.set(apiKeys.webhook_signing_key, `the webhook signing key of ${revision}`);
      for (const key of app.session_keys) if (!served.has(key)) served.set(key, `a session key of ${revision}`);
    });
    serve(secrets);
    const gate = new TrafficGate(log.logger);
    gate.valid();
    pools = new PoolHolder({ host: '127.0.0.1', port: postgres.layout.port, database: 'saas' }, holder, log.logger);
    const settings = readSettings({
      OIDC_ISSUER_URL: identity.issuerUrl, OIDC_REDIRECT_URL: redirectUrl, TENANT_PROJECT_QUOTA: String(quota),
      // The tests below send bursts; the tenant's rate is tested on an app of its own.
      TENANT_REQUESTS_PER_SECOND: '1000', WEBHOOK_URL: receiver.url,
    });
    const routes = routeDependencies(settings);
    deps = { holder, gate, logger: log.logger, retryAfterSeconds: () => 1, pools, ...routes };
    if (routes.outbox === undefined) throw new Error('WEBHOOK_URL is set: the routes write to an outbox');
    webhooks = new WebhookDeliveries({
      url: receiver.url, outbox: routes.outbox, pools, current: () => holder.current, open: () => gate.isOpen, logger: log.logger,
    });
    webhooks.start();
    const app = createApp(deps);
    server = app.listen(0, '127.0.0.1');
    await new Promise((r) => server.once('listening', r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(async function () {
    await webhooks.stop();
    await new Promise((r) => server.close(r));
    await pools.close();
    await new Promise((r) => receiver.server.close(r));
    await postgres.stop();
    await identity.server.stop();
  });

  /** Until the outbox holds nothing left to deliver and no attempt is under way. */
  async function delivered(): Promise<void> {
    for (const deadline = Date.now() + 20_000; ;) {
      await webhooks.pass();
      if (webhooks.pending === 0 && webhooks.underWay === 0) return;
      if (Date.now() > deadline) throw new Error(`${webhooks.pending} webhooks still pending after 20 s`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** A new session of the demo user `tenant`, signed in as a browser does: its Cookie header. */
  async function signIn(tenant: string, at = url): Promise<string> {
    return (await identity.signIn(at, tenant)).cookieHeader;
  }

  function api(path: string, cookie: string, init: { method?: string; body?: string } = {}) {
    return fetch(`${url}/api${path}`, { ...init, headers: { 'Content-Type': 'application/json', Cookie: cookie } });
  }

  it('signs the session cookie with the current session key', async function () {
    const cookie = await signIn('acme');
    expect(cookie).to.match(/^saas_session=[\w-]{43}; saas_session\.sig=[\w-]+$/);
    expect(await (await api('/session', cookie)).json()).to.deep.equal({ tenant: 'acme' });
    const forged = cookie.replace(/saas_session=[\w-]+/, `saas_session=${Buffer.from('{"tenant":"evil"}').toString('base64url')}`);
    expect((await api('/session', forged)).status).to.equal(401);
  });

  it('round-trips a tenant\'s project through PostgreSQL, invisible to other tenants', async function () {
    const acme = await signIn('acme');
    const globex = await signIn('globex');
    const created = await api('/projects', acme, { method: 'POST', body: JSON.stringify({ name: ' Apollo ', description: 'moon' }) });
    expect(created.status).to.equal(201);
    const project = await created.json() as { id: string; name: string; description: string };
    expect(project).to.include({ name: 'Apollo', description: 'moon' });
    expect(created.headers.get('location')).to.equal(`/api/projects/${project.id}`);

    expect(await (await api(`/projects/${project.id}`, acme)).json()).to.deep.include({ id: project.id, name: 'Apollo' });
    expect((await (await api('/projects', acme)).json() as { projects: { id: string }[] }).projects.map((p) => p.id))
      .to.include(project.id);
    expect((await (await api('/projects', globex)).json() as { projects: unknown[] }).projects).to.deep.equal([]);
    expect((await api(`/projects/${project.id}`, globex)).status).to.equal(404);
    expect((await api(`/projects/${project.id}`, globex, { method: 'DELETE' })).status).to.equal(404);

    expect((await api(`/projects/${project.id}`, acme, { method: 'DELETE' })).status).to.equal(204);
    expect((await api(`/projects/${project.id}`, acme)).status).to.equal(404);
  });

  it('sends a webhook per created project through the outbox, HMAC-signed with the api-keys signing key', async function () {
    const acme = await signIn('acme');
    await delivered();
    const before = receiver.received.length;
    const sentFrom = Math.floor(Date.now() / 1000);
    const created = await api('/projects', acme, { method: 'POST', body: JSON.stringify({ name: 'Hooked' }) });
    expect(created.status).to.equal(201);
    const project = await created.json() as { id: string };
    await delivered();
    const sentTo = Math.floor(Date.now() / 1000);
    const deliveries = receiver.received.slice(before);
    expect(deliveries, 'new deliveries for one created project').to.have.length(1);
    const hook = deliveries[0] as Received;
    const event = JSON.parse(hook.body) as { type: string; tenant: string; data: { id: string; name: string } };
    expect(event).to.deep.include({ type: 'project.created', tenant: 'acme' });
    expect(event.data).to.include({ id: project.id, name: 'Hooked' });
    const signedAt = Number(/^t=(\d+),/.exec(hook.signature)?.[1]);
    expect(signedAt, 'signed at its delivery').to.be.within(sentFrom, sentTo);
    expect(verifyWebhook(hook.body, hook.signature, current()['api-keys'].webhook_signing_key, sentTo)).to.be.true;
    expect(verifyWebhook(hook.body, hook.signature, randomKey(), sentTo)).to.be.false;
  });

  interface Page { projects: { id: string; name: string }[]; next?: string }
  const create = (cookie: string, name: string) => api('/projects', cookie, { method: 'POST', body: JSON.stringify({ name }) });

  it('lists a tenant\'s projects a page at a time, oldest first, with a next cursor while more remain', async function () {
    const pages = await signIn('pages');
    const made: string[] = [];
    for (let i = 0; i < 5; i++) made.push((await (await create(pages, `p${i}`)).json() as { id: string }).id);
    const seen: string[] = [];
    let next: string | undefined;
    let read = 0;
    do {
      const page = await (await api(`/projects?limit=2${next === undefined ? '' : `&after=${next}`}`, pages)).json() as Page;
      expect(page.projects.length, `page ${read + 1}`).to.be.at.most(2);
      seen.push(...page.projects.map((p) => p.id));
      next = page.next;
      read += 1;
    } while (next !== undefined && read < 10);
    expect(seen, 'every project once, in order').to.deep.equal(made);
    expect(read, 'pages of 2, 2 and 1, the last without next').to.equal(3);
    // A cursor only says where a page ends: given to another tenant, it shows that tenant's rows.
    const first = await (await api('/projects?limit=1', pages)).json() as Page;
    const other = await (await api(`/projects?after=${first.next ?? ''}`, await signIn('globex'))).json() as Page;
    for (const project of other.projects) expect(made).to.not.include(project.id);
  });

  it(`holds a tenant to its quota (${quota} here), even for creates racing at it, and bounds an unpaged list to ${pageSize.default}`, async function () {
    const full = await signIn('full');
    for (let i = 0; i < quota; i++) expect((await create(full, `q${i}`)).status).to.equal(201);
    const refused = await create(full, 'one more');
    expect(refused.status).to.equal(409);
    const { error } = await refused.json() as { error: { code: string; message: string } };
    expect(error.code).to.equal('quota_exceeded');
    expect(error.message).to.equal(`tenant full holds ${quota} projects, its quota (TENANT_PROJECT_QUOTA): delete one first`);
    // Another tenant is not held by this one's quota.
    expect((await create(await signIn('roomy'), 'first')).status).to.equal(201);

    const listed = await (await api('/projects', full)).json() as Page;
    expect(listed.projects, 'the default page').to.have.length(pageSize.default);
    expect(listed.next, 'more remain').to.be.a('string');
    // Two places free, five creates at once: two are made, three refused.
    for (const project of listed.projects.slice(0, 2)) expect((await api(`/projects/${project.id}`, full, { method: 'DELETE' })).status).to.equal(204);
    const racing = await Promise.all(Array.from({ length: 5 }, (_, i) => create(full, `race${i}`)));
    expect(racing.map((r) => r.status).sort()).to.deep.equal([201, 201, 409, 409, 409]);
  });

  it('survives PostgreSQL ending a create\'s session mid-transaction: 503 database_unavailable, and the next create works', async function () {
    const ended = await signIn('ended');
    // A session of the test's holds the tenant's lock, so the create waits on it; PostgreSQL
    // then ends the waiting session, as a password rotation or a revoked user does. Unhandled,
    // that connection's error would end this very process.
    const holder = postgres.query("SELECT pg_advisory_lock(hashtext('ended')); SELECT pg_sleep(3)", 'saas');
    await new Promise((r) => setTimeout(r, 300));
    const creating = create(ended, 'cut off');
    const waiting = "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%pg_advisory_xact_lock%'";
    for (const deadline = Date.now() + 5000; await postgres.query(waiting) !== '1';) {
      if (Date.now() > deadline) throw new Error('the create never waited on the tenant\'s lock');
      await new Promise((r) => setTimeout(r, 50));
    }
    await postgres.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%pg_advisory_xact_lock%'");
    const answer = await creating;
    expect(answer.status).to.equal(503);
    expect((await answer.json() as { error: { code: string } }).error.code).to.equal('database_unavailable');
    await holder;
    expect((await create(ended, 'after')).status, 'a new connection').to.equal(201);
  });

  it('sets a __Host- cookie marked Secure when a trusted proxy says the request came over TLS, and only then', async function () {
    const behindProxy = createApp({ ...deps, trustedProxies: new TrustedProxies(['127.0.0.1']) }).listen(0, '127.0.0.1');
    await new Promise((r) => behindProxy.once('listening', r));
    try {
      const proxied = `http://127.0.0.1:${(behindProxy.address() as AddressInfo).port}`;
      const https = { 'X-Forwarded-Proto': 'https' };
      const overTls = await identity.signIn(proxied, 'acme', https);
      expect(overTls.cookies.map((c) => c.name)).to.deep.equal(['__Host-saas_session', '__Host-saas_session.sig']);
      for (const cookie of overTls.cookies) expect(cookie, 'from the trusted proxy, over TLS').to.include({ secure: true, httpOnly: true });
      const https200 = await fetch(`${proxied}/api/session`, { headers: { ...https, Cookie: overTls.cookieHeader } });
      expect(https200.status, 'the __Host- cookie, over TLS').to.equal(200);
      // Over plain HTTP the app reads the plain name only: a Secure cookie never counts there.
      expect((await fetch(`${proxied}/api/session`, { headers: { Cookie: overTls.cookieHeader } })).status).to.equal(401);
      for (const cookie of (await identity.signIn(proxied, 'acme')).cookies) {
        expect(cookie, 'from the trusted proxy, plain HTTP (dev)').to.include({ secure: false, httpOnly: true });
      }
      // The same header from a peer nobody trusts changes nothing.
      for (const cookie of (await identity.signIn(url, 'acme', https)).cookies) expect(cookie, 'no trusted proxy').to.include({ secure: false });
    } finally {
      await new Promise((r) => behindProxy.close(r));
    }
  });

  it('answers a tenant over its rate with 429 rate_limited and Retry-After; other tenants go on', async function () {
    const limited = createApp({ ...deps, tenantRate: new TenantRate({ perSecond: 2 }) }).listen(0, '127.0.0.1');
    await new Promise((r) => limited.once('listening', r));
    try {
      const list = (cookie: string) =>
        fetch(`http://127.0.0.1:${(limited.address() as AddressInfo).port}/api/projects?limit=1`, { headers: { Cookie: cookie } });
      const acme = await signIn('acme');
      const statuses: number[] = [];
      for (let i = 0; i < 5; i++) statuses.push((await list(acme)).status);
      expect(statuses, 'a burst of twice the rate, then refused').to.deep.equal([200, 200, 200, 200, 429]);
      const refused = await list(acme);
      expect(refused.headers.get('retry-after')).to.equal('1');
      expect((await refused.json() as { error: unknown }).error).to.deep.equal({
        code: 'rate_limited', message: 'tenant acme is over 2 requests per second on this replica (TENANT_REQUESTS_PER_SECOND): retry after 1 s',
      });
      expect((await list(await signIn('globex'))).status, 'another tenant').to.equal(200);
      // Retry-After holds: once it has passed, the tenant is served again.
      await new Promise((r) => setTimeout(r, 1000));
      expect((await list(acme)).status).to.equal(200);
    } finally {
      await new Promise((r) => limited.close(r));
    }
  });

  const badRequests: [string, () => Promise<Response>, number, string][] = [
    ['a page of 0', async () => api('/projects?limit=0', await signIn('acme')), 400, 'invalid_input'],
    [`a page over ${pageSize.max}`, async () => api(`/projects?limit=${pageSize.max + 1}`, await signIn('acme')), 400, 'invalid_input'],
    ['a page size that is not a number', async () => api('/projects?limit=10x', await signIn('acme')), 400, 'invalid_input'],
    ['two page sizes', async () => api('/projects?limit=1&limit=2', await signIn('acme')), 400, 'invalid_input'],
    ['a made-up cursor', async () => api(`/projects?after=${Buffer.from('1.x').toString('base64url')}`, await signIn('acme')), 400, 'invalid_input'],
    ['bad JSON', async () => api('/projects', await signIn('acme'), { method: 'POST', body: '{"name": "hunter2",' }),
      400, 'bad_request'],
    ['an oversize body', async () => api('/projects', await signIn('acme'),
      { method: 'POST', body: JSON.stringify({ name: 'x', description: 'y'.repeat(40_000) }) }), 413, 'payload_too_large'],
    ['a wrong type', async () => api('/projects', await signIn('acme'), { method: 'POST', body: JSON.stringify({ name: 42 }) }),
      400, 'invalid_input'],
    ['an unknown field', async () => api('/projects', await signIn('acme'),
      { method: 'POST', body: JSON.stringify({ name: 'a', owner: 'root' }) }), 400, 'invalid_input'],
    ['an empty name', async () => api('/projects', await signIn('acme'), { method: 'POST', body: JSON.stringify({ name: '  ' }) }),
      400, 'invalid_input'],
    ['no session', () => api('/projects', ''), 401, 'unauthenticated'],
    ['a malformed id', async () => api('/projects/not-a-uuid', await signIn('acme')), 404, 'not_found'],
    ['an unknown route', () => fetch(`${url}/nope`), 404, 'not_found'],
    ['a wrong method', () => fetch(`${url}/api/projects`, { method: 'PUT' }), 405, 'method_not_allowed'],
  ];
  for (const [what, send, status, code] of badRequests) {
    it(`answers ${what} with a clear ${status}, never a stack trace`, async function () {
      const response = await send();
      expect(response.status).to.equal(status);
      const text = await response.text();
      const body = JSON.parse(text) as { error: { code: string; message: string } };
      expect(body.error.code).to.equal(code);
      expect(body.error.message).to.be.a('string').and.not.be.empty;
      if (/page|cursor/.test(what)) expect(body.error.message, 'names the bound').to.match(/^(limit: a whole number from 1 to 100|after: not a cursor)/);
      expect(text).to.not.match(/\n\s+at |node_modules|\.ts:\d+|hunter2/);
    });
  }

  it('keeps every request succeeding while the database password rotates (PostgreSQL, then Vault)', async function () {
    const acme = await signIn('acme');
    const statuses: number[] = [];
    const load = { running: true };
    let answered: () => void = () => undefined;
    const requests = (async () => {
      while (load.running) {
        statuses.push((await api('/projects', acme)).status);
        answered();
      }
    })();
    /** Resolves once `count` more requests have been answered: load in each phase, counted. */
    const moreAnswers = (count: number) => {
      const target = statuses.length + count;
      return new Promise<void>((resolve) => { answered = () => { if (statuses.length >= target) resolve(); }; });
    };
    await moreAnswers(10); // load on the old password first
    // Load in the gap between PostgreSQL's change and Vault's: pooled connections carry it.
    await rotatePassword(() => moreAnswers(10));
    await moreAnswers(10); // load on the new pool
    load.running = false;
    await requests;
    expect(statuses.length).to.be.at.least(30);
    expect(statuses.filter((s) => s !== 200)).to.deep.equal([]);
    expect(log.lines.some((l) => l.msg === 'database credentials changed: new connections use the new pool')).to.be.true;
    // New connections use the new password: a fresh pool after the swap works.
    expect((await api('/projects', acme)).status).to.equal(200);
  });

  it('rotates session keys: a new key signs, old cookies stay valid until their key is dropped', async function () {
    const old = await signIn('acme');
    const newKey = randomKey();
    const secrets = current();
    serve({ ...secrets, app: { session_keys: [newKey, ...secrets.app.session_keys] } });
    expect((await api('/session', old)).status, 'old cookie, old key still listed').to.equal(200);
    const fresh = await signIn('acme');
    expect(fresh).to.not.equal(old);
    serve({ ...secrets, app: { session_keys: [newKey] } });
    expect((await api('/session', fresh)).status).to.equal(200);
    expect((await api('/session', old)).status, 'old key dropped').to.equal(401);
  });

  it('never logs a secret value it served: every password and key of every snapshot, through rotations and refusals', async function () {
    // What logs, in this test itself: sign-ins, a project and its webhook, refused requests, a
    // password rotation (the pool change), a session key rotation. The log holds this file's
    // lines so far, whatever ran before.
    const acme = await signIn('acme');
    expect((await api('/projects', acme, { method: 'POST', body: JSON.stringify({ name: 'Logged' }) })).status).to.equal(201);
    await delivered();
    expect((await api('/projects', acme, { method: 'POST', body: '{"name":' })).status).to.equal(400);
    expect((await api('/projects', 'saas_session=e30; saas_session.sig=forged')).status).to.equal(401);
    await rotatePassword();
    expect((await api('/projects', acme)).status, 'a request on the new password').to.equal(200);
    const before = current();
    serve({ ...before, app: { session_keys: [randomKey()] }, 'api-keys': { webhook_signing_key: randomKey() } });
    expect((await api('/session', acme)).status, 'the old cookie, its key dropped').to.equal(401);
    expect((await api('/projects', await signIn('acme'), { method: 'POST', body: JSON.stringify({ name: 'Signed anew' }) })).status).to.equal(201);
    await delivered();

    expect(served.size, 'two passwords, two webhook keys, two session keys at least').to.be.at.least(6);
    const text = log.text();
    // Named, never printed: a failure shows which secret, not its value.
    const logged = [...served].filter(([value]) => text.includes(value)).map(([, what]) => what);
    expect(logged).to.deep.equal([]);
  });
});
