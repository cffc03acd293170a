import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { stackPaths } from '../stack/stack.js';
import { curlJar, playSignIn } from './play-browser.js';

/**
 *   npm run --silent dev:sign-in -- <user> <cookie-jar>
 *
 * Signs in as a demo user (scripts/demo-identity.sh: acme or globex) the way a browser does,
 * and writes the session's cookies to <cookie-jar> (curl's format, 0600): `curl -b <cookie-jar>`
 * is then signed in. Prints the tenant.
 *
 *   APP_URL         the service (default: the local stack's, from .stack/stack.env)
 *   VAULT_ADDR      Vault as this machine reaches it (default: where the service redirects)
 *   DEMO_USERS_DIR  the demo users' password files (default: the local stack's, .stack/demo-users)
 */
function fail(message: string): never {
  console.error(`dev:sign-in: ${message}`);
  process.exit(1);
}

const [user, jarFile, ...rest] = process.argv.slice(2);
if (user === undefined || jarFile === undefined || rest.length > 0) fail('usage: npm run --silent dev:sign-in -- <user> <cookie-jar>');
if (!/^[a-z0-9-]{1,63}$/.test(user)) fail(`no demo user '${user}': the demo users are acme and globex`);

const paths = stackPaths();
/** A value of the stack's stack.env, for what the environment does not say. */
async function fromStack(name: string): Promise<string | undefined> {
  const text = await readFile(paths.env, 'utf8').catch(() => '');
  return new RegExp(`^${name}=(.*)$`, 'm').exec(text)?.[1];
}
const appUrl = process.env.APP_URL ?? await fromStack('APP_URL') ??
  fail(`APP_URL is not set and ${paths.env} is missing: start the stack (npm run stack -- --detach) or set APP_URL`);
const usersDir = process.env.DEMO_USERS_DIR ?? join(paths.root, 'demo-users');
const password = (await readFile(join(usersDir, user), 'utf8').catch(() =>
  fail(`no password file ${join(usersDir, user)}: the demo users are acme and globex (set DEMO_USERS_DIR for another folder)`))).trim();

try {
  const signedIn = await playSignIn({ appUrl, user, password, ...(process.env.VAULT_ADDR ? { vaultAddr: process.env.VAULT_ADDR } : {}) });
  await writeFile(jarFile, curlJar(new URL(appUrl).hostname, signedIn.cookies), { mode: 0o600 });
  console.log(`signed in to ${appUrl} as ${user} (tenant ${signedIn.tenant}); cookies in ${jarFile}`);
} catch (error) {
  fail((error as Error).message);
}
