// The built-in script worker: runs a local command (argv, no shell) with the Context Snapshot on stdin; stdout is the artifact.
import { spawn } from 'node:child_process';
import type { Database, Key } from 'lmdb';
import type { Teamwork } from '../../actors/teamwork.ts';
import type { StageHandler } from '../../actors/worker-runtime.ts';
import { AnxError, describeValue } from '../../runtime/errors.ts';

/** Exit status by which a review script rejects; its stdout is the reason. */
export const REJECT_EXIT_CODE = 10;

/** How to run one role's stages. */
export interface ScriptSpec {
  /** Command and arguments, run without a shell. */
  argv: string[];
  /** Killed and failed after this long (default 10 minutes). */
  timeout_ms?: number;
  cwd?: string;
  /** Environment variables passed through from the host's environment (PATH, HOME and LANG always are). */
  env_allow?: string[];
}

/** A script worker spec that does not follow the rules. */
export class ScriptSpecError extends AnxError {
  constructor(
    message: string,
    hint = 'give the command as an array: ["node", "review.js"], with timeout_ms a positive integer',
  ) {
    super('ANX_SCRIPT_INVALID', message, { hint });
  }
}

const STDOUT_MAX = 16 * 1024 * 1024;
const STDERR_TAIL = 2048;

export function checkScriptSpec(spec: unknown): ScriptSpec {
  if (spec === null || typeof spec !== 'object')
    throw new ScriptSpecError('script expected { argv, timeout_ms? }');
  const s = spec as Record<string, unknown>;
  const argv = s['argv'];
  if (
    !Array.isArray(argv) ||
    argv.length === 0 ||
    !argv.every((a) => typeof a === 'string') ||
    (argv[0] as string).length === 0
  )
    throw new ScriptSpecError(`"argv" expected a non-empty array of strings, got ${describeValue(argv)}`);
  const out: ScriptSpec = { argv: argv as string[] };
  if (s['timeout_ms'] !== undefined) {
    const t = s['timeout_ms'];
    if (typeof t !== 'number' || !Number.isInteger(t) || t <= 0)
      throw new ScriptSpecError(`"timeout_ms" expected a positive integer, got ${describeValue(t)}`);
    out.timeout_ms = t;
  }
  if (s['cwd'] !== undefined) {
    if (typeof s['cwd'] !== 'string') throw new ScriptSpecError('"cwd" expected a directory path');
    out.cwd = s['cwd'];
  }
  if (s['env_allow'] !== undefined) {
    const e = s['env_allow'];
    if (!Array.isArray(e) || !e.every((x) => typeof x === 'string'))
      throw new ScriptSpecError('"env_allow" expected an array of variable names');
    out.env_allow = e as string[];
  }
  return out;
}

/**
 * A stage handler that runs `spec.argv`: the Context Snapshot as JSON on stdin, the task in `ANX_*`
 * variables. Exit 0 delivers stdout (its first line is the summary); exit 10 rejects (review stages) with
 * stdout as the reason; any other exit fails the stage with the tail of stderr; so does the timeout.
 */
export function scriptHandler(spec: ScriptSpec): StageHandler {
  const checked = checkScriptSpec(spec);
  const timeoutMs = checked.timeout_ms ?? 10 * 60_000;
  return async (ctx) => {
    const env: Record<string, string> = {};
    for (const name of ['PATH', 'HOME', 'LANG', ...(checked.env_allow ?? [])]) {
      const v = process.env[name];
      if (v !== undefined) env[name] = v;
    }
    Object.assign(env, {
      ANX_RUN_ID: ctx.task.run_id,
      ANX_TASK_ID: ctx.task.task_id,
      ANX_STAGE: ctx.task.stage,
      ANX_ROLE: ctx.task.role,
      ANX_ATTEMPT: String(ctx.task.attempt),
      ANX_WORKER_DID: ctx.task.did,
    });
    const result = await runScript(checked, env, JSON.stringify(ctx.snapshot), timeoutMs, ctx.signal);
    if (ctx.signal.aborted) return;
    if (result.timedOut) {
      await ctx.fail(`${checked.argv[0]} timed out after ${timeoutMs} ms${tail(result.stderr)}`);
    } else if (result.code === 0) {
      const text = result.stdout.toString('utf8');
      const first = text.split('\n').find((l) => l.trim() !== '') ?? '';
      await ctx.deliver({ value: result.stdout, summary: first.trim().slice(0, 200) });
    } else if (result.code === REJECT_EXIT_CODE && ctx.snapshot.stage !== undefined) {
      const reason = result.stdout.toString('utf8').trim() || result.stderr.toString('utf8').trim();
      await ctx.reject({ reason: reason.slice(0, 2000) || 'rejected' });
    } else {
      const how = result.code === null ? `was killed by ${result.signal}` : `exited with ${result.code}`;
      await ctx.fail(`${checked.argv[0]} ${how}${tail(result.stderr)}`);
    }
  };
}

function tail(stderr: Buffer): string {
  const text = stderr.toString('utf8').trim();
  if (text === '') return '';
  return `: ${text.length > STDERR_TAIL ? `…${text.slice(-STDERR_TAIL)}` : text}`;
}

interface ScriptResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: Buffer;
  stderr: Buffer;
  timedOut: boolean;
}

function runScript(
  spec: ScriptSpec,
  env: Record<string, string>,
  input: string,
  timeoutMs: number,
  signal: AbortSignal,
): Promise<ScriptResult> {
  return new Promise((resolve) => {
    const [cmd, ...args] = spec.argv as [string, ...string[]];
    const child = spawn(cmd, args, {
      env,
      stdio: ['pipe', 'pipe', 'pipe'],
      shell: false,
      ...(spec.cwd === undefined ? {} : { cwd: spec.cwd }),
    });
    const out: Buffer[] = [];
    let outSize = 0;
    let err = Buffer.alloc(0);
    let timedOut = false;
    const kill = () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    };
    const timer = setTimeout(() => {
      timedOut = true;
      kill();
    }, timeoutMs);
    signal.addEventListener('abort', kill, { once: true });
    child.stdout.on('data', (d: Buffer) => {
      outSize += d.length;
      if (outSize <= STDOUT_MAX) out.push(d);
      else kill();
    });
    child.stderr.on('data', (d: Buffer) => {
      err = Buffer.concat([err, d]);
      if (err.length > STDERR_TAIL * 2) err = err.subarray(err.length - STDERR_TAIL * 2);
    });
    child.stdin.on('error', () => {});
    child.stdin.end(input);
    const finish = (code: number | null, sig: NodeJS.Signals | null) => {
      clearTimeout(timer);
      signal.removeEventListener('abort', kill);
      resolve({ code, signal: sig, stdout: Buffer.concat(out), stderr: err, timedOut });
    };
    child.once('error', (e) => {
      err = Buffer.from(String((e as Error).message));
      finish(127, null);
    });
    child.once('close', finish);
  });
}

/** Script workers bound to local DIDs, kept in LMDB so a restarted daemon runs them again. */
const ROLE_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

export class ScriptWorkers {
  private readonly db: Database<unknown, Key>;

  constructor(private readonly teamwork: Teamwork) {
    this.db = teamwork.system.store.root.openDB({ name: 'script_workers', useRecords: false } as never);
  }

  /** Registers (and persists) a script for `role` on the local identity `did`. */
  async add(did: string, role: string, spec: unknown): Promise<{ did: string; role: string } & ScriptSpec> {
    // A role is a key part here and a name in playbooks: the playbook's own rule for it.
    if (typeof role !== 'string' || !ROLE_NAME.test(role))
      throw new ScriptSpecError(
        `"role" expected a role name of [A-Za-z0-9_.-], at most 64, got ${describeValue(role)}`,
        'use the role as the playbook names it, e.g. developer or reviewer',
      );
    const checked = checkScriptSpec(spec);
    // Registering a worker is a write: refused on a frozen host (the workers' guard is the freeze switch).
    this.teamwork.workers.writeGuard?.('worker.script.register', did);
    const worker = this.teamwork.worker(did);
    await this.db.put([did, role], checked);
    worker.onStage(role, scriptHandler(checked));
    return { did, role, ...checked };
  }

  list(): Array<{ did: string; role: string } & ScriptSpec> {
    const out: Array<{ did: string; role: string } & ScriptSpec> = [];
    for (const { key, value } of this.db.getRange({})) {
      const [did, role] = key as [string, string];
      out.push({ did, role, ...(value as ScriptSpec) });
    }
    return out;
  }

  /** Registers every persisted script worker again (at daemon start). */
  restore(): number {
    let n = 0;
    for (const w of this.list()) {
      try {
        this.teamwork.worker(w.did).onStage(w.role, scriptHandler(w));
        n++;
      } catch {
        // A worker whose identity is gone stays listed but does not run.
      }
    }
    return n;
  }
}
