import { Resolver } from 'node:dns/promises';
import { request } from 'node:http';

/*
 * The steady client of service-client.ts, run by it inside the first node's network namespace
 * (nsenter --net): there, as from a pod, a Service's name resolves through the kube-dns Service
 * and a connection to its address goes where kube-proxy's rules send it. Every 50 ms one
 * request on a connection of its own (kube-proxy picks an endpoint per connection), the name
 * resolved again for each, as a pod's libc does; one JSON line on stdout per request. Ends
 * after the request under way once stdin closes.
 *
 *   argv: the name, the port, the path, the DNS server, "retry" to retry a connection that
 *         never opened; env SERVICE_CLIENT_HEADERS: the requests' headers (JSON)
 */
const [name = '', port = '', path = '', dnsServer = '', retry = ''] = process.argv.slice(2);
const headers = JSON.parse(process.env.SERVICE_CLIENT_HEADERS ?? '{}') as Record<string, string>;
const resolver = new Resolver({ timeout: 2000, tries: 2 });
resolver.setServers([dnsServer]);
/** A connection within the namespace opens in a millisecond or two; one that has not in 1 s leads nowhere. */
const connectMs = 1000;
const requestMs = 5000;

interface Attempt { status: number; opened: boolean; error?: string }

function attempt(address: string): Promise<Attempt> {
  return new Promise((resolvePromise) => {
    let opened = false;
    const req = request({ host: address, port: Number(port), path, headers, agent: false });
    const connectTimer = setTimeout(() => { req.destroy(new Error(`no connection within ${connectMs} ms`)); }, connectMs);
    const requestTimer = setTimeout(() => { req.destroy(new Error(`no answer within ${requestMs} ms`)); }, requestMs);
    const done = (outcome: Attempt) => { clearTimeout(connectTimer); clearTimeout(requestTimer); resolvePromise(outcome); };
    req.on('socket', (socket) => { socket.once('connect', () => { opened = true; clearTimeout(connectTimer); }); });
    req.on('response', (res) => {
      res.resume();
      res.on('end', () => { done({ status: res.statusCode ?? 0, opened }); });
      res.on('error', (error) => { done({ status: 0, opened, error: error.message }); });
    });
    req.on('error', (error) => { done({ status: 0, opened, error: error.message }); });
    req.end();
  });
}

const client = { running: true };
process.stdin.on('end', () => { client.running = false; }).resume();
while (client.running) {
  const at = Date.now();
  let outcome: Attempt;
  let unopened = 0;
  try {
    const [address = ''] = await resolver.resolve4(name);
    outcome = await attempt(address);
    // Nothing was sent on a connection that never opened: a client may try again, as a proxy
    // does (only where the caller asks for it: elsewhere it counts as the error it is).
    while (retry === 'retry' && !outcome.opened && unopened < 20) {
      unopened += 1;
      outcome = await attempt(address);
    }
  } catch (error) {
    outcome = { status: 0, opened: false, error: `resolving ${name}: ${error instanceof Error ? error.message : String(error)}` };
  }
  process.stdout.write(`${JSON.stringify({ at, ms: Date.now() - at, unopened, ...outcome })}\n`);
  await new Promise((resolvePromise) => setTimeout(resolvePromise, 50));
}
