import { expect } from 'chai';
import { createServer, request, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { TrustedProxies } from '../../src/http/trusted-proxies.js';

/** A real request to a real loopback server, as `overTls` sees it: peer 127.0.0.1, plain HTTP. */
async function overTls(proxies: TrustedProxies, headers: Record<string, string>): Promise<boolean> {
  let seen = false;
  const server = createServer((req: IncomingMessage, res) => {
    seen = proxies.overTls(req);
    res.end();
  });
  server.listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  try {
    await new Promise<void>((resolve, reject) => {
      request({ host: '127.0.0.1', port: (server.address() as AddressInfo).port, headers }, (res) => { res.resume(); res.on('end', resolve); })
        .on('error', reject).end();
    });
  } finally {
    await new Promise((resolve) => server.close(resolve));
  }
  return seen;
}

describe('TrustedProxies: whose X-Forwarded-Proto says a request came over TLS', function () {
  const https = { 'X-Forwarded-Proto': 'https' };

  it('believes a trusted peer\'s X-Forwarded-Proto: https, by address or by CIDR block', async function () {
    expect(await overTls(new TrustedProxies(['127.0.0.1']), https)).to.equal(true);
    expect(await overTls(new TrustedProxies(['10.0.0.0/8', '127.0.0.0/8']), https)).to.equal(true);
    expect(await overTls(new TrustedProxies(['127.0.0.1']), { 'X-Forwarded-Proto': 'HTTPS, http' }), 'the first value, any case').to.equal(true);
  });

  it('ignores the header from any other peer, and from everyone when none is trusted', async function () {
    expect(await overTls(new TrustedProxies(['10.0.0.0/8']), https)).to.equal(false);
    expect(await overTls(new TrustedProxies([]), https)).to.equal(false);
    expect(await overTls(new TrustedProxies(['::1']), https), 'another address family').to.equal(false);
  });

  it('takes plain HTTP as plain: no header, or http, from a trusted peer', async function () {
    expect(await overTls(new TrustedProxies(['127.0.0.1']), {})).to.equal(false);
    expect(await overTls(new TrustedProxies(['127.0.0.1']), { 'X-Forwarded-Proto': 'http' })).to.equal(false);
  });
});
