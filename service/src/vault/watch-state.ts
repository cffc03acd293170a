/**
 * The lifetime watcher's decision, as a state machine: what a wake does in each state, and
 * for each state and event, the next state, what is done, and when the watcher wakes next.
 * Pure: no clock, no I/O. The watcher (lifetime-watcher.ts) carries the effects out.
 */

/**
 * - `valid`: Vault vouched for it; the next wake checks (or renews) it.
 * - `unanswered`: Vault said nothing (unreachable, sealed, rate-limited): trusted until its known expiry, retried.
 * - `outdated`: it works until its known expiry, but only a replacement helps (max TTL, not renewable, asked for).
 * - `replacing`: Vault refused it; reported, and a replacement is tried at every wake.
 * - `refused`: Vault refused it and another process replaces it (the agent): checked again.
 * - `waiting`: nothing to check yet (no token in the sink).
 * - `idle`: nothing held (static database credentials).
 */
export type StateName = 'valid' | 'unanswered' | 'outdated' | 'replacing' | 'refused' | 'waiting' | 'idle';

export interface WatchState {
  readonly name: StateName;
  /** Wakes in a row that ended in a retry: the backoff's attempt number. */
  readonly retries: number;
  /** Calls in a row that Vault left unanswered, for the one line that closes an outage. */
  readonly unanswered: number;
  /** Why a replacement is wanted (outdated, replacing). */
  readonly why?: string;
  /** Why the last replacement failed: reported when the known expiry passes. */
  readonly replaceProblem?: string;
}

/**
 * What a wake learned, or what happened between wakes:
 * - `vouched`: Vault vouched for it with a TTL; `askNow`: newly seen, so asked about at once;
 * - `outdated`: it still works but only a replacement helps;
 * - `refused`: Vault said it is no good; `waiting`: nothing to ask about; `idle`: nothing held;
 * - `unanswered`: a call learned nothing;
 * - `replaced`: a replacement was got; `replaceRefused`: getting one failed with an answer;
 * - `replaceSoon`: the caller wants a replacement (what it depended on changed);
 * - `expired`: its known expiry passed unverified.
 */
export type WatchEvent =
  | { readonly kind: 'vouched'; readonly askNow?: boolean }
  | { readonly kind: 'outdated'; readonly why: string }
  | { readonly kind: 'refused'; readonly reason: string }
  | { readonly kind: 'waiting' }
  | { readonly kind: 'idle' }
  | { readonly kind: 'unanswered' }
  | { readonly kind: 'replaced' }
  | { readonly kind: 'replaceRefused'; readonly problem: string }
  | { readonly kind: 'replaceSoon'; readonly why: string }
  | { readonly kind: 'expired' };

/**
 * What the watcher does on a transition, in this order:
 * - `adopt`: take the TTL Vault vouched for (known expiry, renewal time) and report valid; an
 *   outdated finding carries one when a renewal capped by the max TTL still answered;
 * - `forget`: drop the known expiry (refused, or nothing held);
 * - `reportFinding`: report invalid with the finding's code (refused; waiting with a code);
 * - `reportReplaceFailed`: report invalid: it was refused and no replacement could be got;
 * - `reportExpired`: report invalid: the known expiry passed;
 * - `warnExpiryNear`: log that traffic halts at the known expiry unless a replacement comes;
 * - `warnUnanswered`: log that Vault said nothing and when the next try comes;
 * - `noteAnswered`: log that Vault answers again, after calls it left unanswered.
 */
export type Effect =
  | 'adopt' | 'forget' | 'reportFinding' | 'reportReplaceFailed' | 'reportExpired'
  | 'warnExpiryNear' | 'warnUnanswered' | 'noteAnswered';

/**
 * When the watcher wakes next: `now` (another wake at once, in the same run), `scheduled` (at
 * the renewal or check time), `retry` (after the backoff), `idle` (in a minute), or `keep`
 * (the wake already set stands: an event between wakes).
 */
export type Wake = 'now' | 'scheduled' | 'retry' | 'idle' | 'keep';

export interface Transition {
  readonly state: WatchState;
  readonly effects: readonly Effect[];
  readonly wake: Wake;
}

/** What a wake does in each state: ask about it, or get a replacement. */
export function wakeAction(state: StateName): 'step' | 'replace' {
  return state === 'outdated' || state === 'replacing' ? 'replace' : 'step';
}

export const initialState: WatchState = { name: 'waiting', retries: 0, unanswered: 0 };

/** Another process replaces it (the agent), or the watcher can. */
export interface Abilities {
  readonly canReplace: boolean;
}

/**
 * The table. Each row: in `from` (any state when `*`), on `event`, go `to` (`=` stays), do
 * `effects`, wake. A row with `replace: false` or `true` applies only to a watcher that can
 * (or cannot) replace. The first row that matches is taken.
 */
export interface Row {
  readonly from: StateName | '*';
  readonly event: WatchEvent['kind'];
  readonly replace?: boolean;
  readonly askNow?: boolean;
  readonly to: StateName | '=';
  readonly effects: readonly Effect[];
  readonly wake: Wake;
}

export const table: readonly Row[] = [
  // from         event             guard              to            effects                                    wake
  // A replacement asked for while a check was under way: the check's answer does not cancel it.
  { from: 'outdated', event: 'vouched', to: 'outdated', effects: ['adopt'], wake: 'now' },
  { from: '*', event: 'vouched', askNow: true, to: 'valid', effects: ['adopt'], wake: 'now' },
  { from: '*', event: 'vouched', to: 'valid', effects: ['adopt'], wake: 'scheduled' },
  { from: '*', event: 'outdated', replace: true, to: 'outdated', effects: ['adopt'], wake: 'now' },
  { from: '*', event: 'outdated', replace: false, to: '=', effects: ['adopt'], wake: 'scheduled' },
  { from: '*', event: 'refused', replace: true, to: 'replacing', effects: ['forget', 'reportFinding'], wake: 'now' },
  { from: '*', event: 'refused', replace: false, to: 'refused', effects: ['forget', 'reportFinding'], wake: 'retry' },
  { from: '*', event: 'waiting', to: 'waiting', effects: ['reportFinding'], wake: 'retry' },
  { from: '*', event: 'idle', to: 'idle', effects: ['forget'], wake: 'idle' },
  { from: 'valid', event: 'unanswered', to: 'unanswered', effects: ['warnUnanswered'], wake: 'retry' },
  { from: '*', event: 'unanswered', to: '=', effects: ['warnUnanswered'], wake: 'retry' },
  { from: '*', event: 'replaced', to: 'valid', effects: ['adopt'], wake: 'scheduled' },
  { from: 'outdated', event: 'replaceRefused', to: 'outdated', effects: ['warnExpiryNear'], wake: 'retry' },
  { from: 'replacing', event: 'replaceRefused', to: 'replacing', effects: ['reportReplaceFailed'], wake: 'retry' },
  { from: 'replacing', event: 'replaceSoon', to: '=', effects: [], wake: 'keep' },
  { from: '*', event: 'replaceSoon', replace: true, to: 'outdated', effects: [], wake: 'now' },
  { from: '*', event: 'replaceSoon', replace: false, to: '=', effects: [], wake: 'keep' },
  { from: '*', event: 'expired', to: '=', effects: ['reportExpired'], wake: 'keep' },
];

/** The index in `table` of the row taken in `state` on `event`. */
export function rowIndex(state: StateName, event: WatchEvent, abilities: Abilities): number {
  const index = table.findIndex((r) => (r.from === '*' || r.from === state) && r.event === event.kind
    && (r.replace === undefined || r.replace === abilities.canReplace)
    && (r.askNow === undefined || (event.kind === 'vouched' && (event.askNow ?? false) === r.askNow)));
  if (index < 0) throw new Error(`the watcher has no transition from ${state} on ${event.kind}`);
  return index;
}

/** The one transition function: the table's first matching row, applied to the counters. */
export function transition(state: WatchState, event: WatchEvent, abilities: Abilities): Transition {
  const row = table[rowIndex(state.name, event, abilities)] as Row;
  const name = row.to === '=' ? state.name : row.to;
  // Vault answered (whatever it said): after calls it left unanswered, one line says so.
  const answered = event.kind !== 'unanswered' && event.kind !== 'replaceSoon' && event.kind !== 'expired';
  const effects: Effect[] = answered && state.unanswered > 0 ? ['noteAnswered', ...row.effects] : [...row.effects];
  return { state: nextState(state, event, name, row.wake, answered), effects, wake: row.wake };
}

function nextState(state: WatchState, event: WatchEvent, name: StateName, wake: Wake, answered: boolean): WatchState {
  const unanswered = event.kind === 'unanswered' ? state.unanswered + 1 : answered ? 0 : state.unanswered;
  const adopted = event.kind === 'vouched' || event.kind === 'replaced';
  const retries = adopted ? 0 : wake === 'retry' ? state.retries + 1 : state.retries;
  const why = event.kind === 'outdated' ? event.why : event.kind === 'replaceSoon' ? event.why
    : event.kind === 'refused' ? event.reason : name === 'outdated' || name === 'replacing' ? state.why : undefined;
  const replaceProblem = event.kind === 'replaceRefused' ? event.problem : event.kind === 'replaced' ? undefined : state.replaceProblem;
  return {
    name, retries, unanswered,
    ...(why === undefined ? {} : { why }),
    ...(replaceProblem === undefined ? {} : { replaceProblem }),
  };
}
