/**
 * 1d. Where the service's request overhead goes: GET /readyz on plain Koa and on the steps every
 * request passes, built up one step at a time (chain-1 is the request id alone, chain-2 adds
 * the errors, and so on, in createApp's order; serviceChain in service/src/http/app.ts), the
 * last variant adding the router.
 * Each step's cost is the throughput ratio of the chain with it to the chain without it, side
 * by side in one run.
 *
 *   node --import tsx bench/overhead-chain.ts [--rounds=6] [--seconds=4] [--connections=10]
 */
import { serviceChain } from '../service/src/http/app.js';
import { createLogger, logOutput } from '../service/src/log/logger.js';
import { freePort } from '../service/test/support/ports.js';
import { tempDir } from '../service/test/support/temp-dirs.js';
import { flag, fmt, machine, machineLine, mdTable, runBenchmark, writeResult } from './lib/common.js';
import { openDependencies } from './lib/open-dependencies.js';
import { loadVariants } from './lib/variants.js';

runBenchmark(async () => {
  const rounds = flag('rounds', 6);
  const seconds = flag('seconds', 4);
  const connections = flag('connections', 10);
  const m = await machine();
  // The steps' names, read from the chain itself, then its router, which answers /readyz.
  const chain = serviceChain(openDependencies(createLogger('silent', logOutput('/dev/null').stream)));
  const steps = [...chain.steps.map((step) => step.name), 'routes'];
  const variants = ['plain', ...steps.map((_, i) => `chain-${i + 1}`), 'service'];
  const run = await loadVariants(variants, { rounds, seconds, connections, dir: await tempDir('overhead-chain'), env: {}, adminPort: await freePort() });
  const rps = (v: string) => run.stat(v).rps;
  const range = (values: number[]) => `${fmt(Math.min(...values), 3)}–${fmt(Math.max(...values), 3)}`;
  const rows = variants.map((v, i) => {
    const previous = variants[i - 1];
    const step = v === 'plain' ? '— (plain Koa, one router)' : v === 'service' ? '— (createApp, for reference)' : `+ ${steps[i - 1] ?? ''}`;
    const stepRatio = previous === undefined || v === 'service' ? '—' : fmt(rps(v) / rps(previous), 3);
    const stepRange = previous === undefined || v === 'service' ? '—' : range(run.roundRatios(v, previous, 'rps'));
    return [v, step, fmt(rps(v), 0), fmt(run.stat(v).p99, 3), fmt(rps(v) / rps('plain'), 3), stepRatio, stepRange];
  });
  const md = [
    '### 1d. Where the service\'s request overhead goes',
    '',
    `Machine: ${machineLine(m)}`,
    '',
    `Command: \`node --import tsx bench/overhead-chain.ts --rounds=${rounds} --seconds=${seconds} --connections=${connections}\``,
    '',
    mdTable(['variant', 'step', 'req/s (median)', 'p99 ms', '/ plain', '/ previous (the step\'s cost)', 'per-round range'], rows),
  ].join('\n');
  await writeResult('overhead-chain', md, { machine: m, rounds, seconds, connections, results: Object.fromEntries(run.results) });
  await run.stop();
});
