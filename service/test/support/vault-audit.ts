import { open, stat } from 'node:fs/promises';
import { cliAs } from './bao-server.js';
import type { ScaledVault } from './scaled-production.js';

/** The fields of a file audit device's entry the Kubernetes tests read. Tokens are HMACs there. */
export interface AuditEntry {
  time: string;
  type: 'request' | 'response';
  auth?: { client_token?: string; display_name?: string };
  request?: { path?: string; operation?: string };
  response?: { secret?: { lease_id?: string } };
  error?: string;
}

/** Where the audit log ends now: entries written after it are the next action's. */
export async function auditOffset(vault: ScaledVault): Promise<number> {
  return (await stat(vault.node.auditFile)).size;
}

/** Every whole entry written since `offset` (a line the server is still writing is left out). */
export async function auditEntriesSince(vault: ScaledVault, offset: number): Promise<AuditEntry[]> {
  const file = await open(vault.node.auditFile, 'r');
  try {
    const { size } = await file.stat();
    const buffer = Buffer.alloc(Math.max(0, size - offset));
    await file.read(buffer, 0, buffer.length, offset);
    const lines = buffer.toString('utf8').split('\n');
    lines.pop();
    return lines.filter((line) => line !== '').map((line) => JSON.parse(line) as AuditEntry);
  } finally {
    await file.close();
  }
}

/** `value` as the audit device "file" writes it (its HMAC), asked of Vault (sys/audit-hash). */
export async function auditHash(vault: ScaledVault, value: string): Promise<string> {
  const hashed = await cliAs(vault.node, vault.harnessToken, ['write', '-field=hash', 'sys/audit-hash/file', 'input=-'], value);
  if (hashed.code !== 0) throw new Error(`sys/audit-hash/file: ${hashed.stderr.trim()}`);
  return hashed.stdout.trim();
}

/** Whether Vault still knows the lease, and when it ends (harness token: sys/leases/lookup). */
export async function lookupLease(vault: ScaledVault, leaseId: string): Promise<{ valid: true; expireTime: number } | { valid: false; reason: string }> {
  const found = await cliAs(vault.node, vault.harnessToken, ['write', '-format=json', 'sys/leases/lookup', `lease_id=${leaseId}`]);
  if (found.code !== 0) return { valid: false, reason: found.stderr.trim() };
  return { valid: true, expireTime: Date.parse((JSON.parse(found.stdout) as { data: { expire_time: string } }).data.expire_time) };
}
