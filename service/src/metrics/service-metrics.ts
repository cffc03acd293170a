import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { SnapshotHolder } from '../config/snapshot-holder.js';
import type { AgentStatus } from '../report/agent-report.js';
import type { LeaseStatus } from '../report/lease-report.js';
import type { TokenStatus } from '../report/token-report.js';

/** What the metrics need of the traffic gate (http/traffic-gate.ts), declared here so metrics/ does not import http/. */
export interface ObservedGate {
  readonly isOpen: boolean;
  onHalt(listener: (code: string) => void): () => void;
}

/** Where the collected gauges read from; each is read at scrape time, never on a request's path. */
export interface MetricSources {
  gate: ObservedGate;
  holder: SnapshotHolder;
  token: () => TokenStatus;
  /** Whether Vault Agent renewed its token in time (agent mode); absent in SDK mode. */
  agent?: () => AgentStatus;
  /** The database credentials' lease (dynamic mode); null in kv mode. */
  lease?: () => LeaseStatus | null;
  /** Reloads of the rendered file so far (agent mode); SDK mode has none yet. */
  reloads: () => { loaded: number; refused: number; unchanged: number };
  /** The webhook deliveries (http/webhook-deliveries.ts); absent without WEBHOOK_URL. */
  webhooks?: () => { pending: number; counts: Readonly<Record<'delivered' | 'retried' | 'failed', number>> };
  wallClock?: () => number;
}

/** prom-client's default gauges whose names end in `_total` (left out: see the constructor). */
const defaultGaugesNamedTotal = ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total'] as const;

/** What a call to Vault came to, by the class of its answer: a label with a handful of values. */
export type VaultOutcome = 'ok' | 'refused' | 'rate_limited' | 'unavailable' | 'unreachable' | 'rejected';

/**
 * The service's Prometheus metrics, in a registry of its own. The names are an interface:
 * dashboards, alerts and the docs use them. Labels carry codes, operations and outcomes, never
 * a token, a secret or a tenant's data.
 */
export class ServiceMetrics {
  readonly registry = new Registry();
  readonly #vaultRequests: Counter<'operation' | 'outcome'>;
  readonly #vaultDuration: Histogram<'operation'>;

  /** The process's default metrics and the Vault call metrics, from the very first login. */
  constructor() {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry });
    // prom-client names these three gauges `_total`, a suffix Prometheus keeps for counters:
    // `promtool check metrics` fails on them, and rate() on them would mislead. prom-client
    // can neither skip nor rename one default metric, so they are removed; nothing is lost,
    // each is the sum of its labelled sibling (sum(nodejs_active_handles), ...).
    for (const name of defaultGaugesNamedTotal) this.registry.removeSingleMetric(name);
    this.#vaultRequests = new Counter({
      name: 'saas_vault_requests_total', registers, labelNames: ['operation', 'outcome'] as const,
      help: 'Calls the service made to Vault, by operation and outcome',
    });
    this.#vaultDuration = new Histogram({
      name: 'saas_vault_request_duration_seconds', registers, labelNames: ['operation'] as const,
      help: 'Duration of the service\'s calls to Vault, answered or not',
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    });
  }

  /** The gate, the token and the secrets, once start-up has made them. */
  observe(sources: MetricSources): void {
    const registers = [this.registry];
    const wallClock = sources.wallClock ?? Date.now;
    new Gauge({
      name: 'saas_vault_token_ttl_seconds', registers,
      help: 'Seconds left before the Vault token\'s known expiry; 0 when none is known (refused, expired, not verified)',
      collect() { this.set(sources.token().ttlSeconds ?? 0); },
    });
    const agent = sources.agent;
    if (agent !== undefined) {
      new Gauge({
        name: 'saas_agent_overdue', registers,
        help: '1 while Vault Agent is late renewing its token (dead, stuck, or cut off from Vault), 0 otherwise; absent in SDK mode',
        collect() { this.set(agent().state === 'overdue' ? 1 : 0); },
      });
    }
    const lease = sources.lease ?? (() => null);
    new Gauge({
      name: 'saas_secret_lease_ttl_seconds', registers, labelNames: ['path'] as const,
      help: 'Seconds left before the known expiry of the lease on each dynamic secret path; 0 when none is known ' +
        '(revoked, expired); absent with kv credentials',
      collect() {
        this.reset();
        const status = lease();
        if (status !== null) this.set({ path: status.path }, status.ttlSeconds ?? 0);
      },
    });
    new Gauge({
      name: 'saas_traffic_gate_open', registers, help: '1 while the service serves traffic, 0 while it answers 503',
      collect() { this.set(sources.gate.isOpen ? 1 : 0); },
    });
    const halts = new Counter({
      name: 'saas_traffic_halts_total', registers, labelNames: ['code'] as const,
      help: 'Times traffic halted (or a halt changed cause), by halt code',
    });
    sources.gate.onHalt((code) => { halts.inc({ code }); });

    // The file source counts; the counter catches up at each scrape.
    const seen = { loaded: 0, refused: 0, unchanged: 0 };
    const reloads = new Counter({
      name: 'saas_secrets_reloads_total', registers, labelNames: ['outcome'] as const,
      help: 'Reads of the rendered secrets file: loaded (a new snapshot swapped in), refused (the last good one kept) or unchanged (the content in use, rewritten)',
      collect() {
        const now = sources.reloads();
        for (const outcome of ['loaded', 'refused', 'unchanged'] as const) {
          if (now[outcome] > seen[outcome]) this.inc({ outcome }, now[outcome] - seen[outcome]);
          seen[outcome] = now[outcome];
        }
      },
    });
    for (const outcome of ['loaded', 'refused', 'unchanged'] as const) reloads.inc({ outcome }, 0);
    const webhooks = sources.webhooks;
    if (webhooks !== undefined) {
      new Gauge({
        name: 'saas_webhook_deliveries_pending', registers,
        help: 'Webhook deliveries waiting in the outbox (every replica\'s), as this replica last read it',
        collect() { this.set(webhooks().pending); },
      });
      const settled = { delivered: 0, retried: 0, failed: 0 };
      const deliveries = new Counter({
        name: 'saas_webhook_deliveries_total', registers, labelNames: ['outcome'] as const,
        help: 'Webhook delivery attempts this replica settled: delivered, retried (due again after a backoff) or failed (given up)',
        collect() {
          const now = webhooks().counts;
          for (const outcome of ['delivered', 'retried', 'failed'] as const) {
            if (now[outcome] > settled[outcome]) this.inc({ outcome }, now[outcome] - settled[outcome]);
            settled[outcome] = now[outcome];
          }
        },
      });
      for (const outcome of ['delivered', 'retried', 'failed'] as const) deliveries.inc({ outcome }, 0);
    }
    new Gauge({
      name: 'saas_secrets_snapshot_age_seconds', registers, help: 'Seconds since the secrets in use were loaded',
      collect() {
        const loadedAt = sources.holder.current?.loadedAt;
        this.set(loadedAt === undefined ? 0 : Math.max(0, (wallClock() - loadedAt) / 1000));
      },
    });
  }

  /** Times and counts one call to Vault. */
  async vaultCall<T>(operation: string, call: () => Promise<T>, outcomeOf: (error: unknown) => VaultOutcome): Promise<T> {
    const end = this.#vaultDuration.startTimer({ operation });
    try {
      const result = await call();
      this.#vaultRequests.inc({ operation, outcome: 'ok' });
      return result;
    } catch (error) {
      this.#vaultRequests.inc({ operation, outcome: outcomeOf(error) });
      throw error;
    } finally {
      end();
    }
  }

  /** The Prometheus text format. */
  async text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
