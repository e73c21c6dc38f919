// The data directory's lock: one host (a daemon's, or one embedded in a program) per directory at a time.
import { randomBytes } from 'node:crypto';
import { linkSync, mkdirSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
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

/** Who holds a lock file: a pid and, where `/proc` tells it, that process's start time. */
interface Holder {
  pid: number;
  start?: string;
}

/**
 * What `/proc` says of process `pid`: its state letter (`Z` for a zombie) and when it started (clock
 * ticks since boot); undefined when it is gone or `/proc` is not there.
 */
export function processStat(pid: number): { state: string; start: string } | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (in parentheses, which may hold spaces): state is field 3, starttime 22.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { state: fields[0] ?? '', start: fields[19] ?? '' };
  } catch {
    return undefined;
  }
}

/** When the process `pid` started (clock ticks since boot, from `/proc`), or undefined where unknown. */
export function startTimeOf(pid: number): string | undefined {
  return processStat(pid)?.start;
}

function parseHolder(text: string): Holder | undefined {
  const [pid, start] = text.trim().split(' ');
  const n = Number(pid);
  if (!Number.isSafeInteger(n) || n <= 0) return undefined;
  return start === undefined ? { pid: n } : { pid: n, start };
}

/**
 * The holder is a live process: its pid exists and, when both are known, it started when the lock
 * says (so a pid reused after a reboot or a crash is not taken for the holder).
 */
function alive(holder: Holder): boolean {
  try {
    process.kill(holder.pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  if (holder.start === undefined) return true;
  const start = startTimeOf(holder.pid);
  return start === undefined || start === holder.start;
}

function readText(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}

function exclusiveLink(from: string, to: string): boolean {
  try {
    linkSync(from, to);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  }
}

const pause = new Int32Array(new SharedArrayBuffer(4));
function sleepSync(ms: number): void {
  Atomics.wait(pause, 0, 0, ms);
}

/**
 * Replaces the stale lock `file` (whose text was `stale`) by ours (`mine`, a complete file linked in
 * place), under a guard file so that two processes taking over the same stale lock cannot both
 * succeed. False when another process got there first: look again.
 */
function takeOver(file: string, stale: string, mine: string): boolean {
  const guard = `${file}.takeover`;
  if (!exclusiveLink(mine, guard)) {
    // Another process is taking over right now; its guard is stale only if that process died in the act.
    const text = readText(guard);
    const holder = text === undefined ? undefined : parseHolder(text);
    if (holder !== undefined && !alive(holder)) rmSync(guard, { force: true });
    sleepSync(2);
    return false;
  }
  try {
    // Under the guard nobody else replaces a stale lock, and nobody removes a lock while its holder lives.
    if (readText(file) === stale) rmSync(file, { force: true });
    return exclusiveLink(mine, file);
  } finally {
    rmSync(guard, { force: true });
  }
}

/**
 * Takes the lock of `dataDir` (creating the directory, mode 0700, if needed): the file `daemon.lock`
 * holding this process's pid and start time, put in place whole (a complete file is linked under
 * the name, so nobody sees it empty). A lock left by a process that no longer exists (a crash,
 * `kill -9`, a reboot that gave its pid to another program) is stale and taken over. Throws
 * `DataDirLockedError` while a live process, this one included, holds it.
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
  const start = startTimeOf(process.pid);
  const text = start === undefined ? String(process.pid) : `${process.pid} ${start}`;
  const mine = `${file}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
  writeFileSync(mine, text, { mode: 0o600 });
  try {
    const taken = (): DataDirLock => {
      held.add(key);
      let released = false;
      return {
        dataDir,
        release() {
          if (released) return;
          released = true;
          held.delete(key);
          if (readText(file) === text) rmSync(file, { force: true });
        },
      };
    };
    for (let attempt = 0; attempt < 200; attempt++) {
      if (exclusiveLink(mine, file)) return taken();
      const found = readText(file);
      if (found === undefined) continue; // released in between: try again
      const holder = parseHolder(found);
      if (holder !== undefined && alive(holder)) throw new DataDirLockedError(dataDir, holder.pid);
      if (takeOver(file, found, mine)) return taken();
    }
  } finally {
    rmSync(mine, { force: true });
  }
  throw new AnxError('ANX_DATA_DIR_LOCKED', `cannot take the lock ${file}`, {
    hint: 'other processes are starting on this data directory at the same moment: try again',
  });
}
