// Runs one agent command for a task: its own process group, a time limit, a bounded stdout, and nothing left running after it.
import { type ChildProcess, spawn } from 'node:child_process';
import { statSync } from 'node:fs';

/** The most stdout a command may write; more stops it and fails the task (an artifact is at most this). */
export const STDOUT_MAX = 16 * 1024 * 1024;
/** The longest time limit a command may have: what a Node timer holds. */
export { MAX_TIMER_MS } from '../../runtime/clock.ts';

/** How much of the end of stderr is kept for the error of a failed task. */
const STDERR_TAIL = 2048;
/** After the command exits, how long its pipes may stay open (held by a process that left its group). */
const CLOSE_GRACE_MS = 1000;

export interface ProcessSpec {
  argv: string[];
  cwd?: string;
  env: Record<string, string>;
  /** Written to stdin, then closed; undefined: no stdin. */
  stdin?: string;
  timeoutMs: number;
  /** Between SIGTERM and SIGKILL when the command is stopped. */
  graceMs: number;
  /** Stops the command (SIGTERM to its group, SIGKILL after `graceMs`). */
  signal: AbortSignal;
  onStdout?(chunk: Buffer): void;
  onStderr?(chunk: Buffer): void;
}

export interface ProcessResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: Buffer;
  /** The end of stderr (at most twice `STDERR_TAIL` characters). */
  stderr: string;
  timedOut: boolean;
  /** Stdout passed `STDOUT_MAX`: what was read is not the whole output. */
  tooLarge: boolean;
  /** Stopped by `signal`, or never started because it was already aborted. */
  aborted: boolean;
  /** The command could not be started. */
  spawnError?: string;
}

/** `: <the end of stderr>` for an error message, or nothing when stderr was empty. */
export function stderrTail(stderr: string): string {
  const text = stderr.trim();
  if (text === '') return '';
  return `: ${text.length > STDERR_TAIL ? `…${text.slice(-STDERR_TAIL)}` : text}`;
}

/** Process groups of commands still running, so that a forced exit can end them all. */
const liveGroups = new Set<number>();

function signalGroup(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(-pid, sig);
  } catch {
    // The group is gone already.
  }
}

/**
 * SIGKILLs every command this process still runs, with whatever they started: for a second Ctrl-C,
 * when waiting for the graceful stop is not wanted.
 */
export function killAllCommands(): void {
  for (const pid of liveGroups) signalGroup(pid, 'SIGKILL');
}

function notStarted(spawnError: string | undefined, aborted: boolean): ProcessResult {
  return {
    code: null,
    signal: null,
    stdout: Buffer.alloc(0),
    stderr: '',
    timedOut: false,
    tooLarge: false,
    aborted,
    ...(spawnError === undefined ? {} : { spawnError }),
  };
}

/**
 * Runs `spec.argv` (no shell) in a process group of its own. A time-out, an abort or too much stdout
 * stops the whole group (SIGTERM, then SIGKILL after `graceMs`); when the command exits, whatever it
 * left running in its group is killed, so the result never waits on a background process.
 *
 * @example
 * ```ts
 * const r = await runProcess({ argv: ['echo', 'hi'], env: {}, timeoutMs: 5000, graceMs: 1000, signal });
 * r.code; // 0, r.stdout: "hi\n"
 * ```
 */
export function runProcess(spec: ProcessSpec): Promise<ProcessResult> {
  if (spec.signal.aborted) return Promise.resolve(notStarted(undefined, true));
  if (spec.cwd !== undefined) {
    let isDir = false;
    try {
      isDir = statSync(spec.cwd).isDirectory();
    } catch {
      // Missing: said below.
    }
    if (!isDir) return Promise.resolve(notStarted(`the working directory ${spec.cwd} does not exist`, false));
  }
  return new Promise((resolveResult) => {
    const [cmd, ...args] = spec.argv as [string, ...string[]];
    let child: ChildProcess;
    try {
      child = spawn(cmd, args, {
        env: spec.env,
        ...(spec.cwd === undefined ? {} : { cwd: spec.cwd }),
        stdio: [spec.stdin === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
        shell: false,
        detached: true,
      });
    } catch (err) {
      resolveResult(notStarted((err as Error).message, false));
      return;
    }
    const pid = child.pid;
    if (pid !== undefined) liveGroups.add(pid);
    const out: Buffer[] = [];
    let outSize = 0;
    let err = '';
    const errDecoder = new TextDecoder();
    let timedOut = false;
    let tooLarge = false;
    let aborted = false;
    let spawnError: string | undefined;
    let killTimer: ReturnType<typeof setTimeout> | undefined;
    let closeTimer: ReturnType<typeof setTimeout> | undefined;
    let exited: { code: number | null; signal: NodeJS.Signals | null } | undefined;
    const stop = () => {
      if (pid === undefined) return;
      signalGroup(pid, 'SIGTERM');
      killTimer ??= setTimeout(() => signalGroup(pid, 'SIGKILL'), spec.graceMs);
    };
    const onAbort = () => {
      aborted = true;
      stop();
    };
    const timer = setTimeout(() => {
      timedOut = true;
      stop();
    }, spec.timeoutMs);
    spec.signal.addEventListener('abort', onAbort, { once: true });
    child.stdout?.on('data', (d: Buffer) => {
      outSize += d.length;
      if (outSize > STDOUT_MAX) {
        if (!tooLarge) stop();
        tooLarge = true;
        return;
      }
      out.push(d);
      spec.onStdout?.(d);
    });
    child.stderr?.on('data', (d: Buffer) => {
      err += errDecoder.decode(d, { stream: true });
      if (err.length > STDERR_TAIL * 2) err = err.slice(-STDERR_TAIL * 2);
      spec.onStderr?.(d);
    });
    if (child.stdin) {
      child.stdin.on('error', () => {});
      child.stdin.end(spec.stdin);
    }
    let done = false;
    const finish = (code: number | null, signal: NodeJS.Signals | null) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      if (killTimer !== undefined) clearTimeout(killTimer);
      if (closeTimer !== undefined) clearTimeout(closeTimer);
      spec.signal.removeEventListener('abort', onAbort);
      if (pid !== undefined) liveGroups.delete(pid);
      resolveResult({
        code,
        signal,
        stdout: Buffer.concat(out),
        stderr: err,
        timedOut,
        tooLarge,
        aborted,
        ...(spawnError === undefined ? {} : { spawnError }),
      });
    };
    child.once('error', (e) => {
      spawnError = e.message;
      if (child.pid === undefined) finish(null, null);
    });
    child.once('exit', (code, signal) => {
      exited = { code, signal };
      // What the command left running in its group is stopped with it.
      if (pid !== undefined) signalGroup(pid, 'SIGKILL');
      // A process that left the group may still hold the pipes: do not wait on it.
      closeTimer = setTimeout(() => {
        child.stdout?.destroy();
        child.stderr?.destroy();
        finish(code, signal);
      }, CLOSE_GRACE_MS);
    });
    child.once('close', (code, signal) => finish(exited?.code ?? code, exited?.signal ?? signal));
  });
}
