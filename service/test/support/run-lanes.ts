/**
 * `npm test`: every test file, in two mocha processes at once. The compose files on the Docker
 * engine share one engine (each starts, breaks or stops it), so they run one after the other in
 * a lane of their own, printed with `[engine] ` in front; every other file runs in the other
 * lane. Most of the suite waits on timers (TTLs, check intervals) rather than on the two cores,
 * which is what the lanes use. The last lines sum both lanes' counts, as mocha prints them.
 */
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';

const engineFiles = 'service/test/compose/engine-*.test.ts';
const lanes = [
  { prefix: '', args: ['service/test/**/*.test.ts', '--ignore', engineFiles] },
  { prefix: '[engine] ', args: [engineFiles] },
];

interface LaneResult { code: number; counts: Record<'passing' | 'pending' | 'failing', number>; found: boolean }

function runLane(prefix: string, args: readonly string[]): Promise<LaneResult> {
  const child = spawn(process.execPath, ['node_modules/mocha/bin/mocha.js', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const counts = { passing: 0, pending: 0, failing: 0 };
  let found = false;
  const relay = (stream: NodeJS.ReadableStream, out: NodeJS.WriteStream) => {
    createInterface({ input: stream }).on('line', (line) => {
      const summary = /^\s*(\d+) (passing|pending|failing)\b/.exec(line);
      if (summary?.[1] !== undefined) {
        counts[summary[2] as keyof typeof counts] = Number(summary[1]);
        found = true;
      }
      out.write(`${prefix}${line}\n`);
    });
  };
  relay(child.stdout, process.stdout);
  relay(child.stderr, process.stderr);
  return new Promise((resolve) => {
    child.on('close', (code, signal) => { resolve({ code: code ?? (signal === null ? 1 : 128), counts, found }); });
  });
}

const started = Date.now();
const results = await Promise.all(lanes.map((lane) => runLane(lane.prefix, lane.args)));
const total = (key: keyof LaneResult['counts']) => results.reduce((sum, r) => sum + r.counts[key], 0);
const minutes = Math.round((Date.now() - started) / 60_000);
process.stdout.write(`\n  both lanes:\n  ${total('passing')} passing (${minutes}m)\n`);
if (total('pending') > 0) process.stdout.write(`  ${total('pending')} pending\n`);
if (total('failing') > 0) process.stdout.write(`  ${total('failing')} failing\n`);
const lost = results.filter((r) => !r.found).length;
if (lost > 0) process.stderr.write(`${lost} lane(s) ended before mocha printed its counts\n`);
process.exitCode = results.some((r) => r.code !== 0) || lost > 0 ? 1 : 0;
