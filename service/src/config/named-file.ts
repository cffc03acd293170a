import { readFile } from 'node:fs/promises';
import { StartupError } from './startup-error.js';

/**
 * The trimmed content of the file a `*_FILE` variable names (a credential, a token): one that
 * cannot be read, or is empty, stops the start with the variable and the path named.
 */
export async function readNamedFile(variable: string, path: string): Promise<string> {
  let content: string;
  try {
    content = await readFile(path, 'utf8');
  } catch (error) {
    throw new StartupError(`${variable} names ${path}, which cannot be read (${(error as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  const value = content.trim();
  if (value === '') throw new StartupError(`${variable} names ${path}, which is empty`);
  return value;
}
