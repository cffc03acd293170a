const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The status of one GET, the body discarded. */
export async function statusOf(url: string): Promise<number> {
  const response = await fetch(url, { signal: AbortSignal.timeout(2000) });
  await response.body?.cancel();
  return response.status;
}

/** GETs `url` every `everyMs` for `forMs` and returns the statuses seen. */
export async function poll(url: string, forMs: number, everyMs = 200): Promise<number[]> {
  const seen: number[] = [];
  const end = Date.now() + forMs;
  while (Date.now() < end) {
    seen.push(await statusOf(url));
    await sleep(everyMs);
  }
  return seen;
}

/** Milliseconds until `url` answers `status`; fails after `limitMs`. */
export async function timeUntil(url: string, status: number, limitMs: number): Promise<number> {
  const start = Date.now();
  while (Date.now() - start < limitMs) {
    if (await statusOf(url) === status) return Date.now() - start;
    await sleep(50);
  }
  throw new Error(`${url} did not answer ${status} within ${limitMs} ms`);
}
