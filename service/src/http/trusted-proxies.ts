import { BlockList, isIP } from 'node:net';
import type { IncomingMessage } from 'node:http';
import { TLSSocket } from 'node:tls';

/**
 * The proxies the operator trusts to say a request came over TLS (TRUSTED_PROXIES: addresses
 * or CIDR blocks). A request is over TLS when its own connection is, or when it comes straight
 * from one of these and their X-Forwarded-Proto says https. Anyone else's X-Forwarded-Proto is
 * ignored: a client cannot make its plain-HTTP cookie look Secure, nor the other way round.
 * Koa's app.proxy would trust the header from every peer.
 */
export class TrustedProxies {
  readonly #list = new BlockList();
  readonly #empty: boolean;

  /** `entries`: addresses or CIDR blocks, as settings.ts's parseTrustedProxies accepts them. */
  constructor(entries: readonly string[] = []) {
    for (const entry of entries) {
      const [address = '', prefix] = entry.split('/');
      const type = isIP(address) === 6 ? 'ipv6' : 'ipv4';
      if (prefix === undefined) this.#list.addAddress(address, type);
      else this.#list.addSubnet(address, Number(prefix), type);
    }
    this.#empty = entries.length === 0;
  }

  /** The request came over TLS, to this process or to a trusted proxy in front of it. */
  overTls(req: IncomingMessage): boolean {
    if (req.socket instanceof TLSSocket) return true;
    if (this.#empty) return false;
    const peer = (req.socket.remoteAddress ?? '').replace(/^::ffff:(?=\d+\.\d+\.\d+\.\d+$)/, '');
    const type = isIP(peer) === 6 ? 'ipv6' : isIP(peer) === 4 ? 'ipv4' : undefined;
    if (type === undefined || !this.#list.check(peer, type)) return false;
    const proto = req.headers['x-forwarded-proto'];
    const first = (Array.isArray(proto) ? proto[0] : proto)?.split(',')[0]?.trim().toLowerCase();
    return first === 'https';
  }
}
