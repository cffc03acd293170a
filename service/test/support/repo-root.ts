import { resolve } from 'node:path';

/** The repository's root folder, for tests that read its files. */
export const repoRoot = resolve(import.meta.dirname, '../../..');
