// The data directory's lock: one host (a daemon's, or one embedded in a program) per directory at a time.
import { closeSync, mkdirSync, openSync, readFileSync, realpathSync, rmSync, writeSync } from 'node:fs';
import { resolve } from 'node:path';
import { AnxError } from './errors.ts';
import { dataFiles } from './paths.ts';

/**
 * Another host has the data directory open: a daemon or a program embedding a host, in another
 * process (`pid`) or in this one. Two kernels on one LMDB environment would each commit over what
 * the other has in memory, and messages would be lost.
 */
export class DataDirLockedError extends AnxError {
  constructor(
    readonly dataDir: string,
    readonly pid: number,
  ) {
    super(
      'ANX_DATA_DIR_LOCKED',
      pid === process.pid
        ? `this process already has a host open on ${dataDir}`
        : `process ${pid} (a daemon, or a program embedding a host) has ${dataDir} open`,
      {
        hint:
          pid === process.pid
            ? 'share the open Host (the SDK: `connect({ mode: "embedded", host })`), or close it first'
            : 'talk to it through its daemon (`connect({ mode: "daemon" })`, the CLI), stop it, or use another --data-dir',
      },
    );
  }
}

/** A held lock; `release` is idempotent. */
export interface DataDirLock {
  readonly dataDir: string;
  release(): void;
}

/** Directories locked by this process (by real path): a second host in one process is refused too. */
const held = new Set<string>();

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Takes the lock of `dataDir` (creating the directory, mode 0700, if needed): the file `daemon.lock`
 * holding this process's pid. A lock left by a process that no longer exists (a crash, `kill -9`) is
 * stale and taken over. Throws `DataDirLockedError` while a live process, this one included, holds it.
 *
 * @example
 * ```ts
 * const lock = lockDataDir(dataDir);
 * try { ... } finally { lock.release(); }
 * ```
 */
export function lockDataDir(dataDir: string): DataDirLock {
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const key = realpathSync(resolve(dataDir));
  if (held.has(key)) throw new DataDirLockedError(dataDir, process.pid);
  const file = dataFiles.lock(dataDir);
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(file, 'wx', 0o600);
      writeSync(fd, String(process.pid));
      closeSync(fd);
      held.add(key);
      let released = false;
      return {
        dataDir,
        release() {
          if (released) return;
          released = true;
          held.delete(key);
          rmSync(file, { force: true });
        },
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      let pid = Number.NaN;
      try {
        pid = Number.parseInt(readFileSync(file, 'utf8'), 10);
      } catch {
        // Removed in between: try again.
      }
      // Our own pid in a file this process does not hold: left by a process whose pid was reused.
      if (Number.isInteger(pid) && pid !== process.pid && alive(pid))
        throw new DataDirLockedError(dataDir, pid);
      rmSync(file, { force: true });
    }
  }
  throw new AnxError('ANX_DATA_DIR_LOCKED', `cannot take the lock ${file}`, {
    hint: 'another process is starting on this data directory at the same moment: try again',
  });
}
