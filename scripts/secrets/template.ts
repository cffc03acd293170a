import type { SecretCatalogue, SecretGroupSpec } from '../../service/src/config/secret-catalogue.js';

/**
 * The Vault names the template is written with, from the application (APP_NAME) and the
 * environment (APP_ENV) the agent runs with, as scripts/lib/app-name.sh and the service's
 * secretPath and databaseCredsPath (service/src/config/secret-schema.ts) derive them.
 */
export const vaultNames = {
  /** The application when APP_NAME is unset or empty, as in scripts/lib/app-name.sh and the service's settings. */
  defaultApp: 'saas',
  /** printf format of an environment's KV v2 data paths, from the application and the environment. */
  kvEnvFormat: 'secret/data/%s-project/%s',
  /** printf format of the database engine's credentials: the role is the application's role, <app>-app-<env>. */
  databaseCredsFormat: 'database/creds/%s-app-%s',
} as const;

/** The template's expression of the application: APP_NAME, or the default when it is unset or empty. */
export const appNameExpression = `or (env "APP_NAME") "${vaultNames.defaultApp}"`;

/** A format's placeholders named, for the template's comment: secret/data/<app>-project/<env>. */
function named(format: string): string {
  return format.replace('%s', '<app>').replace('%s', '<env>');
}

export const generatedBy = 'Generated from agent-config/secret-catalogue.json by `npm run secrets:generate`: edit the catalogue, not this file.';

/** The lines every group's entry ends with; the last group takes no comma. */
function entry(group: string, lines: readonly string[], last: boolean): string[] {
  return [`  ${JSON.stringify(group)}: {`, ...lines, last ? '  }' : '  },'];
}

function dataLines(spec: SecretGroupSpec, field: string): string[] {
  const keys = Object.keys(spec.keys);
  // `.Data.data.<key>`, not `index`: only a field access fails on a missing key.
  return keys.map((key, i) => `      ${JSON.stringify(key)}: {{ ${field}.${key} | toJSON }}${i < keys.length - 1 ? ',' : ''}`);
}

function kvBlock(group: string, spec: SecretGroupSpec, last: boolean): string[] {
  return [
    `{{- with $path := printf "%s/${group}" $prefix }}{{ with secret $path }}`,
    ...entry(group, [
      '    "path": {{ $path | toJSON }},',
      '    "version": {{ .Data.metadata.version }},',
      '    "data": {',
      ...dataLines(spec, '.Data.data'),
      '    }',
    ], last),
    '{{- end }}{{ end }}',
  ];
}

function databaseEngineBlock(group: string, spec: SecretGroupSpec, last: boolean): string[] {
  return [
    '{{- if eq (env "DATABASE_CREDENTIALS") "dynamic" }}',
    `{{- with $path := printf "${vaultNames.databaseCredsFormat}" $appName $appEnv }}{{ with secret $path }}`,
    ...entry(group, [
      '    "path": {{ $path | toJSON }},',
      '    "lease": {',
      '      "id": {{ .LeaseID | toJSON }},',
      '      "duration": {{ .LeaseDuration }},',
      '      "renewable": {{ .Renewable }}',
      '    },',
      '    "data": {',
      ...dataLines(spec, '.Data'),
      '    }',
    ], last),
    '{{- end }}{{ end }}',
    '{{- else }}',
    ...kvBlock(group, spec, last),
    '{{- end }}',
  ];
}

/**
 * agent-config/secrets.json.ctmpl: one JSON document with every group of the catalogue, each
 * key named so that error_on_missing_key stops the render when Vault lacks it.
 */
export function agentTemplate(catalogue: SecretCatalogue): string {
  const groups = Object.entries(catalogue.groups);
  return [
    '{{- /*',
    `  ${generatedBy}`,
    '  Every secret the service needs for APP_NAME and APP_ENV, in one JSON document the service validates:',
    `    { "<group>": { "path": "${named(vaultNames.kvEnvFormat)}/<group>", "version": N, "data": {...} } }`,
    `  <app> is APP_NAME, or ${vaultNames.defaultApp} when it is unset or empty (the service's default too).`,
    '  Each key is named, so with error_on_missing_key a key missing in Vault stops the render,',
    '  and a key the service does not know never reaches it. toJSON quotes every value.',
    '  An unset APP_ENV yields ".../<app>-project//<group>", which the policy denies: fails closed.',
    '',
    '  DATABASE_CREDENTIALS=dynamic (the same setting the service reads) takes the database user',
    '  from the database engine instead of KV:',
    `    "database": { "path": "${named(vaultNames.databaseCredsFormat)}", "lease": { "id", "duration", "renewable" }, "data": {...} }`,
    '  The agent renews that lease in the background (the file does not change then) and, when',
    '  renewal can no longer extend it (its max TTL), reads new credentials and renders them.',
    '*/ -}}',
    `{{- $appName := ${appNameExpression} -}}`,
    '{{- $appEnv := (env "APP_ENV") -}}',
    `{{- $prefix := printf "${vaultNames.kvEnvFormat}" $appName $appEnv -}}`,
    '{',
    ...groups.flatMap(([group, spec], i) => {
      const last = i === groups.length - 1;
      return spec.source === 'kv-or-database-engine' ? databaseEngineBlock(group, spec, last) : kvBlock(group, spec, last);
    }),
    '}',
    '',
  ].join('\n');
}
