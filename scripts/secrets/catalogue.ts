import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import type { SecretCatalogue } from '../../service/src/config/secret-catalogue.js';

/** Where the catalogue sits, relative to the project's root. */
export const cataloguePath = 'agent-config/secret-catalogue.json';

// Names end up in Vault paths, JSON keys, shell words and Go template field accesses:
// `.Data.data.<key>` is what makes error_on_missing_key fail on a missing key (`index` would
// not), so a key must be a Go identifier. Docs end up in TypeScript comments.
const groupName = /^[a-z][a-z0-9-]*$/;
const keyName = /^[A-Za-z_][A-Za-z0-9_]*$/;
const doc = z.string().min(1).refine((text) => !text.includes('*/'), 'a doc cannot hold */');

const example = z.union([
  z.strictObject({ fixed: z.string().regex(/^[A-Za-z0-9_.-]+$/, 'a fixed example is letters, digits, _ . -') }),
  z.strictObject({ randomHex: z.number().int().min(1).max(1024) }),
]);

const keySpec = z.strictObject({
  type: z.enum(['string', 'string-list']),
  minLength: z.number().int().min(1),
  doc,
  example,
});

const catalogueSchema = z.strictObject({
  $comment: z.string().optional(),
  groups: z.record(z.string(), z.strictObject({
    doc,
    source: z.enum(['kv', 'kv-or-database-engine']),
    keys: z.record(z.string(), keySpec).refine((keys) => Object.keys(keys).length > 0, 'a group has at least one key'),
  })),
});

/** What the database secrets engine issues: the dynamic branch of the template reads only these. */
const databaseEngineKeys = ['username', 'password'];

/**
 * Checks a parsed catalogue and returns it without its comment. Besides the shape: the
 * service's lease handling is for the database group, so that group (and only it) may come
 * from the database engine, with the keys the engine issues; every example must itself be
 * valid, since the bootstrap writes it.
 */
export function checkCatalogue(json: unknown): SecretCatalogue {
  const parsed = catalogueSchema.safeParse(json);
  if (!parsed.success) throw new Error(`${cataloguePath}: ${z.prettifyError(parsed.error)}`);
  const { groups } = parsed.data;
  const problems: string[] = [];
  if (groups.database?.source !== 'kv-or-database-engine') {
    problems.push('groups.database: the service needs a database group with source kv-or-database-engine');
  }
  for (const [group, spec] of Object.entries(groups)) {
    if (!groupName.test(group)) problems.push(`groups.${group}: a group name is lower-case letters, digits and dashes`);
    if (spec.source === 'kv-or-database-engine' && group !== 'database') {
      problems.push(`groups.${group}: only the database group can come from the database engine`);
    }
    for (const [key, keySpec] of Object.entries(spec.keys)) {
      if (!keyName.test(key)) problems.push(`groups.${group}.keys.${key}: a key name is letters, digits and underscores`);
      if (spec.source === 'kv-or-database-engine' && !databaseEngineKeys.includes(key)) {
        problems.push(`groups.${group}.keys.${key}: the database engine issues only ${databaseEngineKeys.join(' and ')}`);
      }
      const length = 'fixed' in keySpec.example ? keySpec.example.fixed.length : keySpec.example.randomHex * 2;
      if (length < keySpec.minLength) {
        problems.push(`groups.${group}.keys.${key}.example: ${length} characters, shorter than minLength ${keySpec.minLength}`);
      }
    }
  }
  if (problems.length > 0) throw new Error(`${cataloguePath}: ${problems.join('; ')}`);
  return { groups };
}

export async function readCatalogue(root: string): Promise<SecretCatalogue> {
  const text = await readFile(`${root}/${cataloguePath}`, 'utf8');
  return checkCatalogue(JSON.parse(text));
}
