import { rm } from 'node:fs/promises';
import { connect, createServer, isIPv4, type Server, type Socket } from 'node:net';
import { ClusterError, nodeIp, type ClusterPaths } from './paths.js';

/*
 * The only ways between the host's network and the cluster's namespace, which share nothing
 * but the filesystem: unix sockets under .kubernetes/run/. The cluster's half runs inside the
 * namespace (the supervisor there); the host's half in whatever process on the host needs it.
 *
 *   dial.sock    a connection sends "<ip>:<port>\n", then its bytes reach that address
 *                inside: the host reaches the API server and pods this way
 *   expose.sock  a connection sends {"port": N, "socket": "<path>"} and a line; port N then
 *                listens on every address inside, each connection to it reaching <path>, a
 *                socket the caller serves on the host, until the caller's connection closes:
 *                pods reach the host's Vault and PostgreSQL this way, at the node's address
 */

function join2(a: Socket, b: Socket): void {
  a.pipe(b);
  b.pipe(a);
  const end = () => { a.destroy(); b.destroy(); };
  a.on('error', end).on('close', end);
  b.on('error', end).on('close', end);
}

/** Reads one line (at most 512 bytes) and hands over what followed it, unread. */
function firstLine(socket: Socket): Promise<{ line: string; rest: Buffer }> {
  return new Promise((resolvePromise, reject) => {
    let buffered = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk]);
      const at = buffered.indexOf('\n');
      if (at === -1 && buffered.length < 512) return;
      socket.off('data', onData);
      socket.pause();
      if (at === -1) reject(new Error('no line within 512 bytes'));
      else resolvePromise({ line: buffered.subarray(0, at).toString(), rest: buffered.subarray(at + 1) });
    };
    socket.on('data', onData);
    socket.once('error', reject);
  });
}

function listenOn(server: Server, where: string | { port: number; host: string }): Promise<void> {
  return new Promise((resolvePromise, reject) => {
    server.once('error', reject);
    server.listen(where, () => { server.off('error', reject); resolvePromise(); });
  });
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolvePromise) => { server.close(() => { resolvePromise(); }); });
}

/** Inside the namespace: serves dial.sock and expose.sock until the returned stop is called. */
export async function serveClusterHalf(paths: ClusterPaths): Promise<() => Promise<void>> {
  const dial = createServer((client) => {
    firstLine(client).then(({ line, rest }) => {
      const match = /^([0-9.]+):(\d+)$/.exec(line);
      if (match === null || !isIPv4(match[1] ?? '')) { client.destroy(); return; }
      const target = connect(Number(match[2]), match[1]);
      target.once('connect', () => {
        if (rest.length > 0) target.write(rest);
        join2(client, target);
        client.resume();
      });
      target.once('error', () => { client.destroy(); });
    }, () => { client.destroy(); });
  });
  const exposed = new Set<Server>();
  const expose = createServer((control) => {
    firstLine(control).then(async ({ line }) => {
      const request = JSON.parse(line) as { port: number; socket: string };
      const server = createServer((inbound) => {
        const outbound = connect(request.socket);
        outbound.once('connect', () => { join2(inbound, outbound); });
        outbound.once('error', () => { inbound.destroy(); });
      });
      await listenOn(server, { port: request.port, host: '0.0.0.0' });
      exposed.add(server);
      control.write('ok\n');
      control.resume();
      const close = () => { exposed.delete(server); void closeServer(server); };
      control.on('close', close).on('error', close);
    }).catch((error: unknown) => {
      control.end(`error: ${error instanceof Error ? error.message : String(error)}\n`);
    });
  });
  for (const socket of [paths.dialSocket, paths.exposeSocket]) await rm(socket, { force: true });
  await listenOn(dial, paths.dialSocket);
  await listenOn(expose, paths.exposeSocket);
  return async () => {
    await Promise.all([dial, expose, ...exposed].map(closeServer));
  };
}

export interface Forward {
  /** The host's loopback port that leads inside. */
  readonly port: number;
  close(): Promise<void>;
}

/** On the host: a loopback port whose connections reach target (ip:port) inside the cluster. */
export async function forwardFromHost(paths: ClusterPaths, target: string, port = 0): Promise<Forward> {
  const open = new Set<Socket>();
  const server = createServer((client) => {
    client.pause();
    const inside = connect(paths.dialSocket);
    open.add(client);
    client.on('close', () => open.delete(client));
    inside.once('connect', () => {
      inside.write(`${target}\n`);
      join2(client, inside);
      client.resume();
    });
    inside.once('error', () => { client.destroy(); });
  });
  await listenOn(server, { port, host: '127.0.0.1' });
  const address = server.address();
  if (address === null || typeof address === 'string') throw new ClusterError('the forward has no port');
  return {
    port: address.port,
    close: async () => {
      for (const socket of open) socket.destroy();
      await closeServer(server);
    },
  };
}

export interface Exposure {
  /** Where pods reach it: the node's address and the port asked for. */
  readonly address: string;
  close(): Promise<void>;
}

/** On the host: port clusterPort at the node's address inside leads to host:port on the host. */
export async function exposeToCluster(paths: ClusterPaths, clusterPort: number, target: { host: string; port: number }): Promise<Exposure> {
  const socketPath = `${paths.run}/expose-${clusterPort}-${process.pid}.sock`;
  await rm(socketPath, { force: true });
  const open = new Set<Socket>();
  const relay = createServer((inbound) => {
    open.add(inbound);
    inbound.on('close', () => open.delete(inbound));
    const outbound = connect(target.port, target.host);
    outbound.once('connect', () => { join2(inbound, outbound); });
    outbound.once('error', () => { inbound.destroy(); });
  });
  await listenOn(relay, socketPath);
  const control = connect(paths.exposeSocket);
  try {
    await new Promise<void>((resolvePromise, reject) => {
      control.once('error', reject);
      control.once('connect', () => { control.write(`${JSON.stringify({ port: clusterPort, socket: socketPath })}\n`); });
      firstLine(control).then(({ line }) => {
        if (line === 'ok') resolvePromise();
        else reject(new ClusterError(`cannot expose port ${clusterPort} inside the cluster: ${line}`));
      }, reject);
    });
  } catch (error) {
    control.destroy();
    await closeServer(relay);
    await rm(socketPath, { force: true });
    throw error;
  }
  return {
    address: `${nodeIp}:${clusterPort}`,
    close: async () => {
      control.destroy();
      // Pods keep their connections (PostgreSQL's pool): they end here, not when the pods do.
      for (const socket of open) socket.destroy();
      await closeServer(relay);
      await rm(socketPath, { force: true });
    },
  };
}
