import { createServer } from 'node:net';

/** A loopback port free at the time of asking (the stack, the tests and the benchmarks); callers retry if it is taken meanwhile. */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => { resolve(); }));
  if (address === null || typeof address === 'string') throw new Error('no TCP address from the probe socket');
  return address.port;
}
