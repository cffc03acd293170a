import { watch } from 'chokidar';
import { basename, dirname } from 'node:path';

export interface FileWatchOptions {
  /** Called once the file's events have been quiet for `debounceMs`: one render, one call. */
  onChange: () => void;
  onError: (error: Error) => void;
  debounceMs: number;
}

export interface FileWatch {
  /**
   * Settles once the initial scan of the folder is done: a change made after it is reported.
   * Also settles when the watch is closed first, so awaiting it never hangs.
   */
  readonly ready: Promise<void>;
  /** Stops watching; `onChange` is not called once this has been called. */
  close(): Promise<void>;
}

/** How the service watches a file; injected so tests can drive changes by hand. */
export type WatchFile = (file: string, options: FileWatchOptions) => FileWatch;

/**
 * Watches `file` through its folder (one level deep): Vault Agent replaces its files by
 * renaming a temporary file over them, and a watch on the file itself follows the old inode
 * and goes quiet after the first render. Events for other entries of the folder (the agent's
 * temporary files, its other sinks) are ignored.
 */
export const watchFile: WatchFile = (file, { onChange, onError, debounceMs }) => {
  const name = basename(file);
  const watcher = watch(dirname(file), { depth: 0, ignoreInitial: true });
  let timer: NodeJS.Timeout | undefined;
  let closed = false;
  let scanned: () => void = () => undefined;
  const ready = new Promise<void>((resolve) => { scanned = resolve; });
  watcher.on('ready', scanned);
  watcher.on('all', (_event, path) => {
    if (closed || basename(path) !== name) return;
    clearTimeout(timer);
    timer = setTimeout(onChange, debounceMs);
  });
  watcher.on('error', (error) => { onError(error instanceof Error ? error : new Error(String(error))); });
  return {
    ready,
    close: () => {
      closed = true;
      clearTimeout(timer);
      scanned();
      return watcher.close();
    },
  };
};
