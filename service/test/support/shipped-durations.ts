import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { settingsSchema } from '../../src/config/settings.js';
import { repoRoot } from './repo-root.js';

/**
 * Every duration production runs on, read from the files the project ships (never restated
 * here), in milliseconds. A test or benchmark that shortens time divides all of them by one
 * factor (`scaleDurations`), so the ratios it proves are the ones users get.
 */
export interface ProductionDurations {
  /** scripts/bootstrap.sh: the AppRole token's TTL and max TTL, the secret id's TTL. */
  readonly tokenTtl: number;
  readonly tokenMaxTtl: number;
  readonly secretIdTtl: number;
  /** scripts/prod/first-bootstrap.sh: the first wrapped secret id's wrap TTL, the orchestrator token's period. */
  readonly firstWrapTtl: number;
  readonly orchestratorPeriod: number;
  /** scripts/prod/deliver-secret-ids.sh. */
  readonly deliveryInterval: number;
  readonly secretIdMaxAge: number;
  readonly wrapTtl: number;
  readonly orchestratorRenewInterval: number;
  /** agent-config/env/prod.hcl's auto_auth: the agent's login (and template retry) backoff. */
  readonly minBackoff: number;
  readonly maxBackoff: number;
  /** agent-config/env/prod.hcl. */
  readonly renderInterval: number;
  /** scripts/database-engine.sh: the dynamic database users' lease. */
  readonly leaseTtl: number;
  readonly leaseMaxTtl: number;
  /** The service's TOKEN_CHECK_MAX_INTERVAL_MS default: the kill switch's bound. */
  readonly checkInterval: number;
}

/** Counts, not durations: they stay as shipped whatever the factor. */
export interface ProductionCounts {
  /** first-bootstrap.sh's secret_id_num_uses. */
  readonly secretIdNumUses: number;
  /** env/prod.hcl's vault.retry.num_retries. */
  readonly numRetries: number;
}

const units: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** A Vault-style duration (`90s`, `5m`, `250ms`) in milliseconds. */
export function durationMs(text: string): number {
  const match = /^(\d+)(ms|s|m|h|d)$/.exec(text.trim());
  if (match === null) throw new Error(`not a duration: '${text}'`);
  return Number(match[1]) * (units[match[2] as string] as number);
}

async function shipped(file: string): Promise<string> {
  return readFile(join(repoRoot, file), 'utf8');
}

/** `${NAME:-default}` in a shell script: the default it ships. */
function shellDefault(text: string, file: string, name: string): string {
  const match = new RegExp(`\\$\\{${name}:-([^}]+)\\}`).exec(text);
  if (match === null) throw new Error(`${file} has no default for ${name}`);
  return match[1] as string;
}

/** `name = "value"` or `name = value` in an HCL file. */
function hclValue(text: string, file: string, name: string): string {
  const match = new RegExp(`^\\s*${name}\\s*=\\s*"?([^"\\s]+)"?`, 'm').exec(text);
  if (match === null) throw new Error(`${file} sets no ${name}`);
  return match[1] as string;
}

/** A duration an agent configuration ships (`name = "30s"` in `file`, under agent-config/), in milliseconds. */
export async function shippedAgentDurationMs(file: string, name: string): Promise<number> {
  return durationMs(hclValue(await shipped(join('agent-config', file)), file, name));
}

export async function shippedProduction(): Promise<{ durations: ProductionDurations; counts: ProductionCounts }> {
  const bootstrap = await shipped('scripts/bootstrap.sh');
  const first = await shipped('scripts/prod/first-bootstrap.sh');
  const courier = await shipped('scripts/prod/deliver-secret-ids.sh');
  const prodHcl = await shipped('agent-config/env/prod.hcl');
  const engine = await shipped('scripts/database-engine.sh');
  const sh = (text: string, file: string, name: string) => durationMs(shellDefault(text, file, name));
  return {
    durations: {
      tokenTtl: sh(bootstrap, 'bootstrap.sh', 'ROLE_TOKEN_TTL'),
      tokenMaxTtl: sh(bootstrap, 'bootstrap.sh', 'ROLE_TOKEN_MAX_TTL'),
      secretIdTtl: sh(bootstrap, 'bootstrap.sh', 'ROLE_SECRET_ID_TTL'),
      firstWrapTtl: sh(first, 'first-bootstrap.sh', 'SECRET_ID_WRAP_TTL'),
      orchestratorPeriod: sh(first, 'first-bootstrap.sh', 'ORCHESTRATOR_TOKEN_PERIOD'),
      deliveryInterval: sh(courier, 'deliver-secret-ids.sh', 'DELIVERY_INTERVAL'),
      secretIdMaxAge: sh(courier, 'deliver-secret-ids.sh', 'SECRET_ID_MAX_AGE'),
      wrapTtl: sh(courier, 'deliver-secret-ids.sh', 'WRAP_TTL'),
      orchestratorRenewInterval: sh(courier, 'deliver-secret-ids.sh', 'ORCHESTRATOR_RENEW_INTERVAL'),
      minBackoff: durationMs(hclValue(prodHcl, 'env/prod.hcl', 'min_backoff')),
      maxBackoff: durationMs(hclValue(prodHcl, 'env/prod.hcl', 'max_backoff')),
      renderInterval: durationMs(hclValue(prodHcl, 'env/prod.hcl', 'static_secret_render_interval')),
      leaseTtl: sh(engine, 'database-engine.sh', 'DB_CREDS_TTL'),
      leaseMaxTtl: sh(engine, 'database-engine.sh', 'DB_CREDS_MAX_TTL'),
      checkInterval: settingsSchema.tokenCheckMaxIntervalMs.default,
    },
    counts: {
      secretIdNumUses: Number(shellDefault(first, 'first-bootstrap.sh', 'ROLE_SECRET_ID_NUM_USES')),
      numRetries: Number(hclValue(prodHcl, 'env/prod.hcl', 'num_retries')),
    },
  };
}

/** Durations Vault keeps in whole seconds: a factor that leaves a fraction would change a ratio. */
const vaultSeconds: readonly (keyof ProductionDurations)[] = [
  'tokenTtl', 'tokenMaxTtl', 'secretIdTtl', 'firstWrapTtl', 'orchestratorPeriod', 'wrapTtl', 'leaseTtl', 'leaseMaxTtl',
  'renderInterval',
];

/** Every duration divided by `factor`; throws naming a Vault TTL the factor would not leave whole. */
export function scaleDurations(durations: ProductionDurations, factor: number): ProductionDurations {
  const scaled = Object.fromEntries(Object.entries(durations).map(([key, ms]) => [key, Math.round(ms / factor)])) as
    unknown as ProductionDurations;
  for (const key of vaultSeconds) {
    if ((durations[key] / factor) % 1000 !== 0) {
      throw new Error(`1/${factor} time: ${key} (${durations[key]} ms shipped) would be ${durations[key] / factor} ms, not whole seconds`);
    }
  }
  return scaled;
}

/** A duration for a script or a Vault setting: whole seconds when it is, milliseconds otherwise. */
export function asDuration(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`;
}

/** How long the agent's template retries last before it exits: env/prod.hcl's count and backoff. */
export function retryBudgetMs(durations: Pick<ProductionDurations, 'minBackoff' | 'maxBackoff'>, counts: ProductionCounts): number {
  let total = 0;
  for (let i = 0; i < counts.numRetries; i++) total += Math.min(durations.minBackoff * 2 ** i, durations.maxBackoff);
  return total;
}
