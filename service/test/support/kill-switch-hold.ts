import { expect } from 'chai';

/** What a platform gives the hold: its app's /readyz, its agent's and courier's logs, its shipped durations. */
export interface LockedPlatform {
  readyz(): Promise<number>;
  agentLog(): Promise<string>;
  courierLog(): Promise<string>;
  /** The role's token TTL, the agent's max_backoff and the courier's delivery interval. */
  tokenTtlMs: number;
  maxBackoffMs: number;
  deliveryMs: number;
}

const count = (text: string, what: string) => text.split(what).length - 1;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * After the kill switch, on an AppRole platform with its courier and agent running: every
 * /readyz answer a 503 while
 * 1. the agent finds its token gone, at its next renewal at the latest (due 2/3 of the granted
 *    TTL + 1/15 of the full TTL after the last one, as vault/agent-renewal.ts reckons it), and
 *    fails to log in: with the secret id that was waiting, which the kill switch destroyed if it
 *    was minted before, or with a fresh one;
 * 2. two courier intervals pass;
 * 3. a login with a secret id the courier delivered after the kill is refused by the lock
 *    ("unauthorized by CIDR restrictions on the role"): the courier replaces the file each
 *    failed login read, and the agent reads the new one at its next try.
 * Then the agent has failed more logins than in step 1, and the courier has delivered since the
 * kill. Returns when the lock refused the agent's first login, in ms after `killedAt`.
 */
export async function holdThroughLock(platform: LockedPlatform, killedAt: number): Promise<{ refusedAfterMs: number }> {
  const answers: number[] = [];
  const delivered = count(await platform.courierLog(), 'delivered a wrapped secret id');
  const failedBefore = count(await platform.agentLog(), 'error authenticating');
  const refusedBefore = count(await platform.agentLog(), 'unauthorized by CIDR restrictions on the role');
  const waitFor = async (what: string, ms: number, done: () => Promise<boolean>) => {
    for (const deadline = Date.now() + ms; !(await done());) {
      if (Date.now() > deadline) throw new Error(`${what} within ${ms} ms`);
      answers.push(await platform.readyz());
      await sleep(500);
    }
  };
  await waitFor('the agent\'s first failed login', (platform.tokenTtlMs * 11) / 15 + platform.maxBackoffMs + 5000,
    async () => count(await platform.agentLog(), 'error authenticating') > failedBefore);
  const failedFirst = count(await platform.agentLog(), 'error authenticating');
  const refusedAfterMs = Date.now() - killedAt;
  const holdUntil = Date.now() + 2 * platform.deliveryMs + 1000;
  await waitFor('two courier intervals', 2 * platform.deliveryMs + 2000, () => Promise.resolve(Date.now() >= holdUntil));
  await waitFor('a login with a delivered secret id refused by the lock', platform.deliveryMs + platform.maxBackoffMs + 5000,
    async () => count(await platform.agentLog(), 'unauthorized by CIDR restrictions on the role') > refusedBefore);
  expect(answers.filter((status) => status !== 503), 'every /readyz answer during the lock').to.deep.equal([]);
  expect(answers.length, 'answers during the lock').to.be.above(0);
  expect(count(await platform.agentLog(), 'error authenticating'), 'the agent kept trying').to.be.above(failedFirst);
  expect(count(await platform.courierLog(), 'delivered a wrapped secret id'), 'the courier delivered during the lock').to.be.above(delivered);
  return { refusedAfterMs };
}
