// The worker runtime: stage handlers registered by role for a local DID, run after their assignment is committed.
import { createHash } from 'node:crypto';
import type { Database, Key } from 'lmdb';
import { isArtifactRef } from '../machines/playbook/compile.ts';
import { buildContextSnapshot, type ContextSnapshot } from '../machines/playbook/context.ts';
import type { ArtifactRef } from '../machines/playbook/definition.ts';
import type { EnvelopeContext } from '../runtime/envelope/envelope.ts';
import { AnxError, describeValue } from '../runtime/errors.ts';
import type { EventV1 } from '../runtime/events/event.ts';
import type { Keystore } from '../runtime/identity/keystore.ts';
import type { ActorSystem } from '../runtime/kernel/actor-system.ts';
import type { ArtifactContent } from '../runtime/vault/types.ts';
import { TaskNotRunningError, TeamworkInputError } from './errors.ts';
import type { InboxRecord, InboxTap } from './inbox-tap.ts';
import { type PlaybookRuns, runAddress, runStateOf } from './playbook-run.ts';
import { WORKER_ANSWER, WORKER_REQUESTS, type WorkerLink } from './remote-worker.ts';
import type { Acting, RemoteSigner, VaultService } from './vault-service.ts';

/** One assignment, as the run sent it in `stage.assign`. */
export interface StageTask {
  did: string;
  run_id: string;
  task_id: string;
  stage: string;
  role: string;
  attempt: number;
  timeout_ms: number;
  enclave_id: string | null;
  /**
   * The DID that assigned the task when its run lives on another host (the run's coordinator): reads and
   * answers go to it over the relay. Absent for runs of this host.
   */
  home?: string;
  /** The Context Snapshot: objective, brief, input refs, bounded summaries of earlier stages. */
  context: ContextSnapshot;
}

/** What a handler delivers: stored in the vault as the worker, then handed to the run as a ref. */
export interface Delivery {
  /** Defaults to the stage's expected output kind. */
  kind?: string;
  /** Defaults to the stage's expected output key. */
  key?: string;
  value: string | Uint8Array;
  summary?: string;
  /** A voter's answer, for vote stages. */
  choice?: string;
}

/** The handler's view of its task. Exactly one of deliver, reject or fail settles it. */
export interface StageContext {
  task: StageTask;
  snapshot: ContextSnapshot;
  /**
   * Aborted when the run no longer needs the task (aborted, or the stage moved on): on this host with a
   * `TaskNotRunningError` (`ANX_TASK_NOT_RUNNING`) as its reason.
   */
  signal: AbortSignal;
  vault: {
    /** Latest version of a key of the run's Enclave, or exactly the version a ref names. */
    get(keyOrRef: string | ArtifactRef): Promise<ArtifactContent>;
    /** The content as UTF-8 text. */
    text(keyOrRef: string | ArtifactRef): Promise<string>;
  };
  deliver(delivery: Delivery): Promise<ArtifactRef>;
  reject(rejection: { reason: string; target?: string }): Promise<void>;
  fail(error: unknown, options?: { fatal?: boolean }): Promise<void>;
  /** Reports progress into the trace of the run and the task; only until the task is answered. */
  progress(progress: StageProgress): Promise<void>;
}

export type StageHandler = (ctx: StageContext) => Promise<void> | void;

/** Kinds of progress a worker may report while it works. */
export const PROGRESS_KINDS = ['reasoning', 'message', 'tool', 'status'] as const;

/**
 * Progress of a task (streamed tokens, a tool call, a status line): an EventV1 in the trace of the run
 * and the task, never applied to the run.
 */
export interface StageProgress {
  kind: (typeof PROGRESS_KINDS)[number];
  payload: unknown;
}

/** Largest payload of one progress event, as UTF-8 JSON. */
export const PROGRESS_MAX_BYTES = 64 * 1024;

/** A local identity's handle for registering stage handlers. */
export interface Worker {
  did: string;
  /** Runs `handler` for each task of `role` assigned to this DID; returns a function that unregisters it. */
  onStage(role: string, handler: StageHandler): () => void;
}

/** What the done mark of a task records: when it was answered, and the ref it delivered. */
export interface TaskAnswered {
  at: number;
  ref?: ArtifactRef;
}

/** Inbox records that belong to one task: pruned with the task's done mark once it is over. */
const TASK_RECORDS: ReadonlySet<string> = new Set([
  'stage.assign',
  'stage.cancel',
  WORKER_ANSWER,
  ...WORKER_REQUESTS,
]);

/** How often finished tasks are pruned, and how many at most in one sweep. */
const PRUNE_EVERY_MS = 10 * 60_000;
const PRUNE_BATCH = 1000;
/** The first sweep waits until the host has started and replayed what it had to. */
const PRUNE_FIRST_MS = 30_000;

/** How long a claim on a task lasts unless renewed (a remote worker renews its claims at every poll). */
export const CLAIM_LEASE_MS = 15_000;
/** Longest lease a claim may ask for. */
export const CLAIM_LEASE_MAX_MS = 10 * 60_000;
/** The holder named for a task taken by a handler registered in this host's process. */
export const LOCAL_HOLDER = 'a handler in the host process';

/** Who is working on a task: a handler here, or a worker process that claimed it through the API. */
export interface TaskClaim {
  holder: string;
  /** Until when the claim holds unless renewed (ms since the epoch; absent for a handler here). */
  until?: number;
}

/** What a worker process asks of `WorkerRuntime.claim`. */
export interface ClaimRequest {
  /** Who claims: a label unique to the worker process (its pid and host, say). */
  holder: string;
  /** Tasks to start on. */
  take?: string[];
  /** Tasks this holder is working on already: kept, also when the host restarted meanwhile. */
  renew?: string[];
  /** Tasks this holder stopped working on unanswered: free for the next worker at once. */
  release?: string[];
  /** How long the claims hold unless renewed; default 15 s. */
  leaseMs?: number;
}

export interface ClaimResult {
  /** Tasks of `take` and `renew` the holder has until `until`. */
  granted: string[];
  until: number;
  /** Tasks it does not have, with why (`holder` names who has it). */
  refused: Array<{ task_id: string; reason: string; holder?: string }>;
}

/** Deterministic envelope id of a task's outcome: a handler run again after a crash sends nothing twice. */
function outcomeId(did: string, taskId: string): string {
  return createHash('sha256').update(`${did}\u0000${taskId}`).digest('base64url').slice(0, 32);
}

/**
 * Hands each committed `stage.assign` of a registered role to its handler, never inside a transition.
 * Handler execution is at-least-once: an assignment whose outcome was not committed before a crash is
 * handed again after the restart; the run accepts one outcome per task id.
 */
export class WorkerRuntime {
  private readonly done: Database<unknown, Key>;
  /** Called before every change it makes (the host's freeze switch); throws to refuse the change. */
  writeGuard: ((action: string, actor: string) => void) | undefined;
  /**
   * Asked for every assignment from a run of another host before it is taken: throws a typed refusal
   * when its sender may not give work to the DID (see `ActorAuthorizer.authorizeAssignment`).
   */
  assignGuard:
    | ((assigner: string, worker: string, cap: unknown, context: EnvelopeContext) => void)
    | undefined;
  /** Remote assignments refused by `assignGuard`, until the refusal reached their home. */
  private readonly refusedTasks = new Set<string>();
  /** False while the host holds worker commands (frozen): assignments then come only through the inbox. */
  commandsFlowing: () => boolean = () => true;
  private readonly handlers = new Map<string, Map<string, StageHandler>>();
  private readonly unwatch = new Map<string, () => void>();
  private readonly inflight = new Map<string, AbortController>();
  /** Keys of running handlers of local runs, by run id: what a run's status change may stop. */
  private readonly inflightByRun = new Map<string, Set<string>>();
  /** Tasks whose answer is being committed, each with the promise that settles with that commit. */
  private readonly settled = new Map<string, Promise<void>>();
  /** Promises of running handlers, so callers (tests, shutdown) can wait for them. */
  private readonly running = new Set<Promise<void>>();
  private readonly unsubscribe: () => void;
  /** Per DID polled through `pending`: assignments that may still be open. */
  private readonly candidates = new Map<string, Map<string, StageTask>>();
  /** Assignments from runs of other hosts, by DID and task id: where their reads and answers go. */
  private readonly remote = new Map<string, StageTask>();
  /**
   * Who works on which open task (by DID and task id): a handler of this process, or a worker process
   * that claimed it. Two workers serving one DID and role then never both start the same task.
   */
  private readonly claims = new Map<string, TaskClaim>();
  /** When the assignments polled through `pending` were committed (their inbox record's time). */
  private readonly assignedAt = new Map<string, number>();
  /** Claims of tasks assigned before this moment were lost with the previous process: see `claim`. */
  private readonly startedAt: number;
  /** DIDs whose inbox is followed for remote assignments. */
  private readonly followed = new Set<string>();
  private readonly unfollow: Array<() => void> = [];
  /** Sends reads and answers of remote assignments to their home (set by the composition). */
  link: WorkerLink | undefined;

  constructor(
    private readonly system: ActorSystem,
    private readonly keystore: Keystore,
    private readonly tap: InboxTap,
    private readonly runs: PlaybookRuns,
    private readonly vault: VaultService,
  ) {
    this.done = system.store.root.openDB({ name: 'worker_tasks', useRecords: false } as never);
    this.startedAt = system.clock.now();
    this.unsubscribe = system.events.subscribe((events) => this.onEvents(events));
    this.schedulePrune(PRUNE_FIRST_MS);
  }

  private schedulePrune(ms: number): void {
    this.pruneHandle = this.system.clock.setTimeout(() => {
      if (this.closed) return;
      // A full batch means more may be waiting: the next sweep comes sooner.
      void this.prune().then(
        (n) => this.schedulePrune(n >= PRUNE_BATCH ? 1000 : PRUNE_EVERY_MS),
        () => this.schedulePrune(PRUNE_EVERY_MS),
      );
    }, ms);
  }

  /**
   * Forgets tasks that are over: for each done mark whose run has finished (a run of this host that
   * completed, failed or was aborted; for a run of another host, a task answered or cancelled here), the
   * task's inbox records (its assignment and cancel, and the worker requests and answers about it) and
   * then the mark go in one commit, so a restart never finds an assignment without its mark. At most
   * `limit` tasks per call; resolves with how many were pruned, once that is committed.
   */
  async prune(limit = PRUNE_BATCH): Promise<number> {
    const byDid = new Map<string, Set<string>>();
    const add = (did: string, taskId: string) => {
      let set = byDid.get(did);
      if (set === undefined) {
        set = new Set();
        byDid.set(did, set);
      }
      set.add(taskId);
    };
    const ended = new Map<string, string | null>();
    const marks: Array<[string, string]> = [];
    for (const key of this.done.getKeys({})) {
      const [did, taskId] = key as [string, string];
      const runId = taskId.slice(0, Math.max(0, taskId.indexOf('/')));
      if (this.runs.has(runId)) {
        // The coordinator of an ended run (whose inbox holds the requests of remote workers), or null.
        let coordinator = ended.get(runId);
        if (coordinator === undefined) {
          const state = runStateOf(this.system.info(runAddress(runId))?.value);
          coordinator =
            state === 'completed' || state === 'failed' || state === 'aborted'
              ? this.runs.context(runId).context.coordinator
              : null;
          ended.set(runId, coordinator);
        }
        if (coordinator === null) continue;
        if (coordinator !== did) add(coordinator, taskId);
      } else if (this.inflight.has(`${did}\u0000${taskId}`)) continue;
      add(did, taskId);
      marks.push([did, taskId]);
      if (marks.length >= limit) break;
    }
    for (const [did, taskIds] of byDid) {
      for (const { seq, value } of this.system.records('inbox', did)) {
        const r = value as { type?: string; ctx?: { task_id?: string }; body?: { task_id?: unknown } };
        const taskId = r.ctx?.task_id ?? r.body?.task_id;
        if (typeof r.type === 'string' && TASK_RECORDS.has(r.type) && taskIds.has(taskId as string))
          this.system.commits.remove(this.system.store.records, ['inbox', did, seq]);
      }
    }
    for (const [did, taskId] of marks) {
      this.system.commits.remove(this.done, [did, taskId]);
      this.remote.delete(`${did}\u0000${taskId}`);
    }
    if (marks.length > 0) await this.system.commits.flush();
    return marks.length;
  }

  /**
   * Fast path: the run's `stage.started` event is committed in the same transaction as the outbox entry
   * of its `stage.assign`, so once it is heard the assignment is durable and the handler may start, one
   * commit earlier than through the worker's inbox. The snapshot is rebuilt from the run's committed
   * context exactly as the run built it. The inbox stays the path after a restart (and for DIDs whose
   * handler registers later); both paths meet in `dispatch`, which runs a task once per process.
   */
  private onEvents(events: readonly EventV1[]): void {
    if (this.handlers.size === 0) return;
    // Assignments whose inbox record landed in this same commit (handed over to an idle worker DID):
    // the inbox tap hands those over as they were sent, with no snapshot to rebuild here.
    let inboxed: Set<string> | undefined;
    for (const e of events) {
      if (e.kind !== 'message' || e.actor === undefined || e.task_id === undefined) continue;
      if ((e.payload as { type?: unknown } | null)?.type !== 'stage.assign' || !this.handlers.has(e.actor))
        continue;
      inboxed ??= new Set();
      inboxed.add(`${e.actor}\u0000${e.task_id}`);
    }
    // A commit usually carries several status events of one run: its handlers are checked once, against
    // the state the whole commit left, before any new task of it starts.
    let moved: Set<string> | undefined;
    for (const e of events) {
      if (e.kind !== 'status' || e.run_id === undefined || !this.inflightByRun.has(e.run_id)) continue;
      if (e.actor === undefined || !e.actor.startsWith('run/')) continue;
      moved ??= new Set();
      moved.add(e.run_id);
    }
    if (moved !== undefined) for (const runId of moved) this.abortMovedOn(runId);
    for (const e of events) {
      if (
        e.kind !== 'status' ||
        e.run_id === undefined ||
        e.actor === undefined ||
        !e.actor.startsWith('run/')
      )
        continue;
      const p = e.payload as { state?: unknown; workers?: unknown; stage?: unknown } | null;
      if (p?.state !== 'stage.started' || !Array.isArray(p.workers) || !this.commandsFlowing()) continue;
      if (!p.workers.some((w) => typeof w === 'string' && this.handlers.has(w))) continue;
      try {
        const skip = inboxed === undefined ? undefined : (key: string) => inboxed.has(key);
        for (const task of this.tasksOfStage(e.run_id, String(p.stage), skip)) this.dispatch(task);
      } catch {
        // The inbox path still delivers the assignment.
      }
    }
  }

  /** Fires the signal of running handlers whose task this run no longer needs (it timed out, moved on, ended). */
  private abortMovedOn(runId: string): void {
    for (const key of this.inflightByRun.get(runId) ?? []) {
      // A handler whose answer is being committed is done: the run moved on because of it.
      if (this.settled.has(key)) continue;
      // Once aborted, a handler still finishing is told no more (every later status of its run came here).
      const controller = this.inflight.get(key);
      if (controller === undefined || controller.signal.aborted) continue;
      const [did, taskId] = key.split('\u0000') as [string, string];
      // So is one whose answer has been committed and which has not returned yet.
      if (this.done.doesExist([did, taskId])) continue;
      if (!this.runs.isRunningTask(runId, taskId, did))
        controller.abort(new TaskNotRunningError(taskId, did));
    }
  }

  /** The running tasks of a run's current stage whose worker has a handler here. */
  private tasksOfStage(runId: string, stageId: string, skip?: (key: string) => boolean): StageTask[] {
    const { context, hash } = this.runs.context(runId);
    const def = this.runs.definition(hash);
    const exec = context.stages[stageId];
    const stage = def?.stages.find((s) => s.id === stageId);
    if (def === undefined || exec === undefined || stage === undefined || context.current !== stageId)
      return [];
    if (exec.status !== 'running' || exec.task_id === null) return [];
    const base = {
      run_id: runId,
      stage: stageId,
      role: stage.role,
      attempt: exec.attempt,
      timeout_ms: stage.timeout_ms,
      enclave_id: context.enclave_id,
    };
    if (exec.shards === null) {
      if (exec.worker === null || !this.handlers.has(exec.worker)) return [];
      if (skip?.(`${exec.worker}\u0000${exec.task_id}`) === true) return [];
      return [
        {
          ...base,
          did: exec.worker,
          task_id: exec.task_id,
          context: buildContextSnapshot(def, context, stageId, def.context_budget_bytes),
        },
      ];
    }
    const count = exec.shards.length;
    return exec.shards.flatMap((shard, index) =>
      shard.status === 'running' &&
      this.handlers.has(shard.worker) &&
      skip?.(`${shard.worker}\u0000${shard.task_id}`) !== true
        ? [
            {
              ...base,
              did: shard.worker,
              task_id: shard.task_id,
              context: buildContextSnapshot(def, context, stageId, def.context_budget_bytes, {
                index,
                count,
              }),
            },
          ]
        : [],
    );
  }

  /** The worker handle of a local identity. */
  worker(did: string): Worker {
    if (!this.keystore.has(did))
      throw new TeamworkInputError(
        `"did" expected a local identity to work as, got ${describeValue(did)}`,
        'a worker writes artifacts as its DID, so this host must hold its key',
      );
    return {
      did,
      onStage: (role, handler) => this.onStage(did, role, handler),
    };
  }

  private onStage(did: string, role: string, handler: StageHandler): () => void {
    if (typeof role !== 'string' || role.length === 0)
      throw new TeamworkInputError('"role" expected a role name');
    let roles = this.handlers.get(did);
    if (roles === undefined) {
      roles = new Map();
      this.handlers.set(did, roles);
    }
    roles.set(role, handler);
    if (!this.unwatch.has(did)) {
      this.follow(did);
      this.unwatch.set(
        did,
        this.tap.watch(did, ['stage.assign', 'stage.cancel'], (d, r) => this.onRecord(d, r)),
      );
    } else {
      // A new role on a watched DID: its assignments already in the inbox are still to do.
      for (const task of this.pending(did)) if (task.role === role) this.dispatch(task);
    }
    return () => {
      if (roles.get(role) === handler) roles.delete(role);
    };
  }

  /**
   * Assignments of `did` that are still running and have no committed outcome (what a remote worker
   * polls). The first call reads the DID's inbox; after that the tap keeps the candidates up to date, so
   * a poll costs the open tasks, not the inbox's history.
   */
  pending(did: string): StageTask[] {
    if (!this.keystore.has(did))
      throw new TeamworkInputError(`"did" expected a local identity, got ${describeValue(did)}`);
    this.follow(did);
    let open = this.candidates.get(did);
    if (open === undefined) {
      const fresh = new Map<string, StageTask>();
      open = fresh;
      this.candidates.set(did, fresh);
      this.tap.watch(did, ['stage.assign'], (d, record) => {
        const task = this.taskOf(d, record);
        if (task === undefined || !this.open(task)) return;
        fresh.set(task.task_id, task);
        this.assignedAt.set(`${d}\u0000${task.task_id}`, record.ts);
      });
    }
    const out: StageTask[] = [];
    for (const [id, task] of open) {
      if (this.open(task)) out.push(task);
      else {
        open.delete(id);
        this.assignedAt.delete(`${did}\u0000${id}`);
        this.claims.delete(`${did}\u0000${id}`);
      }
    }
    return out;
  }

  /** Who is working on an open task of `did`, if anyone (an expired claim counts as none). */
  claimOf(did: string, taskId: string): TaskClaim | undefined {
    const claim = this.claims.get(`${did}\u0000${taskId}`);
    if (claim === undefined || (claim.until !== undefined && claim.until <= this.system.clock.now()))
      return undefined;
    return claim;
  }

  /**
   * Claims open tasks of `did` for a worker process, so that of several processes serving one DID and
   * role only one starts each task. A claim lasts `leaseMs` (default 15 s) unless renewed; one whose
   * holder stopped renewing (it crashed) lapses, and the task goes to the next worker that asks. Tasks
   * taken by a handler in the host process are refused. Claims live in memory: after a restart of the
   * host, a task assigned before it is refused to new holders for `CLAIM_LEASE_MS`, so the worker that
   * was working on it can renew it first.
   */
  claim(did: string, request: ClaimRequest): ClaimResult {
    const r = request as Partial<ClaimRequest> | null;
    if (r === null || typeof r !== 'object')
      throw new TeamworkInputError('a claim expected {holder, take?, renew?, release?, lease_ms?}');
    if (typeof r.holder !== 'string' || !/^[\x20-\x7e]{1,200}$/.test(r.holder) || r.holder === LOCAL_HOLDER)
      throw new TeamworkInputError(
        `"holder" expected 1-200 printable characters naming the worker process, got ${describeValue(r.holder)}`,
      );
    const ids = (field: 'take' | 'renew' | 'release'): string[] => {
      const v = r[field];
      if (v === undefined) return [];
      if (!Array.isArray(v) || v.length > 1000 || v.some((id) => typeof id !== 'string'))
        throw new TeamworkInputError(`"${field}" expected a list of at most 1000 task ids`);
      return v as string[];
    };
    const take = ids('take');
    const renew = ids('renew');
    const release = ids('release');
    const lease = r.leaseMs ?? CLAIM_LEASE_MS;
    if (!Number.isSafeInteger(lease) || lease < 1000 || lease > CLAIM_LEASE_MAX_MS)
      throw new TeamworkInputError(
        `"lease_ms" expected 1,000 to ${CLAIM_LEASE_MAX_MS.toLocaleString('en-US')} ms, got ${describeValue(lease)}`,
      );
    const holder = r.holder;
    for (const id of release) {
      const key = `${did}\u0000${id}`;
      if (this.claims.get(key)?.holder === holder) this.claims.delete(key);
    }
    const now = this.system.clock.now();
    const open = new Map(this.pending(did).map((t) => [t.task_id, t]));
    const renewing = new Set(renew);
    const result: ClaimResult = { granted: [], until: now + lease, refused: [] };
    for (const id of new Set([...renew, ...take])) {
      const key = `${did}\u0000${id}`;
      if (!open.has(id)) {
        result.refused.push({
          task_id: id,
          reason: 'the task is not open (answered, cancelled or moved on)',
        });
        continue;
      }
      const held = this.claimOf(did, id);
      if (held !== undefined && held.holder !== holder) {
        result.refused.push({ task_id: id, reason: 'another worker is working on it', holder: held.holder });
        continue;
      }
      if (
        held === undefined &&
        !renewing.has(id) &&
        now < this.startedAt + CLAIM_LEASE_MS &&
        (this.assignedAt.get(key) ?? 0) < this.startedAt
      ) {
        result.refused.push({
          task_id: id,
          reason: `the host restarted; a worker that had the task may renew it until ${new Date(this.startedAt + CLAIM_LEASE_MS).toISOString()}`,
        });
        continue;
      }
      this.claims.set(key, { holder, until: now + lease });
      result.granted.push(id);
    }
    return result;
  }

  private pruneHandle: unknown;
  private closed = false;

  /** Resolves when no handler is running. */
  async idle(): Promise<void> {
    while (this.running.size > 0) await Promise.allSettled([...this.running]);
  }

  /**
   * Follows the DID's inbox for assignments from runs of other hosts (and their cancels), so an answer
   * given through the API after a restart still knows where the task's home is.
   */
  private follow(did: string): void {
    if (this.followed.has(did)) return;
    this.followed.add(did);
    const stop = this.tap.watch(did, ['stage.assign', 'stage.cancel'], (d, record) => {
      const key = `${d}\u0000${(record.body as { task_id?: unknown } | null)?.task_id}`;
      if (record.type === 'stage.cancel') {
        if (this.remote.get(key)?.home === record.from) this.end(key);
        return;
      }
      const task = this.taskOf(d, record);
      if (task?.home === undefined || this.done.doesExist([d, task.task_id])) return;
      this.remote.set(key, task);
      try {
        this.assignGuard?.(task.home, d, (record as InboxRecord & { cap?: unknown }).cap, {
          run_id: task.run_id,
          task_id: task.task_id,
          stage: task.stage,
          ...(task.enclave_id === null ? {} : { enclave_id: task.enclave_id }),
        });
      } catch (err) {
        this.refuseAssignment(key, task, err);
      }
    });
    this.unfollow.push(stop);
  }

  /**
   * An assignment whose sender may not give this DID work: no handler sees it, an error event says why,
   * and its home is told the task failed for good (the run's Owner decides what happens next). Until
   * the home has the answer the task stays refused here; after a restart the inbox replay refuses it again.
   */
  private refuseAssignment(key: string, task: StageTask, err: unknown): void {
    this.refusedTasks.add(key);
    const code = err instanceof AnxError ? err.code : 'ANX_FORBIDDEN_ASSIGNER';
    void this.system.emitEvent({
      kind: 'error',
      actor: task.did,
      run_id: task.run_id,
      task_id: task.task_id,
      payload: {
        code,
        message: err instanceof Error ? err.message : String(err),
        assigner: task.home,
        stage: task.stage,
      },
    });
    // Once the home has it, the task's done mark closes it; until then (home unreachable) it stays refused.
    void this.fail(task.did, task.task_id, err, { fatal: true }).then(
      () => this.refusedTasks.delete(key),
      () => {},
    );
  }

  /** A remote task its home cancelled: not open any more, here or after a restart. */
  private end(key: string): void {
    const task = this.remote.get(key);
    this.remote.delete(key);
    this.inflight.get(key)?.abort();
    if (task !== undefined && !this.done.doesExist([task.did, task.task_id]))
      this.system.commits.put(this.done, [task.did, task.task_id], { at: this.system.clock.now() });
  }

  /** The done mark of a task: set once its outcome was committed (here, or at the home of its run). */
  answered(did: string, taskId: string): TaskAnswered | undefined {
    const mark = this.done.get([did, taskId]) as TaskAnswered | number | undefined;
    return typeof mark === 'number' ? { at: mark } : mark;
  }

  private remoteTask(did: string, taskId: string): StageTask | undefined {
    this.follow(did);
    return this.remote.get(`${did}\u0000${taskId}`);
  }

  private taskOf(did: string, record: InboxRecord): StageTask | undefined {
    const b = record.body as Partial<StageTask> | null;
    if (b === null || typeof b !== 'object' || typeof b.task_id !== 'string' || typeof b.run_id !== 'string')
      return undefined;
    // A run of this host assigns as its actor address; a run elsewhere as its coordinator DID.
    const home = record.from.startsWith('did:') ? record.from : undefined;
    return {
      did,
      ...(home === undefined ? {} : { home }),
      run_id: b.run_id,
      task_id: b.task_id,
      stage: String(b.stage),
      role: String(b.role),
      attempt: Number(b.attempt),
      timeout_ms: Number(b.timeout_ms),
      enclave_id: record.ctx?.['enclave_id'] ?? null,
      context: b.context as ContextSnapshot,
    };
  }

  private open(task: StageTask): boolean {
    if (this.done.doesExist([task.did, task.task_id])) return false;
    if (task.home !== undefined) {
      const key = `${task.did}\u0000${task.task_id}`;
      return this.remote.has(key) && !this.refusedTasks.has(key);
    }
    return this.runs.isRunningTask(task.run_id, task.task_id, task.did);
  }

  private onRecord(did: string, record: InboxRecord): void {
    if (record.type === 'stage.cancel') {
      const taskId = (record.body as { task_id?: unknown } | null)?.task_id;
      // Only the run itself (or, for a run of another host, the DID that assigned the task) cancels it.
      if (typeof taskId !== 'string') return;
      const key = `${did}\u0000${taskId}`;
      const from = this.remote.get(key)?.home ?? runAddress(taskId.slice(0, taskId.indexOf('/')));
      if (record.from === from) this.inflight.get(key)?.abort();
      return;
    }
    const task = this.taskOf(did, record);
    if (task !== undefined) this.dispatch(task);
  }

  private dispatch(task: StageTask): void {
    const handler = this.handlers.get(task.did)?.get(task.role);
    if (handler === undefined) return;
    const key = `${task.did}\u0000${task.task_id}`;
    if (this.inflight.has(key) || this.settled.has(key) || !this.open(task)) return;
    // A worker process serving the same DID and role took it first.
    if (this.claimOf(task.did, task.task_id) !== undefined) return;
    this.claims.set(key, { holder: LOCAL_HOLDER });
    const controller = new AbortController();
    this.inflight.set(key, controller);
    // A remote task's signal fires on its home's stage.cancel; a local one's when its run moves on.
    const byRun = task.home === undefined ? this.inflightOf(task.run_id) : undefined;
    byRun?.add(key);
    const p = this.invoke(task, handler, controller).finally(() => {
      this.inflight.delete(key);
      if (this.claims.get(key)?.holder === LOCAL_HOLDER) this.claims.delete(key);
      byRun?.delete(key);
      if (byRun?.size === 0 && this.inflightByRun.get(task.run_id) === byRun)
        this.inflightByRun.delete(task.run_id);
      this.running.delete(p);
    });
    this.running.add(p);
  }

  private inflightOf(runId: string): Set<string> {
    let set = this.inflightByRun.get(runId);
    if (set === undefined) {
      set = new Set();
      this.inflightByRun.set(runId, set);
    }
    return set;
  }

  private async invoke(task: StageTask, handler: StageHandler, controller: AbortController): Promise<void> {
    let outcome = false;
    const once = async <T>(f: () => Promise<T>): Promise<T> => {
      if (outcome) throw new TeamworkInputError(`task ${task.task_id} has already been answered`);
      const r = await f();
      outcome = true;
      return r;
    };
    const ctx: StageContext = {
      task,
      snapshot: task.context,
      signal: controller.signal,
      vault: {
        get: (keyOrRef) => this.read(task, keyOrRef),
        text: async (keyOrRef) => new TextDecoder().decode((await this.read(task, keyOrRef)).content),
      },
      deliver: (d) => once(() => this.deliver(task.did, task.task_id, d)),
      reject: (r) => once(() => this.reject(task.did, task.task_id, r)),
      fail: (e, o) => once(() => this.fail(task.did, task.task_id, e, o)),
      progress: async (p) => {
        if (outcome) throw new TeamworkInputError(`task ${task.task_id} has already been answered`);
        await this.progress(task.did, task.task_id, p);
      },
    };
    try {
      await handler(ctx);
      if (!outcome && !controller.signal.aborted)
        await ctx.fail('the handler returned without delivering, rejecting or failing');
    } catch (err) {
      if (!outcome && !controller.signal.aborted) {
        await ctx.fail(err).catch(() => {});
      }
    }
  }

  private async read(task: StageTask, keyOrRef: string | ArtifactRef): Promise<ArtifactContent> {
    if (task.home !== undefined) return this.viaHome(task, (link) => link.read(task, keyOrRef));
    if (typeof keyOrRef === 'string') {
      if (task.enclave_id === null) throw new TeamworkInputError('the run has no enclave to read from');
      return this.vault.get(task.enclave_id, keyOrRef, task.did);
    }
    return this.vault.resolve(keyOrRef, task.did);
  }

  /** Where the task stands: throws unless it is a running task of `did`. */
  private runningTask(did: string, taskId: string) {
    if (typeof taskId !== 'string' || !taskId.includes('/'))
      throw new TeamworkInputError(
        `"task_id" expected a task id like RUN/STAGE/ATTEMPT, got ${describeValue(taskId)}`,
      );
    const runId = taskId.slice(0, taskId.indexOf('/'));
    if (!this.runs.isRunningTask(runId, taskId, did)) throw new TaskNotRunningError(taskId, did);
    const { context, hash } = this.runs.context(runId);
    const stageId = context.current as string;
    const stage = this.runs.definition(hash)?.stages.find((s) => s.id === stageId);
    if (stage === undefined) throw new TaskNotRunningError(taskId, did);
    return { runId, context, stage };
  }

  /** A call to the home of a remote task; a home that no longer has the task open ends it here too. */
  private async viaHome<T>(task: StageTask, call: (link: WorkerLink) => Promise<T>): Promise<T> {
    if (this.link === undefined)
      throw new TeamworkInputError('this host has no link to the home of runs on other hosts');
    try {
      return await call(this.link);
    } catch (err) {
      if (err instanceof AnxError && err.code === 'ANX_TASK_NOT_RUNNING')
        this.end(`${task.did}\u0000${task.task_id}`);
      throw err;
    }
  }

  /**
   * What a worker reads for its open task (a key of the run's Enclave, or exactly the version a ref names):
   * from this host's vault, or through the home of a run of another host.
   */
  async readTask(
    did: string,
    taskId: string,
    keyOrRef: string | ArtifactRef,
    version?: number,
  ): Promise<ArtifactContent> {
    const remote = this.remoteTask(did, taskId);
    if (remote !== undefined) return this.viaHome(remote, (link) => link.read(remote, keyOrRef, version));
    const { context } = this.runningTask(did, taskId);
    if (typeof keyOrRef !== 'string') return this.vault.resolve(keyOrRef, did);
    if (context.enclave_id === null) throw new TeamworkInputError('the run has no enclave to read from');
    return this.vault.get(context.enclave_id, keyOrRef, did, version);
  }

  /**
   * For a run of this host: what a worker of another host reads, after its signed request was verified.
   * The worker must be a member of the run's Enclave with read, and the task its open assignment.
   */
  async readFor(
    signer: RemoteSigner,
    taskId: string,
    keyOrRef: string | ArtifactRef,
    version?: number,
  ): Promise<ArtifactContent> {
    const runId = typeof taskId === 'string' ? taskId.slice(0, Math.max(0, taskId.indexOf('/'))) : '';
    const enclaveId = this.runs.has(runId) ? this.runs.context(runId).context.enclave_id : null;
    if (enclaveId === null) throw new TaskNotRunningError(String(taskId), signer.did);
    if (typeof keyOrRef === 'string') {
      const content = await this.vault.get(enclaveId, keyOrRef, signer, version);
      this.runningTask(signer.did, taskId);
      return content;
    }
    if (!isArtifactRef(keyOrRef)) throw new TeamworkInputError('"ref" expected an ArtifactRef');
    if (keyOrRef.enclave_id !== enclaveId)
      throw new TeamworkInputError(
        `"ref" expected an artifact of the run's enclave ${enclaveId}, got one of ${keyOrRef.enclave_id}`,
      );
    const content = await this.vault.resolve(keyOrRef, signer);
    this.runningTask(signer.did, taskId);
    return content;
  }

  /** Writes the artifact as `did`, then tells the run (both committed before this resolves). */
  async deliver(did: string, taskId: string, delivery: Delivery): Promise<ArtifactRef> {
    return this.settleDelivery(did, did, taskId, delivery);
  }

  /** For a run of this host: the delivery of a worker of another host, written as that DID. */
  async deliverFor(signer: RemoteSigner, taskId: string, delivery: Delivery): Promise<ArtifactRef> {
    return this.settleDelivery(signer.did, signer, taskId, delivery);
  }

  private async settleDelivery(
    did: string,
    as: Acting,
    taskId: string,
    delivery: Delivery,
  ): Promise<ArtifactRef> {
    if (delivery === null || typeof delivery !== 'object')
      throw new TeamworkInputError('delivery expected { kind?, key?, value, summary? }');
    this.writeGuard?.('stage.deliver', did);
    if (typeof delivery.value !== 'string' && !(delivery.value instanceof Uint8Array))
      throw new TeamworkInputError('"value" expected a string or bytes');
    const remote = as === did ? this.remoteTask(did, taskId) : undefined;
    if (remote !== undefined) {
      const ref = await this.viaHome(remote, (link) => link.deliver(remote, delivery));
      await this.markAnswered(did, taskId);
      return ref;
    }
    // A second delivery while the first is being committed (a handler that delivered twice at once) writes
    // nothing: it gets the outcome that stands, as a worker of another host that sends its answer again does.
    // (A delivery after the answer was committed finds the task no longer running, below.)
    const key = `${did}\u0000${taskId}`;
    if (this.settled.has(key)) {
      // The claim's promise only resolves (when that answer's commit settled, either way).
      for (let pending = this.settled.get(key); pending !== undefined; pending = this.settled.get(key))
        await pending;
      const standing = this.answered(did, taskId);
      if (standing?.ref !== undefined) return standing.ref;
      if (standing !== undefined) throw new TaskNotRunningError(taskId, did);
    }
    const { runId, context, stage } = this.runningTask(did, taskId);
    if (context.enclave_id === null) throw new TeamworkInputError('the run has no enclave to deliver to');
    const summary = typeof delivery.summary === 'string' ? delivery.summary : '';
    // Claimed before the artifact is staged, so no other answer to the task can stage one beside it.
    const release = this.claimAnswer(key);
    let ref: ArtifactRef;
    try {
      ref = await this.vault.put(
        context.enclave_id,
        typeof delivery.key === 'string' ? delivery.key : stage.output.key,
        {
          kind: typeof delivery.kind === 'string' ? delivery.kind : stage.output.kind,
          content: delivery.value,
          summary,
        },
        as,
        { run_id: runId, task_id: taskId, step: stage.id, deferCommit: true },
      );
    } catch (err) {
      release();
      throw err;
    }
    await this.answer(did, taskId, runId, context.enclave_id, stage.id, 'stage.delivered', release, {
      task_id: taskId,
      ref,
      summary,
      ...(typeof delivery.choice === 'string' ? { choice: delivery.choice } : {}),
    });
    return ref;
  }

  /**
   * Marks the task's answer as being committed (see `settled`) and returns what ends that: the answer's
   * commit settled, the claim goes. Synchronous, so nothing can come between a check and the claim.
   */
  private claimAnswer(key: string): () => void {
    let end!: () => void;
    this.settled.set(
      key,
      new Promise<void>((resolve) => {
        end = resolve;
      }),
    );
    return () => {
      this.settled.delete(key);
      end();
    };
  }

  async reject(did: string, taskId: string, rejection: { reason: string; target?: string }): Promise<void> {
    await this.settleRejection(did, taskId, rejection, false);
  }

  /** For a run of this host: the rejection of a reviewer of another host. */
  async rejectFor(
    signer: RemoteSigner,
    taskId: string,
    rejection: { reason: string; target?: string },
  ): Promise<void> {
    await this.settleRejection(signer.did, taskId, rejection, true);
  }

  private async settleRejection(
    did: string,
    taskId: string,
    rejection: { reason: string; target?: string },
    here: boolean,
  ): Promise<void> {
    if (rejection === null || typeof rejection !== 'object' || typeof rejection.reason !== 'string')
      throw new TeamworkInputError('"reason" expected a string saying what must change');
    this.writeGuard?.('stage.reject', did);
    const remote = here ? undefined : this.remoteTask(did, taskId);
    if (remote !== undefined) {
      await this.viaHome(remote, (link) => link.reject(remote, rejection));
      return this.markAnswered(did, taskId);
    }
    const { runId, context, stage } = this.runningTask(did, taskId);
    if (stage.review === undefined)
      throw new TeamworkInputError(
        `stage ${stage.id} is not a review stage: only review stages can reject (deliver or fail instead)`,
      );
    await this.answer(did, taskId, runId, context.enclave_id, stage.id, 'stage.rejected', undefined, {
      task_id: taskId,
      reason: rejection.reason,
      ...(typeof rejection.target === 'string' ? { target: rejection.target } : {}),
    });
  }

  async fail(did: string, taskId: string, error: unknown, options: { fatal?: boolean } = {}): Promise<void> {
    await this.settleFailure(did, taskId, error, options, false);
  }

  /** For a run of this host: the failure a worker of another host reports. */
  async failFor(
    signer: RemoteSigner,
    taskId: string,
    error: string,
    options: { fatal?: boolean } = {},
  ): Promise<void> {
    await this.settleFailure(signer.did, taskId, error, options, true);
  }

  private async settleFailure(
    did: string,
    taskId: string,
    error: unknown,
    options: { fatal?: boolean },
    here: boolean,
  ): Promise<void> {
    // Refused while frozen too: the task stays open (and is retried after a thaw) instead of failing the run.
    this.writeGuard?.('stage.fail', did);
    const message =
      error instanceof AnxError
        ? `${error.code}: ${error.message}`
        : error instanceof Error
          ? error.message
          : String(error);
    const remote = here ? undefined : this.remoteTask(did, taskId);
    if (remote !== undefined) {
      await this.viaHome(remote, (link) => link.fail(remote, message.slice(0, 2000), options.fatal === true));
      return this.markAnswered(did, taskId);
    }
    const { runId, context, stage } = this.runningTask(did, taskId);
    await this.answer(did, taskId, runId, context.enclave_id, stage.id, 'stage.failed', undefined, {
      task_id: taskId,
      error: message.slice(0, 2000),
      ...(options.fatal === true ? { fatal: true } : {}),
    });
  }

  /** Appends a progress event of a running task to the trace (kind reasoning, message, tool or status). */
  async progress(did: string, taskId: string, progress: StageProgress): Promise<void> {
    await this.recordProgress(did, taskId, progress, false);
  }

  /** For a run of this host: progress a worker of another host reports. */
  async progressFor(signer: RemoteSigner, taskId: string, progress: StageProgress): Promise<void> {
    await this.recordProgress(signer.did, taskId, progress, true);
  }

  private async recordProgress(
    did: string,
    taskId: string,
    progress: StageProgress,
    here: boolean,
  ): Promise<void> {
    if (progress === null || typeof progress !== 'object')
      throw new TeamworkInputError('progress expected { kind, payload }');
    this.writeGuard?.('stage.progress', did);
    if (!(PROGRESS_KINDS as readonly unknown[]).includes(progress.kind))
      throw new TeamworkInputError(
        `"kind" expected one of ${PROGRESS_KINDS.join(', ')}, got ${describeValue(progress.kind)}`,
      );
    const size = Buffer.byteLength(JSON.stringify(progress.payload ?? null), 'utf8');
    if (size > PROGRESS_MAX_BYTES)
      throw new TeamworkInputError(
        `"payload" expected at most ${PROGRESS_MAX_BYTES} bytes of JSON, got ${size}`,
        'send long output in several progress events, or deliver it as the artifact',
      );
    const remote = here ? undefined : this.remoteTask(did, taskId);
    if (remote !== undefined) return this.viaHome(remote, (link) => link.progress(remote, progress));
    const { runId, stage } = this.runningTask(did, taskId);
    await this.system.emitEvent({
      kind: progress.kind,
      run_id: runId,
      task_id: taskId,
      step: stage.id,
      payload: progress.payload ?? null,
      metadata: { worker: did },
    });
  }

  /** The home of a remote task answered: the task is done here too. */
  private async markAnswered(did: string, taskId: string): Promise<void> {
    this.remote.delete(`${did}\u0000${taskId}`);
    this.system.commits.put(this.done, [did, taskId], { at: this.system.clock.now() });
    await this.system.commits.flush();
  }

  private async answer(
    did: string,
    taskId: string,
    runId: string,
    enclaveId: string | null,
    stage: string,
    type: string,
    claimed: (() => void) | undefined,
    body: Record<string, unknown>,
  ): Promise<void> {
    // One outcome per task: an answer already staged (settled) or committed (its done mark) stands, and a
    // second one, from a handler that answered twice at once, is dropped as the run would drop it. A
    // delivery claims the task before it stages its artifact (`claimed`: what releases that claim).
    if (type === 'stage.delivered' && !isArtifactRef(body['ref'])) {
      claimed?.();
      throw new TeamworkInputError('"ref" expected an ArtifactRef');
    }
    const key = `${did}\u0000${taskId}`;
    if (claimed === undefined && (this.settled.has(key) || this.done.doesExist([did, taskId]))) return;
    const release = claimed ?? this.claimAnswer(key);
    // The done mark joins the commit of the answer: after a crash, a task is open again only if neither landed.
    const mark: TaskAnswered = { at: this.system.clock.now() };
    if (type === 'stage.delivered') mark.ref = body['ref'] as ArtifactRef;
    this.system.commits.put(this.done, [did, taskId], mark);
    try {
      // The guard above and the done mark make the outcome's id fresh: it was never accepted and is never
      // sent again, so the kernel keeps no duplicate marker for it (one write less in the handoff's commit).
      await this.system.accept(
        [
          this.system.envelope({
            id: outcomeId(did, taskId),
            type,
            from: did,
            to: runAddress(runId),
            body,
            ctx: {
              run_id: runId,
              task_id: taskId,
              stage,
              ...(enclaveId === null ? {} : { enclave_id: enclaveId }),
            },
          }),
        ],
        { fresh: () => true },
      );
    } finally {
      // Once the done mark is committed it answers for the task; until then `settled` does.
      release();
    }
  }

  close(): void {
    this.closed = true;
    this.system.clock.clearTimeout(this.pruneHandle);
    this.unsubscribe();
    for (const c of this.inflight.values()) c.abort();
    for (const u of this.unwatch.values()) u();
    for (const u of this.unfollow) u();
    this.link?.close();
  }
}
