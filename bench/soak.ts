/**
 * The soak: production's topology (docker-compose.prod.yml as processes: non-dev bao with Raft
 * and TLS, first bootstrap with root revoked, the database engine, the agent and the
 * secret-id courier each restarted when they exit, the service in agent mode with dynamic
 * credentials) with every shipped duration divided by one factor, read from the shipped files
 * (service/test/support/shipped-durations.ts), under steady load. See RELIABILITY.md.
 *
 *   node --import tsx bench/soak.ts [--factor=60] [--max-ttls=4] [--rate=20]
 *
 * Its last line: soak: <N> max TTLs at 1/<K> time, <R> requests, <U> unexpected non-2xx, <H> s halted.
 * Exits 1 when an answer outside an outage's recovery bound was not 2xx.
 */
import { flag, runBenchmark } from './lib/common.js';
import { runSoak } from '../service/test/support/soak.js';

runBenchmark(async () => {
  const result = await runSoak({
    factor: flag('factor', 60), maxTtls: flag('max-ttls', 4), rate: flag('rate', 20),
    say: (line) => { process.stdout.write(`${line}\n`); },
  });
  for (const o of result.outages) {
    process.stdout.write(`soak: ${o.what}: Vault away ${o.to - o.from} ms, ready again ${o.reopenedAfterMs} ms after (bound ${result.recoveryBoundMs} ms)\n`);
  }
  process.stdout.write(`soak: agent started ${result.agentStarts} times, ${result.logins} logins, ${result.deliveries} secret ids delivered ` +
    `(courier started ${result.courierStarts} times), ${result.leases} database leases, ${result.kvVersions} KV versions seen\n`);
  for (const line of result.unexpected.slice(0, 20)) process.stdout.write(`soak: unexpected: ${line}\n`);
  process.stdout.write(`${result.line}\n`);
  if (result.unexpected.length > 0) process.exitCode = 1;
});
