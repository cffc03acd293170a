import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';

/** Where a refused call's `Retry-After` (ms) travels: on the body node-vault keeps in its error. */
export const retryAfterKey = Symbol('retry-after-ms');

export interface TransportOptions {
  readonly timeoutMs: number;
  /** PEM of the CA Vault's certificate chains to, when it is not one the system trusts. */
  readonly ca?: string | undefined;
  /** Only from the service's own setting (VAULT_SKIP_VERIFY=true), never from node-vault's reading of the environment. */
  readonly skipVerify: boolean;
}

interface NodeVaultRequest {
  method: string;
  uri: string;
  headers?: Record<string, string>;
  json?: unknown;
}

interface NodeVaultResponse {
  statusCode: number;
  body: unknown;
  request: { path: string };
}

/** "120" (seconds) or an HTTP date; undefined when absent or unreadable. */
export function parseRetryAfter(value: string | undefined, now = Date.now()): number | undefined {
  if (value === undefined || value.trim() === '') return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value.trim()) * 1000;
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

/**
 * The HTTP client node-vault calls through (its `request-promise` option). node-vault's own
 * reads VAULT_SKIP_VERIFY from the environment, where any non-empty value, "false" included,
 * turns TLS verification off; and its errors drop the response headers, Retry-After among
 * them. This one takes TLS settings from the service's settings only and keeps Retry-After.
 */
export function vaultTransport(options: TransportOptions): { defaults(ignored: unknown): (req: NodeVaultRequest) => Promise<NodeVaultResponse> } {
  const send = (req: NodeVaultRequest): Promise<NodeVaultResponse> => new Promise((resolve, reject) => {
    const url = new URL(req.uri);
    const payload = req.json !== undefined && typeof req.json === 'object' ? JSON.stringify(req.json) : undefined;
    const headers: Record<string, string | number> = { Accept: 'application/json', ...req.headers };
    if (payload !== undefined) {
      headers['Content-Type'] ??= 'application/json';
      headers['Content-Length'] = Buffer.byteLength(payload);
    }
    const tls = url.protocol === 'https:'
      ? { rejectUnauthorized: !options.skipVerify, ...(options.ca === undefined ? {} : { ca: options.ca }) }
      : {};
    const call = (url.protocol === 'https:' ? httpsRequest : httpRequest)(url, { method: req.method, headers, ...tls }, (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('error', reject);
      response.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let body: unknown = text;
        try {
          body = text === '' ? undefined : JSON.parse(text);
        } catch {
          // A proxy's HTML error page: node-vault reports it by status.
        }
        const retryAfter = parseRetryAfter(response.headers['retry-after']);
        if (retryAfter !== undefined && typeof body === 'object' && body !== null) {
          Object.defineProperty(body, retryAfterKey, { value: retryAfter, enumerable: false });
        }
        resolve({ statusCode: response.statusCode ?? 0, body, request: { path: url.pathname } });
      });
    });
    call.setTimeout(options.timeoutMs, () => {
      call.destroy(Object.assign(new Error(`no answer within ${options.timeoutMs} ms`), { code: 'ETIMEDOUT' }));
    });
    call.on('error', reject);
    call.end(payload);
  });
  return { defaults: () => send };
}
