import { expect } from 'chai';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { buildSnapshot } from '../../src/config/snapshot.js';
import { SnapshotHolder } from '../../src/config/snapshot-holder.js';
import { PoolHolder } from '../../src/db/pool-holder.js';
import { ProjectStore } from '../../src/db/projects.js';
import { WebhookOutbox } from '../../src/db/webhook-outbox.js';
import { deliveryBounds, retryDelayMs, WebhookDeliveries } from '../../src/http/webhook-deliveries.js';
import { verifyWebhook } from '../../src/http/webhook-signature.js';
import { ServiceMetrics } from '../../src/metrics/service-metrics.js';
import { startTestPostgres, type TestPostgres } from '../support/postgres.js';
import { appScope, capturingLogger, randomKey, renderedDocument, sampleSecrets } from '../support/rendered-secrets.js';

interface Hit { id: string; body: string; signature: string; at: number }

/** A webhook receiver whose answer each test decides, counting the requests it holds at once. */
async function startReceiver() {
  const receiver = {
    url: '', server: createServer(), hits: [] as Hit[], open: 0, mostOpen: 0,
    answer: (_hit: Hit, res: ServerResponse) => { res.writeHead(204).end(); },
  };
  receiver.server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    let body = '';
    receiver.open++;
    receiver.mostOpen = Math.max(receiver.mostOpen, receiver.open);
    res.on('close', () => { receiver.open--; });
    req.on('data', (chunk: Buffer) => { body += chunk.toString('utf8'); });
    req.on('end', () => {
      const hit = { id: (JSON.parse(body) as { id: string }).id, body, signature: String(req.headers['x-saas-signature']), at: Date.now() };
      receiver.hits.push(hit);
      receiver.answer(hit, res);
    });
  });
  receiver.server.listen(0, '127.0.0.1');
  await new Promise((r) => receiver.server.once('listening', r));
  receiver.url = `http://127.0.0.1:${(receiver.server.address() as AddressInfo).port}/hooks`;
  return receiver;
}

describe('webhook deliveries through the outbox, on a real PostgreSQL', function () {
  this.timeout(60_000);
  let postgres: TestPostgres;
  let holder: SnapshotHolder;
  let pools: PoolHolder;
  let receiver: Awaited<ReturnType<typeof startReceiver>>;
  let log: ReturnType<typeof capturingLogger>;
  let open = true;
  const workers: WebhookDeliveries[] = [];
  const signingKey = () => holder.current?.secrets['api-keys'].webhook_signing_key ?? '';

  /** A worker as a new process would have: its own outbox object, nothing in memory from before. */
  function worker(url = receiver.url): WebhookDeliveries {
    const deliveries = new WebhookDeliveries({
      url, outbox: new WebhookOutbox(), pools, current: () => holder.current, open: () => open, logger: log.logger,
    });
    workers.push(deliveries);
    return deliveries;
  }
  /** Projects created as the API creates them: each adds its event in the same transaction. */
  async function create(count: number, tenant = 'acme'): Promise<string[]> {
    const store = new ProjectStore({ quota: 1000, events: new WebhookOutbox() });
    const ids: string[] = [];
    for (let i = 0; i < count; i++) ids.push((await pools.use((pool) => store.create(pool, tenant, { name: `p${i}`, description: '' }))).id);
    return ids;
  }
  const projectOf = (hit: Hit) => (JSON.parse(hit.body) as { data: { id: string } }).data.id;
  async function until(what: string, done: () => boolean | Promise<boolean>, limitMs = 30_000): Promise<void> {
    for (const deadline = Date.now() + limitMs; !await done();) {
      if (Date.now() > deadline) throw new Error(`${what}: not within ${limitMs} ms`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  const outboxRows = async (where: string) => Number(await postgres.query(`SELECT count(*) FROM webhook_outbox WHERE ${where}`, 'saas'));

  before(async function () {
    postgres = await startTestPostgres();
    const secrets = sampleSecrets();
    await postgres.provision(secrets.database.username, secrets.database.password);
    holder = new SnapshotHolder();
    holder.swap(buildSnapshot(appScope('dev'), renderedDocument('dev', 1, secrets), 'rev-1', Date.now()));
    log = capturingLogger();
    pools = new PoolHolder({ host: '127.0.0.1', port: postgres.layout.port, database: 'saas' }, holder, log.logger);
    receiver = await startReceiver();
  });
  beforeEach(function () {
    receiver.hits = [];
    receiver.mostOpen = 0;
    receiver.answer = (_hit, res) => { res.writeHead(204).end(); };
    open = true;
  });
  afterEach(async function () {
    await Promise.all(workers.splice(0).map((w) => w.stop()));
    await postgres.query('DELETE FROM webhook_outbox', 'saas').catch(() => undefined);
  });
  after(async function () {
    await new Promise((r) => receiver.server.close(r));
    await pools.close();
    await postgres.stop();
  });

  it('waits 1 s before the second attempt, doubling each time up to 5 min (pure)', function () {
    expect([1, 2, 3, 4, 9, 10, 20].map(retryDelayMs)).to.deep.equal([1000, 2000, 4000, 8000, 256_000, 300_000, 300_000]);
  });

  it(`retries a failing receiver after each backoff, then delivers the same event, signed with the key current at each attempt`, async function () {
    const [project] = await create(1);
    const keys: string[] = [];
    receiver.answer = (_hit, res) => {
      keys.push(signingKey());
      res.writeHead(receiver.hits.length <= 2 ? 503 : 204).end();
    };
    const deliveries = worker();
    deliveries.start();
    // A rotation between attempts: the next attempt signs with the new key.
    await until('the first attempt', () => receiver.hits.length >= 1);
    const rotated = { ...sampleSecrets(), database: holder.current?.secrets.database ?? sampleSecrets().database };
    holder.swap(buildSnapshot(appScope('dev'), renderedDocument('dev', 2, { ...rotated, 'api-keys': { webhook_signing_key: randomKey() } }), 'rev-2', Date.now()));
    await until('delivered at the third attempt', () => receiver.hits.length >= 3);
    await until('recorded', async () => await outboxRows('delivered_at IS NOT NULL') === 1);
    expect(new Set(receiver.hits.map(projectOf))).to.deep.equal(new Set([project]));
    expect(new Set(receiver.hits.map((h) => h.id)).size, 'one event, one id').to.equal(1);
    const gaps = [1, 2].map((i) => (receiver.hits[i]?.at ?? 0) - (receiver.hits[i - 1]?.at ?? 0));
    expect(gaps[0], 'after the first failure: 1 s').to.be.at.least(retryDelayMs(1) - 50);
    expect(gaps[1], 'after the second: 2 s').to.be.at.least(retryDelayMs(2) - 50);
    const last = receiver.hits[2] as Hit;
    expect(verifyWebhook(last.body, last.signature, signingKey(), Math.floor(Date.now() / 1000)), 'the rotated key').to.be.true;
    expect(keys.at(-1)).to.equal(signingKey());
    expect(deliveries.counts).to.deep.equal({ delivered: 1, retried: 2, failed: 0 });
    expect(log.text()).to.include('the receiver answered 503');
  });

  it(`has at most ${deliveryBounds.concurrency} deliveries under way at once, however many are due`, async function () {
    const made = await create(12);
    const held: ServerResponse[] = [];
    receiver.answer = (_hit, res) => { held.push(res); };
    const deliveries = worker();
    deliveries.start();
    await until('the first places taken', () => held.length === deliveryBounds.concurrency);
    // Two looks at the outbox later, still no more than the cap.
    await new Promise((r) => setTimeout(r, 2 * deliveryBounds.pollMs + 500));
    expect(receiver.mostOpen).to.equal(deliveryBounds.concurrency);
    receiver.answer = (_hit, res) => { res.writeHead(204).end(); };
    for (const res of held.splice(0)) res.writeHead(204).end();
    await until('every event delivered', async () => await outboxRows('delivered_at IS NULL') === 0);
    expect(new Set(receiver.hits.map(projectOf))).to.deep.equal(new Set(made));
    expect(receiver.mostOpen, 'never more').to.equal(deliveryBounds.concurrency);
  });

  it(`keeps up with a backlog: a free place is filled at once, not at the next look ${deliveryBounds.pollMs} ms later`, async function () {
    const made = await create(200);
    const deliveries = worker();
    const started = Date.now();
    deliveries.start();
    await until('the backlog delivered', async () => await outboxRows('delivered_at IS NULL') === 0);
    const seconds = (Date.now() - started) / 1000;
    expect(new Set(receiver.hits.map(projectOf))).to.deep.equal(new Set(made));
    // Refilled only at each look, 200 events would take 200 / 4 looks of a second each.
    expect(seconds, `${made.length} events in ${seconds.toFixed(1)} s`)
      .to.be.below(made.length / deliveryBounds.concurrency * deliveryBounds.pollMs / 1000 / 4);
  });

  it('loses nothing to a stop: what one worker never delivered, the next one (a restart) does', async function () {
    // No receiver at all, then the worker stops: its attempt failed and was recorded.
    const down = worker('http://127.0.0.1:9/hooks');
    const first = await create(3);
    await down.pass();
    await until('the attempts settled', () => down.underWay === 0);
    await down.stop();
    expect(await outboxRows('attempts = 1 AND delivered_at IS NULL')).to.equal(3);
    // Created while no worker runs.
    const second = await create(2);
    // A worker that claimed and died mid-delivery: its claim runs out, then another attempt follows.
    const crashed = await pools.use((pool) => new WebhookOutbox().claim(pool, 10, 1000));
    expect(crashed.map((d) => d.attempt).sort(), 'the 2 new ones claimed (the 3 failed are not due yet)').to.deep.equal([1, 1]);
    const restarted = worker();
    restarted.start();
    await until('every event delivered after the restart', async () => await outboxRows('delivered_at IS NULL') === 0);
    expect(new Set(receiver.hits.map(projectOf))).to.deep.equal(new Set([...first, ...second]));
  });

  it(`gives an event up after ${deliveryBounds.maxAttempts} attempts, keeping it as failed and saying so`, async function () {
    await create(1);
    await postgres.query(`UPDATE webhook_outbox SET attempts = ${deliveryBounds.maxAttempts - 1}`, 'saas');
    receiver.answer = (_hit, res) => { res.writeHead(500).end(); };
    const deliveries = worker();
    await deliveries.pass();
    await until('settled', () => deliveries.underWay === 0);
    expect(await outboxRows(`failed_at IS NOT NULL AND attempts = ${deliveryBounds.maxAttempts}`)).to.equal(1);
    expect(deliveries.counts).to.deep.equal({ delivered: 0, retried: 0, failed: 1 });
    await new Promise((r) => setTimeout(r, deliveryBounds.pollMs));
    await deliveries.pass();
    expect(deliveries.pending, 'nothing left to try').to.equal(0);
    expect(receiver.hits).to.have.length(1);
    expect(log.lines.some((l) => l.msg === 'webhook given up: kept in the outbox as failed' && l.attempts === deliveryBounds.maxAttempts)).to.be.true;
  });

  it('sends nothing while the traffic gate is halted, and catches up once it reopens; /metrics counts it all', async function () {
    open = false;
    const deliveries = worker();
    const metrics = new ServiceMetrics();
    metrics.observe({
      gate: { isOpen: true, onHalt: () => () => undefined }, holder, token: () => ({ state: 'valid' }) as never,
      reloads: () => ({ loaded: 0, refused: 0, unchanged: 0 }),
      webhooks: () => ({ pending: deliveries.pending, counts: deliveries.counts }),
    });
    deliveries.start();
    await create(2);
    await new Promise((r) => setTimeout(r, 2 * deliveryBounds.pollMs + 500));
    expect(receiver.hits, 'halted').to.deep.equal([]);
    open = true;
    await until('delivered once reopened', async () => await outboxRows('delivered_at IS NULL') === 0);
    // The pending count is read at most once per look (pollMs).
    await until('counted', async () => { await deliveries.pass(); return deliveries.pending === 0; }, 3 * deliveryBounds.pollMs);
    const text = await metrics.text();
    expect(text).to.match(/^saas_webhook_deliveries_pending 0$/m);
    expect(text).to.match(/^saas_webhook_deliveries_total\{outcome="delivered"\} 2$/m);
    expect(text).to.match(/^saas_webhook_deliveries_total\{outcome="failed"\} 0$/m);
  });
});
