/**
 * The shape of agent-config/secret-catalogue.json, the one place a secret is declared.
 * scripts/secrets/catalogue.ts reads and checks the file; `npm run secrets:generate` turns it
 * into secret-catalogue.generated.ts (this data and the Secrets type), the agent's template,
 * the Kubernetes annotation and the bootstrap's example values.
 */

/** `string-list`: a non-empty list of strings, `minLength` applying to each. */
export type SecretKeyType = 'string' | 'string-list';

/**
 * `kv`: read from secret/data/<prefix>/<env>/<group>. `kv-or-database-engine`: the database
 * group only, read from the database secrets engine when DATABASE_CREDENTIALS is dynamic.
 */
export type SecretSourceKind = 'kv' | 'kv-or-database-engine';

/** How scripts/bootstrap.sh makes a dev value: a fixed word, or N random bytes in hex. */
export type SecretExample = { readonly fixed: string } | { readonly randomHex: number };

export interface SecretKeySpec {
  readonly type: SecretKeyType;
  readonly minLength: number;
  readonly doc: string;
  readonly example: SecretExample;
}

export interface SecretGroupSpec {
  readonly doc: string;
  readonly source: SecretSourceKind;
  readonly keys: Readonly<Record<string, SecretKeySpec>>;
}

export interface SecretCatalogue {
  readonly groups: Readonly<Record<string, SecretGroupSpec>>;
}
