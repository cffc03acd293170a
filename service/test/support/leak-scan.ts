import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * The suite-wide secret scan (issue 9): every secret value and token the tests create or
 * see pass through registerSecret; every log, error message and HTTP response the suite
 * produces is recorded here (or lives in a *.log file under a tempDir), and scanForLeaks
 * looks for every registered value in all of it. The root hook runs it once at the end of
 * the run and fails the run on any hit.
 *
 * Reach: the capturing loggers (in-process services), every *.log file under the suite's
 * temp folders (each spawned service, agent, bao server, PostgreSQL, the local stack's
 * logs), the output of the scripts the helpers run (bootstrap, prod scripts), and every
 * response to a `fetch` made by the suite that is not a Vault API call (`/v1/...`): Vault's
 * own answers carry secrets by design, so they are read to *register* secrets, not scanned.
 */

const minimumLength = 12;
const secrets = new Map<string, string>();
const texts: { source: string; text: () => string }[] = [];
const pending = new Set<Promise<unknown>>();
/** Lines a tool prints by design (a dev server's root token banner): not the service's output. */
const exemptLine = /^(Root Token|Unseal Key): /;

/** Remembers values that must never appear in any output. Short or empty values are ignored. */
export function registerSecret(what: string, ...values: unknown[]): void {
  for (const value of values) {
    if (typeof value !== 'string') continue;
    const trimmed = value.trim();
    if (trimmed.length >= minimumLength && !secrets.has(trimmed)) secrets.set(trimmed, what);
  }
}

export function forgetSecret(value: string): void {
  secrets.delete(value.trim());
}

export function registeredSecretCount(): number {
  return secrets.size;
}

/** An output to scan; `text` is read at scan time, so a growing buffer can be given once. */
export function recordOutput(source: string, text: string | (() => string)): void {
  texts.push({ source, text: typeof text === 'string' ? () => text : text });
}

export function trackPending(promise: Promise<unknown>): void {
  pending.add(promise);
  void promise.finally(() => pending.delete(promise));
}

const secretKeys = /^(client_token|token|secret_id|root_token|wrapping_token|password|session_keys|unseal_keys_b64|unseal_keys_hex|keys_base64|.+_key)$/;

const publicFields = new Set(['username', 'client_id']);

function isObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

function registerStrings(what: string, value: unknown): void {
  if (typeof value === 'string') registerSecret(what, value);
  else if (Array.isArray(value)) for (const item of value) registerStrings(what, item);
  else if (isObject(value)) for (const item of Object.values(value)) registerStrings(what, item);
}

/**
 * Registers the secrets a Vault request or response body holds: tokens, secret ids, unseal
 * keys wherever they sit, and every value of a KV v2 secret (a write's `data`, a read's
 * `data.data`) except a username and an OpenID Connect client id (public: every sign-in's
 * redirect to the issuer carries it).
 */
export function registerFromVaultJson(what: string, text: string, kind: 'request' | 'response'): void {
  let document: unknown;
  try {
    document = JSON.parse(text);
  } catch {
    return;
  }
  if (!isObject(document)) return;
  const data = document.data;
  const kv = kind === 'request' ? data : isObject(data) ? data.data : undefined;
  if (isObject(kv)) {
    for (const [key, value] of Object.entries(kv)) if (!publicFields.has(key)) registerStrings(`${what} ${key}`, value);
  }
  const walk = (value: unknown, key: string): void => {
    if (typeof value === 'string') {
      if (secretKeys.test(key)) registerSecret(`${what} ${key}`, value);
    } else if (Array.isArray(value)) {
      for (const item of value) walk(item, key);
    } else if (isObject(value)) {
      for (const [k, v] of Object.entries(value)) walk(v, k);
    }
  };
  walk(document, '');
}

/** Every *.log file below `dirs` (recursively; unreadable folders are skipped). */
async function logFiles(dirs: readonly string[]): Promise<string[]> {
  const found: string[] = [];
  const visit = async (dir: string, depth: number): Promise<void> => {
    if (depth > 6) return;
    let entries;
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const entry of entries) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) await visit(path, depth + 1);
      else if (entry.isFile() && entry.name.endsWith('.log')) found.push(path);
    }
  };
  for (const dir of dirs) await visit(dir, 0);
  return found;
}

export interface LeakHit {
  /** Where: a log file, a logger, an HTTP response. */
  readonly source: string;
  /** What leaked (how the value was registered), never the value itself. */
  readonly what: string;
  readonly line: number;
}

export interface ScanSummary {
  readonly hits: LeakHit[];
  readonly secrets: number;
  readonly outputs: number;
  readonly logFiles: number;
  readonly bytes: number;
}

function scanText(source: string, text: string, hits: LeakHit[]): void {
  if (secrets.size === 0 || text === '') return;
  const lines = text.split('\n');
  for (const [value, what] of secrets) {
    if (!text.includes(value)) continue;
    lines.forEach((line, index) => {
      if (line.includes(value) && !exemptLine.test(line)) hits.push({ source, what, line: index + 1 });
    });
  }
}

/** Scans everything recorded so far, plus every *.log file under `dirs`. */
export async function scanForLeaks(dirs: readonly string[]): Promise<ScanSummary> {
  // Responses still being read (a clone of a body nobody consumed) get a few seconds.
  await Promise.race([Promise.allSettled([...pending]), new Promise((r) => setTimeout(r, 5000).unref())]);
  const hits: LeakHit[] = [];
  let bytes = 0;
  for (const { source, text } of texts) {
    const content = text();
    bytes += content.length;
    scanText(source, content, hits);
  }
  const files = await logFiles(dirs);
  for (const file of files) {
    const content = await readFile(file, 'utf8').catch(() => '');
    bytes += content.length;
    scanText(file, content, hits);
  }
  return { hits, secrets: secrets.size, outputs: texts.length, logFiles: files.length, bytes };
}

/**
 * Wraps the global fetch: responses from anything but the Vault API are recorded for the
 * scan (status line, headers, body); Vault API requests and responses register the secrets
 * they carry. The caller's response is untouched (the recorder reads a clone).
 */
export function recordFetches(): void {
  const original = globalThis.fetch;
  if ((original as { recorded?: boolean }).recorded === true) return;
  const recording = async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    const response = await original(input, init);
    let url: URL;
    try {
      url = new URL(input instanceof Request ? input.url : String(input));
    } catch {
      return response;
    }
    const vault = url.pathname.startsWith('/v1/');
    if (vault && typeof init?.body === 'string') registerFromVaultJson(`vault request ${url.pathname}`, init.body, 'request');
    const copy = response.clone();
    trackPending(copy.text().then((body) => {
      if (vault) {
        registerFromVaultJson(`vault response ${url.pathname}`, body, 'response');
      } else {
        const headers = [...response.headers.entries()].map(([k, v]) => `${k}: ${v}`).join('\n');
        recordOutput(`HTTP ${response.status} ${init?.method ?? 'GET'} ${url.pathname}`, `${headers}\n\n${body}`);
      }
    }, () => undefined));
    return response;
  };
  (recording as { recorded?: boolean }).recorded = true;
  globalThis.fetch = recording;
}
