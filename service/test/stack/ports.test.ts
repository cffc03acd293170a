import { expect } from 'chai';
import { readFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { freePort } from '../../../scripts/stack/ports.js';

describe('freePort', function () {
  it('hands out ports below the kernel\'s ephemeral range (where outgoing connections take theirs), never twice', async function () {
    const low = Number((await readFile('/proc/sys/net/ipv4/ip_local_port_range', 'utf8')).trim().split(/\s+/)[0]);
    const ports = [];
    for (let i = 0; i < 200; i += 1) ports.push(await freePort());
    expect(Math.max(...ports)).to.be.below(low);
    expect(new Set(ports).size).to.equal(ports.length);
  });

  it('never hands out a port something listens on', async function () {
    const servers: Server[] = [];
    try {
      const taken = new Set<number>();
      // Occupy about a sixth of the range: a pick that did not probe would hit one of them within 300 draws.
      for (let port = 10_000; port < 14_000; port += 1) {
        const server = createServer();
        const ok = await new Promise<boolean>((resolve) => {
          server.once('error', () => { resolve(false); });
          server.listen(port, '127.0.0.1', () => { resolve(true); });
        });
        if (ok) { servers.push(server); taken.add(port); }
      }
      for (let i = 0; i < 300; i += 1) expect(taken.has(await freePort())).to.be.false;
    } finally {
      await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
    }
  });
});
