import { join } from 'node:path';
import { waitForHttp } from '../../service/test/support/bao.js';
import { freePort } from '../../service/test/support/ports.js';
import { spawnManaged, type ManagedProcess } from '../../service/test/support/processes.js';
import type { Request as LoadRequest } from 'autocannon';
import { benchDir, fmt, load, median, type LoadRound } from './common.js';

export interface VariantRun<V extends string> {
  readonly results: ReadonlyMap<V, readonly LoadRound[]>;
  /** Medians over the rounds. */
  stat(v: V): { rps: number; p50: number; p99: number; errors: number };
  /** Per-round ratios of a to b, to show how much the noise alone moves a ratio. */
  roundRatios(a: V, b: V, key: 'rps' | 'p99'): number[];
  stop(): Promise<void>;
}

/**
 * Starts one bench/overhead-server.ts process per variant, warms each up, then loads them in
 * rounds that alternate the order (A B C, then C B A, ...) so that the noise of a shared
 * machine falls on all of them alike. `during(variant)` runs beside a variant's load (and
 * returns what stops it); `target(variant)` is what the load asks for (default GET /readyz,
 * which each server answers 200 once it is up).
 */
export async function loadVariants<V extends string>(variants: readonly V[], options: {
  rounds: number; seconds: number; connections: number; dir: string; env: NodeJS.ProcessEnv; adminPort: number;
  /** The CPU every server runs on (taskset), apart from the load generator's; any CPU when undefined. */
  serverCpu?: number;
  during?: (variant: V) => (() => void) | undefined;
  target?: (variant: V) => { path: string; requests?: LoadRequest[] };
}): Promise<VariantRun<V>> {
  const { rounds, seconds, connections, dir, env, adminPort } = options;
  const servers = new Map<V, { url: string; requests?: LoadRequest[]; proc: ManagedProcess }>();
  for (const variant of variants) {
    const port = await freePort();
    const command = [process.execPath, '--import', 'tsx', join(benchDir, 'overhead-server.ts'), variant, String(port), String(adminPort)];
    const pinned = options.serverCpu === undefined ? command : ['taskset', '-c', String(options.serverCpu), ...command];
    const proc = spawnManaged(pinned[0] ?? '', pinned.slice(1), {
      env: { PATH: process.env.PATH, NODE_ENV: 'production', ...env }, logFile: join(dir, `${variant}.log`),
    });
    await waitForHttp(`http://127.0.0.1:${port}/readyz`, 200, proc);
    const { path, requests } = options.target?.(variant) ?? { path: '/readyz' };
    servers.set(variant, { url: `http://127.0.0.1:${port}${path}`, ...(requests === undefined ? {} : { requests }), proc });
  }
  const loadOf = (variant: V, duration: number) => {
    const server = servers.get(variant);
    return load(server?.url ?? '', duration, connections, undefined, server?.requests);
  };
  // Warm-up: JIT and connection set-up, not counted.
  for (const variant of variants) await loadOf(variant, 2);

  const results = new Map<V, LoadRound[]>(variants.map((v) => [v, []]));
  for (let round = 0; round < rounds; round++) {
    const order = round % 2 === 0 ? variants : [...variants].reverse();
    for (const variant of order) {
      const stopDuring = options.during?.(variant);
      const r = await loadOf(variant, seconds);
      stopDuring?.();
      results.get(variant)?.push(r);
      process.stderr.write(`round ${round + 1} ${variant}: ${fmt(r.rps, 0)} req/s, p99 ${fmt(r.p99, 3)} ms\n`);
    }
  }
  return {
    results,
    stat(v) {
      const rs = results.get(v) ?? [];
      return {
        rps: median(rs.map((r) => r.rps)), p50: median(rs.map((r) => r.p50)), p99: median(rs.map((r) => r.p99)),
        errors: rs.reduce((a, r) => a + r.errors + r.non2xx, 0),
      };
    },
    roundRatios(a, b, key) {
      const ra = results.get(a) ?? [];
      const rb = results.get(b) ?? [];
      return ra.map((r, i) => r[key] / (rb[i]?.[key] ?? NaN));
    },
    async stop() {
      for (const { proc } of servers.values()) await proc.stop();
    },
  };
}
