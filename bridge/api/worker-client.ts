// A worker in another process: registers stage handlers for a DID of a daemon and answers its tasks over the local API.
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { ClaimResult, StageProgress, StageTask, TaskClaim } from '../../actors/worker-runtime.ts';
import type { ContextSnapshot } from '../../machines/playbook/context.ts';
import type { ArtifactRef } from '../../machines/playbook/definition.ts';
import type { ApiClient } from './client.ts';

/**
 * One assignment as `GET /v1/workers/:did/tasks` returns it: the worker runtime's own task record, with
 * who is working on it when someone is.
 */
export type RemoteTask = StageTask & { claim?: TaskClaim };

export interface RemoteArtifact {
  meta: {
    key: string;
    version: number;
    hash: string;
    size: number;
    kind: string;
    author: string;
    summary: string;
  };
  content: Uint8Array;
}

/** The handler's view of a task; the same operations as an in-process worker's context. */
export interface RemoteStageContext {
  task: RemoteTask;
  snapshot: ContextSnapshot;
  vault: {
    get(keyOrRef: string | ArtifactRef): Promise<RemoteArtifact>;
    text(keyOrRef: string | ArtifactRef): Promise<string>;
  };
  deliver(delivery: {
    value: string | Uint8Array;
    kind?: string;
    key?: string;
    summary?: string;
    choice?: string;
  }): Promise<ArtifactRef>;
  reject(rejection: { reason: string; target?: string }): Promise<void>;
  fail(error: unknown, options?: { fatal?: boolean }): Promise<void>;
  /** Reports progress (streamed tokens, a status line) into the trace of the run and the task. */
  progress(progress: StageProgress): Promise<void>;
  /**
   * Aborts when the run no longer needs the task (it timed out, was cancelled or moved on: the daemon
   * stopped listing it) or this worker stops; a handler should give up then.
   */
  signal: AbortSignal;
}

export type RemoteStageHandler = (ctx: RemoteStageContext) => Promise<void> | void;

/**
 * Polls a daemon for the DID's open tasks and runs the handler of each task's role once per process.
 * The daemon acts as the DID (it holds its key); answers are idempotent per task, so a handler that runs
 * again after this process restarts cannot make the run see a task twice. A task is claimed before its
 * handler starts and the claim renewed at every poll, so of several processes serving one DID and role
 * only one works on a task; one that stops renewing (it crashed) loses the task to the next after the
 * lease (`leaseMs`, default 15 s), and `stop()` hands its unanswered tasks on at once.
 *
 * @example
 * ```ts
 * const worker = new RemoteWorker(ApiClient.forDataDir(dir), did);
 * worker.onStage('developer', async (ctx) => ctx.deliver({ value: 'diff …', summary: 'login form' }));
 * worker.start();
 * ```
 */
export class RemoteWorker {
  private readonly handlers = new Map<string, RemoteStageHandler>();
  private readonly seen = new Set<string>();
  /** Handlers still running, by task id: aborted when their task leaves the open list. */
  private readonly running = new Map<string, AbortController>();
  private timer: ReturnType<typeof setTimeout> | undefined;
  private stopped = true;
  private readonly path: string;
  private reachable = true;
  /** Names this process in its claims (and in `worker tasks` on the daemon's side). */
  readonly holder: string;
  /** Told when polling stops reaching the daemon (with why) and when it reaches it again. */
  onConnection: ((up: boolean, error?: unknown) => void) | undefined;
  /** Told when a task is left to the worker that claimed it first. */
  onClaimRefused: ((task: RemoteTask, reason: string, holder?: string) => void) | undefined;

  constructor(
    private readonly api: ApiClient,
    readonly did: string,
    private readonly pollMs = 200,
    options: { holder?: string; leaseMs?: number } = {},
  ) {
    this.path = `/v1/workers/${encodeURIComponent(did)}`;
    this.holder = options.holder ?? `pid ${process.pid} on ${hostname()} (${randomBytes(3).toString('hex')})`;
    // A lease outlives several polls, so a slow poll or two does not lose a task.
    this.leaseMs = options.leaseMs ?? Math.max(15_000, pollMs * 10);
  }

  private readonly leaseMs: number;
  /** Tasks refused to this process, with why, so each refusal is told once. */
  private readonly refusedOnce = new Map<string, string>();

  onStage(role: string, handler: RemoteStageHandler): this {
    this.handlers.set(role, handler);
    return this;
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.polling = this.poll();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    for (const controller of this.running.values()) controller.abort();
  }

  /**
   * Stops, waits up to `graceMs` for the handlers to give up, and gives up the claims of the tasks
   * left unanswered, so the next worker may start them at once instead of after the lease. A handler
   * still running after the grace keeps its claim until it lapses. Best effort: a daemon that cannot be
   * reached lets the claims lapse.
   */
  async close(graceMs = 5_000): Promise<void> {
    this.stop();
    // A poll on its way may still be granted claims: it gives those back itself (see `poll`).
    await this.polling;
    if (this.invocations.size > 0) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([
        Promise.allSettled([...this.invocations]),
        new Promise((resolve) => {
          timer = setTimeout(resolve, graceMs);
        }),
      ]);
      clearTimeout(timer);
    }
    await this.release();
  }

  /** Gives up the claims of tasks this process holds and is not running. */
  async release(): Promise<void> {
    const ids = [...this.claimed].filter((id) => !this.running.has(id));
    if (ids.length === 0) return;
    await this.api.post(`${this.path}/claim`, { holder: this.holder, release: ids }).catch(() => {});
    for (const id of ids) this.claimed.delete(id);
  }

  /** Handler runs in progress. */
  private readonly invocations = new Set<Promise<void>>();

  /** Tasks this process holds a claim on (granted, not yet answered or released). */
  private readonly claimed = new Set<string>();

  /** The poll in progress or last finished. */
  private polling: Promise<void> | undefined;

  /** Fetches open tasks once, renews the claims of those at work and starts handlers for the new ones it gets. */
  async poll(): Promise<void> {
    try {
      const { tasks } = await this.api.get<{ tasks: RemoteTask[] }>(`${this.path}/tasks`);
      if (!this.reachable) {
        this.reachable = true;
        this.onConnection?.(true);
      }
      const open = new Set(tasks.map((t) => t.task_id));
      for (const [taskId, controller] of this.running) if (!open.has(taskId)) controller.abort();
      for (const id of this.claimed) if (!open.has(id)) this.claimed.delete(id);
      for (const id of this.refusedOnce.keys()) if (!open.has(id)) this.refusedOnce.delete(id);
      // New tasks of this worker's roles: taken unless another worker has them.
      const wanted: RemoteTask[] = [];
      for (const t of tasks) {
        if (!this.handlers.has(t.role) || this.seen.has(t.task_id)) continue;
        if (t.claim === undefined || t.claim.holder === this.holder) wanted.push(t);
        else this.refused(t, 'another worker is working on it', t.claim.holder);
      }
      const renew = [...this.running.keys()].filter((id) => open.has(id));
      if (wanted.length === 0 && renew.length === 0) return;
      const claim = await this.api.post<ClaimResult>(`${this.path}/claim`, {
        holder: this.holder,
        take: wanted.map((t) => t.task_id),
        renew,
        lease_ms: this.leaseMs,
      });
      const granted = new Set(claim.granted);
      for (const id of granted) this.claimed.add(id);
      // A task at work whose claim another worker holds now (this process was cut off longer than the
      // lease): that worker does it, this one stops.
      for (const id of renew) if (!granted.has(id)) this.running.get(id)?.abort();
      for (const r of claim.refused) {
        const task = tasks.find((t) => t.task_id === r.task_id);
        if (task !== undefined && !renew.includes(r.task_id)) this.refused(task, r.reason, r.holder);
      }
      // Stopped while the claim was on its way: nothing will work the tasks just granted, so they go
      // back at once instead of waiting out the lease.
      if (this.stopped) {
        await this.release();
        return;
      }
      for (const task of wanted) {
        const handler = this.handlers.get(task.role);
        if (handler === undefined || !granted.has(task.task_id) || this.seen.has(task.task_id)) continue;
        this.seen.add(task.task_id);
        const run = this.invoke(task, handler).finally(() => this.invocations.delete(run));
        this.invocations.add(run);
      }
    } catch (err) {
      // The daemon may be restarting: try again at the next poll.
      if (this.reachable) {
        this.reachable = false;
        this.onConnection?.(false, err);
      }
    } finally {
      if (!this.stopped)
        this.timer = setTimeout(() => {
          this.polling = this.poll();
        }, this.pollMs);
    }
  }

  private refused(task: RemoteTask, reason: string, holder?: string): void {
    const told = `${reason}\u0000${holder ?? ''}`;
    if (this.refusedOnce.get(task.task_id) === told) return;
    this.refusedOnce.set(task.task_id, told);
    this.onClaimRefused?.(task, reason, holder);
  }

  private async invoke(task: RemoteTask, handler: RemoteStageHandler): Promise<void> {
    let answered = false;
    const controller = new AbortController();
    this.running.set(task.task_id, controller);
    const read = async (keyOrRef: string | ArtifactRef): Promise<RemoteArtifact> => {
      // A run of another host: the daemon reads through the run's home, for this task.
      const found =
        task.home !== undefined
          ? await this.api.post<{ meta: RemoteArtifact['meta']; content_base64: string }>(
              `${this.path}/read`,
              {
                task_id: task.task_id,
                ...(typeof keyOrRef === 'string' ? { key: keyOrRef } : { ref: keyOrRef }),
              },
            )
          : typeof keyOrRef === 'string'
            ? await this.api.get<{ meta: RemoteArtifact['meta']; content_base64: string }>(
                `/v1/vault/${encodeURIComponent(task.enclave_id ?? '')}/get?${new URLSearchParams({ key: keyOrRef, as: this.did })}`,
              )
            : await this.api.post<{ meta: RemoteArtifact['meta']; content_base64: string }>(
                '/v1/vault/resolve',
                {
                  ref: keyOrRef,
                  as: this.did,
                },
              );
      return { meta: found.meta, content: new Uint8Array(Buffer.from(found.content_base64, 'base64')) };
    };
    const ctx: RemoteStageContext = {
      task,
      snapshot: task.context,
      vault: { get: read, text: async (k) => new TextDecoder().decode((await read(k)).content) },
      // A task counts as answered once the daemon took the answer: one refused (too large, say) or
      // cut off can still be failed, or handed to the handler again.
      deliver: async (d) => {
        const { ref } = await this.api.post<{ ref: ArtifactRef }>(`${this.path}/deliver`, {
          task_id: task.task_id,
          ...(typeof d.value === 'string'
            ? { value: d.value }
            : { value_base64: Buffer.from(d.value).toString('base64') }),
          ...(d.kind === undefined ? {} : { kind: d.kind }),
          ...(d.key === undefined ? {} : { key: d.key }),
          ...(d.summary === undefined ? {} : { summary: d.summary }),
          ...(d.choice === undefined ? {} : { choice: d.choice }),
        });
        answered = true;
        return ref;
      },
      reject: async (r) => {
        await this.api.post(`${this.path}/reject`, { task_id: task.task_id, ...r });
        answered = true;
      },
      fail: async (e, o) => {
        await this.api.post(`${this.path}/fail`, {
          task_id: task.task_id,
          error: e instanceof Error ? e.message : String(e),
          fatal: o?.fatal === true,
        });
        answered = true;
      },
      progress: async (p) => {
        await this.api.post(`${this.path}/progress`, {
          task_id: task.task_id,
          kind: p.kind,
          payload: p.payload,
        });
      },
      signal: controller.signal,
    };
    let settled = false;
    try {
      await handler(ctx);
      // A task the run gave up on needs no answer (the daemon would refuse it).
      if (!answered && !controller.signal.aborted)
        await ctx.fail('the handler returned without delivering, rejecting or failing');
      settled = true;
    } catch (err) {
      settled = answered || controller.signal.aborted;
      if (!settled)
        settled = await ctx.fail(err).then(
          () => true,
          () => false,
        );
    } finally {
      this.running.delete(task.task_id);
    }
    if (answered) this.claimed.delete(task.task_id);
    // An answer that did not reach the daemon (it was restarting): the task stays open (and claimed),
    // so the next poll hands it to the handler again.
    else this.seen.delete(task.task_id);
  }
}
