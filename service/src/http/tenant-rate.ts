/**
 * How many API requests each tenant may make on this replica: a token bucket per tenant,
 * refilled at `perSecond` and holding at most `burst` (twice the rate by default), so a tenant
 * may go quiet and come back with a short burst, never above the rate for long. Per replica:
 * N replicas let a tenant make N times as many (README, "The service's API").
 *
 * At most `maxTenants` buckets are kept, the least recently seen dropped first: a dropped
 * tenant starts again with a full bucket, as after a pause, and the memory stays bounded
 * whatever the number of tenants.
 */
export interface TenantRateOptions {
  readonly perSecond: number;
  readonly burst?: number;
  readonly maxTenants?: number;
  /** Milliseconds; Date.now by default (tests move it with fake timers). */
  readonly now?: () => number;
}

interface Bucket {
  tokens: number;
  at: number;
}

export class TenantRate {
  readonly perSecond: number;
  readonly #burst: number;
  readonly #maxTenants: number;
  readonly #now: () => number;
  readonly #buckets = new Map<string, Bucket>();

  constructor(options: TenantRateOptions) {
    this.perSecond = options.perSecond;
    this.#burst = options.burst ?? 2 * options.perSecond;
    this.#maxTenants = options.maxTenants ?? 10_000;
    this.#now = options.now ?? Date.now;
  }

  /** 0 when the tenant may make this request (and it is counted), else the whole seconds to wait. */
  take(tenant: string): number {
    const now = this.#now();
    const bucket = this.#buckets.get(tenant) ?? { tokens: this.#burst, at: now };
    bucket.tokens = Math.min(this.#burst, bucket.tokens + ((now - bucket.at) / 1000) * this.perSecond);
    bucket.at = now;
    // Map keeps insertion order: re-inserting makes this tenant the most recently seen.
    this.#buckets.delete(tenant);
    this.#buckets.set(tenant, bucket);
    if (this.#buckets.size > this.#maxTenants) {
      const oldest = this.#buckets.keys().next().value;
      if (oldest !== undefined) this.#buckets.delete(oldest);
    }
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      return 0;
    }
    return Math.ceil((1 - bucket.tokens) / this.perSecond);
  }

  /** How many tenants have a bucket (bounded by maxTenants). */
  get size(): number {
    return this.#buckets.size;
  }
}
