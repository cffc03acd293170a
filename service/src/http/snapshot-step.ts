import type { ConfigSnapshot } from '../config/snapshot.js';
import type { SnapshotHolder } from '../config/snapshot-holder.js';
import type { RequestStep } from './request-steps.js';

/** What every route past the snapshot step finds in ctx.state. */
export interface SnapshotState {
  config: ConfigSnapshot;
}

/**
 * The request's snapshot, taken once (a rotation mid-request cannot mix configs) and kept in
 * ctx.state.config for the routes; 503 `not_ready` while no secrets are loaded.
 */
export function snapshotStep(holder: SnapshotHolder): RequestStep {
  return {
    name: 'snapshot',
    enter: (ctx) => {
      const config = holder.current;
      if (config === undefined) {
        ctx.status = 503;
        ctx.body = { error: { code: 'not_ready', message: 'no secrets loaded yet' } };
        return true;
      }
      (ctx.state as SnapshotState).config = config;
      return false;
    },
  };
}
