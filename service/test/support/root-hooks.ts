import { recordFetches, scanForLeaks } from './leak-scan.js';
import { stopAll } from './processes.js';
import { removeTempDirs, tempDirsCreated } from './temp-dirs.js';

// Every response the suite fetches is recorded for the final secret scan (issue 9).
recordFetches();

/**
 * Mocha root hooks: whatever a test started or wrote is gone after the suite, pass or fail;
 * before the temp folders go, every log line, script output and HTTP response of the run is
 * scanned for every secret value and token the tests registered (support/leak-scan.ts).
 */
export const mochaHooks = {
  async afterAll(): Promise<void> {
    await stopAll();
    let summary: Awaited<ReturnType<typeof scanForLeaks>> | undefined;
    try {
      summary = await scanForLeaks(tempDirsCreated());
    } finally {
      await removeTempDirs();
    }
    console.log(`  secret scan: ${summary.secrets} registered values, ${summary.outputs} recorded outputs and ` +
      `${summary.logFiles} log files (${(summary.bytes / 1e6).toFixed(1)} MB) scanned, ${summary.hits.length} hit(s)`);
    if (summary.hits.length > 0) {
      const where = summary.hits.slice(0, 20).map((hit) => `  ${hit.what} in ${hit.source}:${hit.line}`).join('\n');
      throw new Error(`secret scan: ${summary.hits.length} hit(s) across the suite's logs and responses:\n${where}`);
    }
  },
};
