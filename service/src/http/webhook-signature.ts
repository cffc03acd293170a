import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * HMAC-SHA256 over "<unix seconds>.<body>", sent as `t=<seconds>,v1=<hex>`: the timestamp
 * inside the signature lets a receiver refuse replays older than its tolerance.
 */
export function signWebhook(body: string, key: string, unixSeconds: number): string {
  const mac = createHmac('sha256', key).update(`${unixSeconds}.${body}`).digest('hex');
  return `t=${unixSeconds},v1=${mac}`;
}

/** What a receiver runs: true only for an untampered body signed with `key` within `toleranceSeconds`. */
export function verifyWebhook(
  body: string,
  header: string,
  key: string,
  nowSeconds: number,
  toleranceSeconds = 300,
): boolean {
  const match = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(header);
  if (match?.[1] === undefined || match[2] === undefined) return false;
  const timestamp = Number(match[1]);
  if (Math.abs(nowSeconds - timestamp) > toleranceSeconds) return false;
  const expected = Buffer.from(signWebhook(body, key, timestamp).slice(-64), 'hex');
  return timingSafeEqual(expected, Buffer.from(match[2], 'hex'));
}
