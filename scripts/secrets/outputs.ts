import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { SecretCatalogue, SecretKeySpec } from '../../service/src/config/secret-catalogue.js';
import { readCatalogue } from './catalogue.js';
import { agentTemplate, appNameExpression, generatedBy } from './template.js';

/** Every file the catalogue drives, relative to the project's root. */
export const generatedPaths = {
  template: 'agent-config/secrets.json.ctmpl',
  kubernetes: 'deploy/kubernetes/overlays/injector/deployment-patch.yaml',
  types: 'service/src/config/secret-catalogue.generated.ts',
  examples: 'scripts/lib/example-secrets.sh',
} as const;

const annotation = 'vault.hashicorp.com/agent-inject-template-app.json: |';

/**
 * The injector overlay's Deployment patch (it adds the Vault Agent Injector's annotations to the
 * base's pod template) with its template annotation replaced by the agent's template, the
 * values the injector's agent has no environment for written in: it runs the application saas
 * for prod, with dynamic database users, as the app container's APP_NAME, APP_ENV and
 * DATABASE_CREDENTIALS say. Only the annotation's block scalar is generated; the rest is hand-written.
 */
export function kubernetesManifest(manifest: string, template: string): string {
  const lines = manifest.split('\n');
  const start = lines.findIndex((line) => line.trimStart() === annotation);
  if (start < 0) throw new Error(`${generatedPaths.kubernetes}: no "${annotation}" line to fill`);
  const indentOf = (line: string): number => line.length - line.trimStart().length;
  const keyIndent = indentOf(lines[start] ?? '');
  let end = start + 1;
  // A block scalar runs while lines are blank or indented deeper than its key.
  while (end < lines.length && (lines[end] === '' || indentOf(lines[end] ?? '') > keyIndent)) end++;
  // Trailing blank lines belong to what follows the block.
  while (end > start + 1 && lines[end - 1] === '') end--;
  const body = template.replace(appNameExpression, '"saas"').replace('(env "APP_ENV")', '"prod"')
    .replace('(env "DATABASE_CREDENTIALS")', '"dynamic"')
    .trimEnd().split('\n').map((line) => (line === '' ? '' : `${' '.repeat(keyIndent + 2)}${line}`));
  return [...lines.slice(0, start + 1), ...body, ...lines.slice(end)].join('\n');
}

function tsName(name: string): string {
  return /^[A-Za-z_$][\w$]*$/.test(name) ? name : `'${name}'`;
}

function tsType(spec: SecretKeySpec): string {
  return spec.type === 'string-list' ? 'readonly string[]' : 'string';
}

/** The catalogue as data the service builds its schema from, and the types of what it validates. */
export function typesModule(catalogue: SecretCatalogue): string {
  const groups = Object.entries(catalogue.groups);
  return [
    `// ${generatedBy}`,
    "import type { SecretCatalogue } from './secret-catalogue.js';",
    '',
    `export const secretCatalogue = ${JSON.stringify(catalogue, null, 2)} as const satisfies SecretCatalogue;`,
    '',
    '/** The secret groups the service reads, in the catalogue\'s order. */',
    `export const secretGroups = [${groups.map(([group]) => `'${group}'`).join(', ')}] as const;`,
    'export type SecretGroup = (typeof secretGroups)[number];',
    '',
    '/** One snapshot\'s secrets: Vault\'s own key names, each typed as the catalogue declares it. */',
    'export interface Secrets {',
    ...groups.flatMap(([group, spec]) => [
      `  /** ${spec.doc} */`,
      `  readonly ${tsName(group)}: {`,
      ...Object.entries(spec.keys).flatMap(([key, keySpec]) => [
        `    /** ${keySpec.doc} */`,
        `    readonly ${tsName(key)}: ${tsType(keySpec)};`,
      ]),
      '  };',
    ]),
    '}',
    '',
  ].join('\n');
}

/** One put_example line per group: the value as a JSON object, random parts made when the bootstrap runs. */
export function exampleSecrets(catalogue: SecretCatalogue): string {
  const value = (spec: SecretKeySpec): string => {
    const one = 'fixed' in spec.example ? spec.example.fixed : `$(random_hex ${spec.example.randomHex})`;
    return spec.type === 'string-list' ? `[\\"${one}\\"]` : `\\"${one}\\"`;
  };
  return [
    `# ${generatedBy}`,
    '# Sourced by scripts/bootstrap.sh, which defines put_example and random_hex: one example value',
    '# per KV group, written only where the path has no version yet.',
    ...Object.entries(catalogue.groups).map(([group, spec]) => {
      const fields = Object.entries(spec.keys).map(([key, keySpec]) => `\\"${key}\\":${value(keySpec)}`);
      return `put_example ${group} "{${fields.join(',')}}"`;
    }),
    '',
  ].join('\n');
}

/** What each generated file must hold for the catalogue under `root`. */
export async function generatedFiles(root: string): Promise<Map<string, string>> {
  const catalogue = await readCatalogue(root);
  const template = agentTemplate(catalogue);
  const manifest = await readFile(join(root, generatedPaths.kubernetes), 'utf8');
  return new Map([
    [generatedPaths.template, template],
    [generatedPaths.kubernetes, kubernetesManifest(manifest, template)],
    [generatedPaths.types, typesModule(catalogue)],
    [generatedPaths.examples, exampleSecrets(catalogue)],
  ]);
}
