import { basename, dirname } from 'node:path';
import type { FolderWatch } from './folder-watch.js';

/**
 * Calls `onChange` once a burst of events for `file` has been quiet for `debounceMs`
 * (one agent render or token write, one call). Returns the function that stops watching.
 */
export function watchFileDebounced(
  file: string,
  watchFolder: FolderWatch,
  onChange: () => void,
  onError: (error: Error) => void,
  debounceMs: number,
): () => Promise<void> {
  const name = basename(file);
  let timer: NodeJS.Timeout | undefined;
  const unwatch = watchFolder(
    dirname(file),
    (changed) => {
      if (changed !== name) return;
      clearTimeout(timer);
      timer = setTimeout(onChange, debounceMs);
    },
    onError,
  );
  return async () => {
    clearTimeout(timer);
    await unwatch();
  };
}
