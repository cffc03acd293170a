import type { SnapshotHolder } from '../config/snapshot-holder.js';
import type { AgentStatus } from '../report/agent-report.js';
import type { LeaseStatus } from '../report/lease-report.js';
import type { TokenStatus } from '../report/token-report.js';
import type { TrafficGate } from './traffic-gate.js';

export interface StatusSources {
  mode: 'agent' | 'sdk';
  appEnv: string;
  gate: TrafficGate;
  holder: SnapshotHolder;
  token: () => TokenStatus;
  /** Whether Vault Agent renewed its token in time (agent mode); null in SDK mode. */
  agent: () => AgentStatus | null;
  /** The rendered file's reload counts in agent mode; null in SDK mode. */
  file: () => unknown;
  /** The database credentials' lease (dynamic mode); null in kv mode. */
  lease: () => LeaseStatus | null;
}

/**
 * The operator's view of the service: gate, token, the database lease and which secret
 * versions are loaded. It names paths, versions and TTLs, never a token, a lease id or a
 * secret value.
 */
export function statusView(sources: StatusSources): () => unknown {
  return () => {
    const snapshot = sources.holder.current;
    const gate = sources.gate.current;
    return {
      mode: sources.mode,
      appEnv: sources.appEnv,
      gate: { ...gate, since: new Date(gate.since).toISOString() },
      token: sources.token(),
      agent: sources.agent(),
      lease: sources.lease(),
      secrets: {
        loadedAt: snapshot === undefined ? null : new Date(snapshot.loadedAt).toISOString(),
        paths: snapshot?.sources.map(({ path, version }) => ({ path, version })) ?? [],
        file: sources.file(),
      },
    };
  };
}
