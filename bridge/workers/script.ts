// The built-in script worker: runs a local command (argv, no shell) with the Context Snapshot on stdin; stdout is the artifact.
import type { Database, Key } from 'lmdb';
import type { Teamwork } from '../../actors/teamwork.ts';
import type { StageHandler } from '../../actors/worker-runtime.ts';
import { AnxError, describeValue } from '../../runtime/errors.ts';
import { MAX_TIMER_MS, runProcess, STDOUT_MAX, stderrTail } from './process.ts';

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

/** Between SIGTERM and SIGKILL when a script is stopped (time-out, abort). */
const KILL_GRACE_MS = 2000;

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
    if (typeof t !== 'number' || !Number.isInteger(t) || t <= 0 || t > MAX_TIMER_MS)
      throw new ScriptSpecError(
        `"timeout_ms" expected a positive integer of at most ${MAX_TIMER_MS} ms (about 24 days), got ${describeValue(t)}`,
      );
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
    const result = await runProcess({
      argv: checked.argv,
      ...(checked.cwd === undefined ? {} : { cwd: checked.cwd }),
      env,
      stdin: JSON.stringify(ctx.snapshot),
      timeoutMs,
      graceMs: KILL_GRACE_MS,
      signal: ctx.signal,
    });
    if (ctx.signal.aborted || result.aborted) return;
    if (result.spawnError !== undefined) {
      await ctx.fail(`cannot run ${checked.argv[0]}: ${result.spawnError}`);
    } else if (result.timedOut) {
      await ctx.fail(`${checked.argv[0]} timed out after ${timeoutMs} ms${stderrTail(result.stderr)}`);
    } else if (result.tooLarge) {
      await ctx.fail(`${checked.argv[0]} wrote more than ${STDOUT_MAX} bytes to stdout`);
    } else if (result.code === 0) {
      const text = result.stdout.toString('utf8');
      const first = text.split('\n').find((l) => l.trim() !== '') ?? '';
      await ctx.deliver({ value: result.stdout, summary: first.trim().slice(0, 200) });
    } else if (result.code === REJECT_EXIT_CODE && ctx.snapshot.stage !== undefined) {
      const reason = result.stdout.toString('utf8').trim() || result.stderr.trim();
      await ctx.reject({ reason: reason.slice(0, 2000) || 'rejected' });
    } else {
      const how = result.code === null ? `was killed by ${result.signal}` : `exited with ${result.code}`;
      await ctx.fail(`${checked.argv[0]} ${how}${stderrTail(result.stderr)}`);
    }
  };
}

/** A role name a script worker can take. */
const ROLE_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

/** Raised when a script worker to remove is not registered. */
export class ScriptWorkerNotFoundError extends AnxError {
  constructor(did: string, role: string) {
    super('ANX_SCRIPT_NOT_FOUND', `no script worker is registered for ${did} as ${role}`, {
      hint: 'anx-runtime worker scripts lists the registered ones',
    });
  }
}

/** The key of one registration (a DID and a role) in `ScriptWorkers`' map of handlers. */
function offKey(did: string, role: string): string {
  return `${did}\u0000${role}`;
}

/** Script workers bound to local DIDs, kept in LMDB so a restarted daemon runs them again. */
export class ScriptWorkers {
  private readonly db: Database<unknown, Key>;
  /** What takes each registered script's handler back, by `offKey(did, role)`. */
  private readonly offs = new Map<string, () => void>();

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
    this.offs.set(offKey(did, role), worker.onStage(role, scriptHandler(checked)));
    this.audit('worker.script.register', did, role, checked);
    return { did, role, ...checked };
  }

  /**
   * Removes the script registered for `did` as `role`: its tasks from now on wait for another worker
   * (a command already running finishes). Refused on a frozen host, like registering.
   */
  async remove(did: string, role: string): Promise<{ did: string; role: string } & ScriptSpec> {
    const found = typeof did === 'string' && typeof role === 'string' ? this.db.get([did, role]) : undefined;
    if (found === undefined) throw new ScriptWorkerNotFoundError(String(did), String(role));
    this.teamwork.workers.writeGuard?.('worker.script.remove', did);
    await this.db.remove([did, role]);
    const key = offKey(did, role);
    this.offs.get(key)?.();
    this.offs.delete(key);
    this.audit('worker.script.remove', did, role, found as ScriptSpec);
    return { did, role, ...(found as ScriptSpec) };
  }

  /** A registration runs commands on this host for every task: each one, and each removal, is audited. */
  private audit(action: string, did: string, role: string, spec: ScriptSpec): void {
    this.teamwork.secretaries.authorizer.auditAllow(
      { actor: did, principal: did, action, resource: `worker:${did}` },
      { role, argv: spec.argv, ...(spec.cwd === undefined ? {} : { cwd: spec.cwd }) },
    );
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
        this.offs.set(offKey(w.did, w.role), this.teamwork.worker(w.did).onStage(w.role, scriptHandler(w)));
        n++;
      } catch {
        // A worker whose identity is gone stays listed but does not run.
      }
    }
    return n;
  }
}
