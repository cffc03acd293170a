import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type Koa from 'koa';
import { StartupError } from '../config/startup-error.js';

/** Listens, or throws naming the settings that chose the address. */
export async function listen(app: Koa, port: number, host: string | undefined, settings: string): Promise<{ server: Server; port: number }> {
  const server = host === undefined ? app.listen(port) : app.listen(port, host);
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('listening', resolve);
      server.once('error', reject);
    });
  } catch (error) {
    throw new StartupError(`cannot listen on ${host === undefined ? 'port ' : `${host}:`}${port} (${settings}): ${(error as Error).message}`);
  }
  return { server, port: (server.address() as AddressInfo).port };
}

/** Closes at once, open connections included (the operator's port has nothing to drain). */
export function closeNow(server: Server): Promise<void> {
  return new Promise<void>((resolve) => { server.close(() => { resolve(); }); server.closeAllConnections(); });
}
