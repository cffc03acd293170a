import { Agent, Server, request } from 'node:http';
import { recordOutput } from '../support/leak-scan.js';

/** One request the load generator sends. */
export interface RequestSpec {
  readonly kind: string;
  readonly path: string;
  readonly method?: string;
  readonly body?: string;
  readonly headers?: Record<string, string>;
}

/** One answered (or failed) request. */
export interface Sample {
  readonly phase: string;
  readonly kind: string;
  /** Date.now() when sent and when the whole answer was in. */
  readonly t0: number;
  readonly t1: number;
  /** 0: no answer (refused, reset, timed out). */
  readonly status: number;
  /** `error.code` of a JSON error body. */
  readonly code: string | undefined;
  /** Every security header koa-helmet sets is there, and X-Powered-By is not. */
  readonly helmet: boolean;
  readonly setCookie: readonly string[];
  readonly body: string;
  readonly error: string | undefined;
}

/** Headers koa-helmet (helmet 8 defaults) puts on every response. */
export const helmetHeaders = [
  'content-security-policy', 'cross-origin-opener-policy', 'cross-origin-resource-policy', 'origin-agent-cluster',
  'referrer-policy', 'strict-transport-security', 'x-content-type-options', 'x-dns-prefetch-control',
  'x-download-options', 'x-frame-options', 'x-permitted-cross-domain-policies', 'x-xss-protection',
] as const;

export function hasHelmetHeaders(headers: Record<string, unknown>): boolean {
  return helmetHeaders.every((name) => headers[name] !== undefined) && headers['x-powered-by'] === undefined;
}

/**
 * A steady-rate load generator on loopback: `ratePerSecond` requests a second, whatever the
 * answers, at most `maxInFlight` at a time (a request that would exceed it is counted as
 * skipped, not queued, so the rate stays honest). Every answer is kept, by phase, and
 * recorded for the suite's secret scan.
 */
export class SteadyLoad {
  readonly samples: Sample[] = [];
  phase = 'warm-up';
  skipped = 0;
  readonly #url: URL;
  readonly #rate: number;
  readonly #next: (i: number) => RequestSpec;
  readonly #maxInFlight: number;
  // A pooled socket is dropped a second before the service's server would close it (Node's
  // keepAliveTimeout, which the service keeps): otherwise a burst after a stall on a busy machine
  // sends requests on sockets the server is closing, and they end in 'socket hang up' (CI,
  // 2026-12-06: five at once), a race of the client's pool and not a promise the service broke.
  readonly #agent = new Agent({ keepAlive: true, maxSockets: 32, timeout: new Server().keepAliveTimeout - 1000 });
  readonly #inFlight = new Set<Promise<void>>();
  #timer: NodeJS.Timeout | undefined;
  #sent = 0;
  #startedAt = 0;

  constructor(url: string, ratePerSecond: number, next: (i: number) => RequestSpec, maxInFlight = 64) {
    this.#url = new URL(url);
    this.#rate = ratePerSecond;
    this.#next = next;
    this.#maxInFlight = maxInFlight;
  }

  start(phase: string): void {
    this.phase = phase;
    this.#startedAt = Date.now();
    this.#sent = 0;
    this.#timer = setInterval(() => { this.#tick(); }, 5);
  }

  /** Stops sending, waits for the answers under way, and closes the connections. */
  async stop(): Promise<Sample[]> {
    clearInterval(this.#timer);
    await Promise.all([...this.#inFlight]);
    this.#agent.destroy();
    return this.samples;
  }

  /** Samples of one phase (all when omitted). */
  of(phase?: string): Sample[] {
    return phase === undefined ? this.samples : this.samples.filter((s) => s.phase === phase);
  }

  #tick(): void {
    const due = Math.floor(((Date.now() - this.#startedAt) * this.#rate) / 1000);
    while (this.#sent < due) {
      const i = this.#sent++;
      if (this.#inFlight.size >= this.#maxInFlight) {
        this.skipped++;
        continue;
      }
      const pending = this.#send(this.#next(i), this.phase);
      this.#inFlight.add(pending);
      void pending.finally(() => this.#inFlight.delete(pending));
    }
  }

  #send(spec: RequestSpec, phase: string, again = false): Promise<void> {
    const t0 = Date.now();
    return new Promise((resolve) => {
      let settled = false;
      const done = (status: number, headers: Record<string, unknown>, body: string, error?: string) => {
        if (settled) return;
        settled = true;
        let code: string | undefined;
        try {
          code = (JSON.parse(body) as { error?: { code?: string } }).error?.code;
        } catch {
          code = undefined;
        }
        const setCookie = headers['set-cookie'];
        this.samples.push({
          phase, kind: spec.kind, t0, t1: Date.now(), status, code, body, error,
          helmet: status === 0 || hasHelmetHeaders(headers),
          setCookie: Array.isArray(setCookie) ? setCookie.map(String) : [],
        });
        if (status !== 0) recordOutput(`load ${status} ${spec.method ?? 'GET'} ${spec.path}`, `${JSON.stringify(headers)}\n${body}`);
        resolve();
      };
      const req = request(new URL(spec.path, this.#url), {
        method: spec.method ?? 'GET',
        agent: this.#agent,
        timeout: 5000,
        headers: { ...(spec.body === undefined ? {} : { 'Content-Type': 'application/json' }), ...spec.headers },
      }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => { done(res.statusCode ?? 0, res.headers, Buffer.concat(chunks).toString('utf8')); });
        res.on('error', (error) => { done(0, {}, '', error.message); });
      });
      req.on('timeout', () => { req.destroy(new Error('timeout')); });
      req.on('error', (error: NodeJS.ErrnoException) => {
        // Node's documented race: a pooled socket the server closed just as it was reused. The
        // server read nothing from it, so the request is sent once more, as Node's docs advise.
        if (!again && !settled && req.reusedSocket && error.code === 'ECONNRESET') {
          settled = true;
          void this.#send(spec, phase, true).then(resolve);
          return;
        }
        done(0, {}, '', error.message);
      });
      req.end(spec.body);
    });
  }
}

/** Counts by status (`503 vault_token_invalid` for coded errors other than 2xx). */
export function countByStatus(samples: readonly Sample[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const s of samples) {
    const key = s.status === 0 ? `no answer (${s.error ?? ''})` : s.status >= 400 && s.code !== undefined ? `${s.status} ${s.code}` : String(s.status);
    counts[key] = (counts[key] ?? 0) + 1;
  }
  return counts;
}
