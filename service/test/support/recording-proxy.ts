import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { registerFromVaultJson } from './leak-scan.js';

export interface RecordingProxy {
  readonly url: string;
  /** Every token Vault issued through the proxy (login answers' auth.client_token), oldest first. */
  readonly clientTokens: readonly string[];
  close(): Promise<void>;
}

/**
 * An HTTP proxy in front of a bao dev server that passes every call through unchanged and
 * registers the secrets in each answer with the suite's secret scan. A service in SDK mode
 * reads its dynamic database password straight from Vault, where no test sees it: through
 * this proxy the scan learns that password (and the service's token) too.
 */
export async function startRecordingProxy(target: string): Promise<RecordingProxy> {
  const upstream = new URL(target);
  const clientTokens: string[] = [];
  const server: Server = createServer((incoming, outgoing) => {
    const forward = request({
      host: upstream.hostname, port: upstream.port, path: incoming.url, method: incoming.method, headers: incoming.headers,
    }, (answer) => {
      const chunks: Buffer[] = [];
      answer.on('data', (chunk: Buffer) => chunks.push(chunk));
      answer.on('end', () => {
        const body = Buffer.concat(chunks);
        const text = body.toString('utf8');
        registerFromVaultJson(`Vault answer to the service (${incoming.method ?? ''} ${incoming.url ?? ''})`, text, 'response');
        try {
          const token = (JSON.parse(text) as { auth?: { client_token?: unknown } | null }).auth?.client_token;
          if (typeof token === 'string') clientTokens.push(token);
        } catch {
          // Not JSON: nothing issued.
        }
        outgoing.writeHead(answer.statusCode ?? 502, answer.headers);
        outgoing.end(body);
      });
    });
    forward.on('error', () => { outgoing.destroy(); });
    incoming.pipe(forward);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    clientTokens,
    close: () => new Promise<void>((resolve) => { server.close(() => { resolve(); }); server.closeAllConnections(); }),
  };
}
