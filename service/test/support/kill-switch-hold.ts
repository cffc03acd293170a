import { expect } from 'chai';

/**
 * An AppRole platform with its courier and agent running (the local stack, compose prod), as the
 * kill switch's test drives it: its app's /readyz, its agent's and courier's logs, the kill
 * switch as its operator runs it, its own way of restarting the agent, and its shipped durations.
 */
export interface LockedPlatform {
  readyz(): Promise<number>;
  agentLog(): Promise<string>;
  courierLog(): Promise<string>;
  /** scripts/prod/kill-switch.sh with `args`, as the platform's operator runs it: its stdout; throws when it fails. */
  killSwitch(args: string[]): Promise<string>;
  /** The agent stopped and started again by the platform's own restart (a supervisor, a restart policy). */
  restartAgent(): Promise<void>;
  /** The environment, naming the role <app>-app-<env>. */
  appEnv: string;
  /** The service's check interval, the role's token TTL, the agent's max_backoff, the courier's interval. */
  checkMs: number;
  tokenTtlMs: number;
  maxBackoffMs: number;
  deliveryMs: number;
}

const count = (text: string, what: string) => text.split(what).length - 1;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** How long killHoldReopen may take at most: a mocha timeout for its test. */
export function killHoldReopenBoundMs(platform: Pick<LockedPlatform, 'checkMs' | 'tokenTtlMs' | 'maxBackoffMs' | 'deliveryMs'>): number {
  return platform.tokenTtlMs + 4 * platform.deliveryMs + platform.checkMs + 2 * platform.maxBackoffMs + 120_000;
}

/**
 * The kill switch, end to end, on an AppRole platform; each step bounded by the mechanism:
 * 1. kill-switch.sh locks the role: /readyz 503 within the check interval + 1 s;
 * 2. the agent is restarted (one of the actors the lock holds off: it logs in at once, rather
 *    than at its token's next renewal, minutes away), and every /readyz answer stays a 503 while
 *    - it fails to log in (its first failure within a renewal period + max_backoff + 5 s: due
 *      2/3 of the granted TTL + 1/15 of the full TTL after the last one, vault/agent-renewal.ts),
 *    - two courier intervals pass,
 *    - a login with a secret id the courier delivered after the kill is refused by the lock
 *      ("unauthorized by CIDR restrictions on the role"): the courier replaces each file a failed
 *      login read, and the agent reads the new one at its next try;
 *    and then the agent has failed more logins, and the courier has delivered since the kill;
 * 3. --reopen restores the role: /readyz 200 within the check interval + the courier's interval
 *    + max_backoff + 1 s (HashiCorp Vault's agent retries a secret id that no longer logs in and
 *    needs the courier's next one).
 * A failure reopens the role for the tests after it. Returns each step's time.
 */
export async function killHoldReopen(platform: LockedPlatform): Promise<{ haltedMs: number; refusedAfterMs: number; readyMs: number }> {
  const role = `saas-app-${platform.appEnv}`;
  const killed = await platform.killSwitch([platform.appEnv]);
  const killedAt = Date.now();
  let reopened = false;
  try {
    expect(killed).to.contain(`locked auth/approle/role/${role} (secret_id_bound_cidrs 0.0.0.0/32`);
    const haltedMs = await timeUntil('a 503 after the kill', platform.checkMs + 6000, 100, async () => await platform.readyz() === 503) - killedAt;
    expect(haltedMs, 'halted within the check interval + 1 s').to.be.at.most(platform.checkMs + 1000);

    await platform.restartAgent();
    const answers: number[] = [];
    const delivered = count(await platform.courierLog(), 'delivered a wrapped secret id');
    const failedBefore = count(await platform.agentLog(), 'error authenticating');
    const refusedBefore = count(await platform.agentLog(), 'unauthorized by CIDR restrictions on the role');
    const holding = async (what: string, ms: number, done: () => Promise<boolean>) => timeUntil(what, ms, 500, async () => {
      if (await done()) return true;
      answers.push(await platform.readyz());
      return false;
    });
    const refusedAfterMs = await holding('the agent\'s first failed login', (platform.tokenTtlMs * 11) / 15 + platform.maxBackoffMs + 5000,
      async () => count(await platform.agentLog(), 'error authenticating') > failedBefore) - killedAt;
    const failedFirst = count(await platform.agentLog(), 'error authenticating');
    const holdUntil = Date.now() + 2 * platform.deliveryMs + 1000;
    await holding('two courier intervals', 2 * platform.deliveryMs + 2000, () => Promise.resolve(Date.now() >= holdUntil));
    await holding('a login with a delivered secret id refused by the lock', platform.deliveryMs + platform.maxBackoffMs + 5000,
      async () => count(await platform.agentLog(), 'unauthorized by CIDR restrictions on the role') > refusedBefore);
    expect(answers.filter((status) => status !== 503), 'every /readyz answer during the lock').to.deep.equal([]);
    expect(answers.length, 'answers during the lock').to.be.above(0);
    expect(count(await platform.agentLog(), 'error authenticating'), 'the agent kept trying').to.be.above(failedFirst);
    expect(count(await platform.courierLog(), 'delivered a wrapped secret id'), 'the courier delivered during the lock').to.be.above(delivered);

    const restored = await platform.killSwitch(['--reopen', platform.appEnv]);
    reopened = true;
    const reopenedAt = Date.now();
    expect(restored).to.contain(`restored secret_id_bound_cidrs of auth/approle/role/${role} to ''`);
    const readyBound = platform.checkMs + platform.deliveryMs + platform.maxBackoffMs + 1000;
    const readyMs = await timeUntil('a 200 after the reopen', readyBound + 30_000, 100, async () => await platform.readyz() === 200) - reopenedAt;
    expect(readyMs, 'ready within the check interval + the courier\'s interval + the agent\'s backoff + 1 s').to.be.at.most(readyBound);
    return { haltedMs, refusedAfterMs, readyMs };
  } finally {
    if (!reopened) await platform.killSwitch(['--reopen', platform.appEnv]).catch(() => '');
  }
}

/** When `done` first holds, asked every `everyMs`; throws naming `what` after `ms`. */
async function timeUntil(what: string, ms: number, everyMs: number, done: () => Promise<boolean>): Promise<number> {
  for (const deadline = Date.now() + ms; !(await done());) {
    if (Date.now() > deadline) throw new Error(`${what} within ${ms} ms`);
    await sleep(everyMs);
  }
  return Date.now();
}
