import { createServer } from 'node:net';
import { readFileSync } from 'node:fs';

// Ports handed out by this process: two callers asking before either binds get different ones.
const handedOut = new Set<number>();

/**
 * The first port of the kernel's ephemeral range. Ports below it are never taken by an
 * outgoing connection's local end nor by another `listen(0)`, which is how a port probed free
 * with `listen(0)` came to be in use a second later, once a client had connected from it
 * (the service's EADDRINUSE in a CI run).
 */
function ephemeralLow(): number {
  try {
    const low = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
    return Number.isInteger(low) && low > 12_000 ? low : 32_768;
  } catch {
    return 32_768;
  }
}

function canListen(port: number): Promise<boolean> {
  const server = createServer();
  return new Promise((resolve) => {
    server.once('error', () => { resolve(false); });
    // No host: the dual-stack wildcard, as the service binds, so a port taken on any address is refused.
    server.listen(port, () => { server.close(() => { resolve(true); }); });
  });
}

/** A TCP port free now, below the ephemeral range (the stack, the tests and the benchmarks). */
export async function freePort(): Promise<number> {
  const low = 10_000;
  const high = ephemeralLow();
  for (let attempt = 0; attempt < 200; attempt += 1) {
    const port = low + Math.floor(Math.random() * (high - low));
    if (handedOut.has(port)) continue;
    if (await canListen(port)) {
      handedOut.add(port);
      return port;
    }
  }
  throw new Error(`no free TCP port between ${String(low)} and ${String(high)} after 200 tries`);
}
