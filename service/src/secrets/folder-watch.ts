import { watch } from 'chokidar';
import { basename } from 'node:path';

/** Reports the name of each entry of `dir` that changes; returns the function that stops watching. */
export type FolderWatch = (
  dir: string,
  onEvent: (name: string) => void,
  onError: (error: Error) => void,
) => () => Promise<void>;

/**
 * Vault Agent replaces its files by renaming a temporary file over them: a watch on the file
 * itself follows the old inode and goes quiet after the first render. Watching the folder
 * (one level) sees every rename.
 */
export const watchFolder: FolderWatch = (dir, onEvent, onError) => {
  const watcher = watch(dir, { depth: 0, ignoreInitial: true });
  watcher.on('all', (_event, path) => { onEvent(basename(path)); });
  watcher.on('error', (error) => { onError(error instanceof Error ? error : new Error(String(error))); });
  return () => watcher.close();
};
