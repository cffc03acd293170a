import { stopAll } from './processes.js';
import { removeTempDirs } from './temp-dirs.js';

/** Mocha root hooks: whatever a test started or wrote is gone after the suite, pass or fail. */
export const mochaHooks = {
  async afterAll(): Promise<void> {
    await stopAll();
    await removeTempDirs();
  },
};
