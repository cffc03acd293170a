import { readFile } from 'node:fs/promises';
import pg from 'pg';
import { readSomeSettings, type Settings } from '../config/settings.js';
import type { Logger } from '../log/logger.js';
import { parseRenderedFile } from '../secrets/rendered-file.js';
import { createSchema } from './schema.js';
import { databaseTls } from './tls.js';

/** The service's settings the schema Job reads: the rendered file, and the database as the app reaches it. */
const keys = [
  'appName', 'appEnv', 'secretsFile', 'databaseCredentials', 'databaseHost', 'databasePort', 'databaseName',
  'databaseSslMode', 'databaseCaFile', 'logLevel',
] as const satisfies readonly (keyof Settings)[];
export type SchemaJobSettings = Pick<Settings, (typeof keys)[number]>;

/** The same variables, formats, defaults and messages as the service's own (settings.ts); any other variable is ignored. */
export function readSchemaJobSettings(env: NodeJS.ProcessEnv): SchemaJobSettings {
  return readSomeSettings(keys, env);
}

/**
 * Creates every table as the database user of the agent's rendered file (in Kubernetes, one
 * Vault issued to the Job's pod), over the same TLS as the service, then disconnects. Answers
 * the tables' names. Throws naming what failed, never a secret.
 */
export async function runSchemaJob(settings: SchemaJobSettings, logger: Logger): Promise<string[]> {
  const content = await readFile(settings.secretsFile);
  const snapshot = parseRenderedFile(settings.secretsFile, content, settings, Date.now(), settings.databaseCredentials);
  const { username, password } = snapshot.secrets.database;
  const client = new pg.Client({
    host: settings.databaseHost, port: settings.databasePort, database: settings.databaseName, user: username, password,
    ssl: await databaseTls(settings, logger),
  });
  await client.connect();
  try {
    return await createSchema(client);
  } finally {
    await client.end();
  }
}
