import { LeaseKeeper } from '../vault/lease-keeper.js';
import type { LeaseReport } from '../health/lease-report.js';
import type { ModeContext, SecretsSource } from './agent-mode.js';

/**
 * Dynamic credentials: their lease watched (agent mode) or kept (SDK mode), looked at again
 * as soon as new credentials are loaded, and replaced after a new SDK login (a lease ends with
 * the token that created it).
 *
 * Unlike the token, the lease is not looked up every maximum check interval: its own TTL
 * times the checks (renewals in SDK mode), and a revocation is seen through PostgreSQL, whose
 * sessions and logins of a revoked user fail at once (start.ts looks the lease up then). That
 * halves what an instance asks of Vault at rest (BENCHMARKS.md, section 7).
 */
export function databaseLease(
  { api, holder, rules, logger, started }: ModeContext, source: SecretsSource, report: LeaseReport,
): LeaseKeeper {
  const keeper = new LeaseKeeper({
    api, current: () => holder.current?.lease ?? null, token: () => source.currentToken(), report, logger,
    rules: { ...rules, maxCheckIntervalMs: 0 },
    ...(source.replaceCredentials === undefined ? {} : { replace: source.replaceCredentials }),
  });
  started.add('lease checks', () => keeper.stop());
  const unsubscribeSwap = holder.onSwap((next, previous) => {
    if (next.lease?.id !== previous?.lease?.id) void keeper.checkNow();
  });
  const unsubscribeLogin = source.onNewLogin?.(() => {
    void keeper.replaceSoon('a new Vault token: the lease the old token created ends with it');
  });
  started.add('lease swap watch', () => { unsubscribeSwap(); unsubscribeLogin?.(); });
  return keeper;
}
