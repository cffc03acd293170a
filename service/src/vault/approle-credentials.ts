import { readNamedFile } from '../config/named-file.js';
import { StartupError } from '../config/startup-error.js';
import type { VaultApi } from './vault-api.js';
import { isTransient } from './vault-error.js';

/** The AppRole role of one application in one environment, as scripts/lib/app-name.sh names it. */
export function appRoleName(appName: string, appEnv: string): string {
  return `${appName}-app-${appEnv}`;
}

/** Every variable that may carry AppRole credentials; all are removed from the environment. */
export const credentialVariables = [
  'VAULT_ROLE_ID', 'VAULT_ROLE_ID_FILE',
  'VAULT_SECRET_ID', 'VAULT_SECRET_ID_FILE',
  'VAULT_WRAPPED_SECRET_ID', 'VAULT_WRAPPED_SECRET_ID_FILE',
] as const;

/**
 * Deletes every AppRole credential variable from `env`, in every mode: an agent or auto
 * deployment that was also handed credentials must not keep them where child processes and
 * crash dumps can see them.
 */
export function removeCredentialVariables(env: NodeJS.ProcessEnv): void {
  for (const name of credentialVariables) {
    // eslint-disable-next-line @typescript-eslint/no-dynamic-delete -- removing them is the point
    delete env[name];
  }
}

type SecretIdSource =
  | { kind: 'value'; value: string }
  | { kind: 'file'; variable: string; path: string }
  | { kind: 'wrapped'; variable: string; token: string }
  | { kind: 'wrapped-file'; variable: string; path: string };

function only(env: Record<string, string | undefined>, names: readonly string[], what: string): string {
  const set = names.filter((name) => env[name] !== undefined && env[name] !== '');
  if (set.length === 0) throw new StartupError(`no ${what}: set ${names.join(' or ')}`);
  if (set.length > 1) throw new StartupError(`${set.join(' and ')} are all set: give the ${what} one way only`);
  return set[0] as string;
}

/**
 * The AppRole role id and the source of the secret id, taken from temporary environment
 * variables (or the files they name) and removed from the environment at once.
 *
 * Like Vault Agent, each login re-reads a secret id file when there is one (an orchestrator
 * may have dropped a fresh secret id, or a fresh wrapping token) and otherwise uses the
 * secret id it already holds in memory.
 */
export class AppRoleCredentials {
  readonly roleId: string;
  readonly #source: SecretIdSource;
  readonly #creationPath: string;
  #secretId: string | undefined;
  #unwrapped: string | undefined;

  private constructor(roleId: string, source: SecretIdSource, role: string) {
    this.roleId = roleId;
    this.#source = source;
    this.#creationPath = `auth/approle/role/${role}/secret-id`;
    if (source.kind === 'value') this.#secretId = source.value;
  }

  /**
   * `role` is the AppRole role a wrapped secret id must come from (appRoleName). With
   * `wrappedOnly` (prod), a plain secret id in a variable is refused: removing a variable does
   * not clear /proc/<pid>/environ nor what the orchestrator recorded (`docker inspect`), where a
   * reusable secret id would stay readable; a wrapping token found there is already spent.
   */
  static async take(env: NodeJS.ProcessEnv, role: string, options: { wrappedOnly?: boolean } = {}): Promise<AppRoleCredentials> {
    const values = Object.fromEntries(credentialVariables.map((name) => [name, env[name]]));
    removeCredentialVariables(env);
    const roleVariable = only(values, ['VAULT_ROLE_ID', 'VAULT_ROLE_ID_FILE'], 'role id');
    const roleId = roleVariable === 'VAULT_ROLE_ID'
      ? String(values.VAULT_ROLE_ID)
      : await readNamedFile(roleVariable, String(values[roleVariable]));
    const secretVariable = only(values, credentialVariables.slice(2), 'secret id');
    if (options.wrappedOnly === true && secretVariable === 'VAULT_SECRET_ID') {
      throw new StartupError('VAULT_SECRET_ID is refused with APP_ENV=prod: a plain secret id stays readable in the ' +
        'process\'s environment (/proc/<pid>/environ) after the service removes the variable. Give it response-wrapped ' +
        '(VAULT_WRAPPED_SECRET_ID), or in a file (VAULT_WRAPPED_SECRET_ID_FILE or VAULT_SECRET_ID_FILE)');
    }
    const given = String(values[secretVariable]);
    const source: SecretIdSource =
      secretVariable === 'VAULT_SECRET_ID' ? { kind: 'value', value: given }
      : secretVariable === 'VAULT_SECRET_ID_FILE' ? { kind: 'file', variable: secretVariable, path: given }
      : secretVariable === 'VAULT_WRAPPED_SECRET_ID' ? { kind: 'wrapped', variable: secretVariable, token: given }
      : { kind: 'wrapped-file', variable: secretVariable, path: given };
    if (source.kind === 'file' || source.kind === 'wrapped-file') await readNamedFile(source.variable, source.path);
    return new AppRoleCredentials(roleId, source, role);
  }

  /** The secret id for the next login. */
  async secretId(api: Pick<VaultApi, 'wrappingCreationPath' | 'unwrapSecretId'>): Promise<string> {
    const source = this.#source;
    switch (source.kind) {
      case 'value':
        return source.value;
      case 'file':
        this.#secretId = await this.#fresh(source.variable, source.path) ?? this.#secretId;
        break;
      case 'wrapped':
        if (this.#unwrapped !== source.token) await this.#unwrap(api, source.variable, source.token);
        break;
      case 'wrapped-file': {
        const token = await this.#fresh(source.variable, source.path);
        if (token !== undefined && token !== this.#unwrapped) await this.#unwrap(api, source.variable, token);
        break;
      }
    }
    if (this.#secretId === undefined) throw new StartupError('no secret id available for the AppRole login');
    return this.#secretId;
  }

  /** The file's content, or undefined once it is gone and a secret id is already held. */
  async #fresh(variable: string, path: string): Promise<string | undefined> {
    try {
      return await readNamedFile(variable, path);
    } catch (error) {
      if (this.#secretId !== undefined) return undefined;
      throw error;
    }
  }

  async #unwrap(api: Pick<VaultApi, 'wrappingCreationPath' | 'unwrapSecretId'>, variable: string, token: string) {
    const intercepted = (why: string) => new StartupError(
      `the wrapping token in ${variable} ${why}: possible interception. Someone else may have unwrapped the ` +
      `secret id first; destroy the role's secret ids and find out who before issuing a new one`);
    let creationPath: string;
    try {
      creationPath = await api.wrappingCreationPath(token);
    } catch (error) {
      if (isTransient(error)) throw error;
      // Vault answers alike for a token that expired and one already used: an expiry is the
      // ordinary case (delivered too early), so it is named first and interception second.
      throw new StartupError(`the wrapping token in ${variable} is invalid, expired or was already used. Expired: ` +
        'it waited longer than its wrap TTL; deliver a fresh one just before the start. Already used: possible ' +
        'interception; someone else may have unwrapped the secret id first; destroy the role\'s secret ids and find ' +
        'out who before issuing a new one');
    }
    if (creationPath !== this.#creationPath) {
      throw intercepted(`was created at ${creationPath}, not at ${this.#creationPath}`);
    }
    try {
      this.#secretId = await api.unwrapSecretId(token);
    } catch (error) {
      if (isTransient(error)) throw error;
      throw intercepted('was unwrapped by someone else a moment ago');
    }
    this.#unwrapped = token;
  }
}
