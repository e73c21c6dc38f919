// Serving a role of a daemon's DID with a worker adapter from another process: polls its tasks, runs the adapter, answers.

import type { ArtifactRef } from '../../machines/playbook/definition.ts';
import type { ApiClient } from '../api/client.ts';
import { RemoteWorker } from '../api/worker-client.ts';
import { type AdapterStageContext, adapterHandler } from './adapter.ts';
import type { ConfiguredAdapter } from './config.ts';

/** How a task was answered. */
type Answer =
  | { state: 'delivered'; ref: ArtifactRef }
  | { state: 'rejected'; reason: string }
  | { state: 'failed'; error: string; fatal: boolean };

/**
 * What happened to one task, as `onTask` hears it. `stopped`: the run no longer needs the task, or the
 * worker stopped, and the work was stopped unanswered. `left`: another worker claimed it first (its
 * `holder`), or the daemon restarted and keeps it for the worker that had it for a while: this one
 * does not start it (told once per reason).
 */
export type TaskEvent = { task_id: string; stage: string; attempt: number } & (
  | Answer
  | { state: 'started' }
  | { state: 'stopped' }
  | { state: 'left'; reason: string; holder?: string }
);

export interface ServeOptions {
  /** How often to ask the daemon for new tasks (default 500 ms). */
  pollMs?: number;
  /** How often to check that tasks at work are still open (default 2,000 ms). */
  watchMs?: number;
  /** `done` resolves once this many tasks are answered. */
  maxTasks?: number;
  onTask?(event: TaskEvent): void;
  /** Told when the daemon stops answering (with why) and when it answers again. */
  onConnection?(up: boolean, error?: unknown): void;
}

/**
 * A `RemoteWorker` whose handler is a worker adapter. Work on a task the daemon no longer lists (the
 * run was aborted, the stage moved on) is stopped; `stop()` stops all work and leaves its tasks open,
 * so the daemon hands them to the next worker.
 *
 * @example
 * ```ts
 * const worker = new AdapterWorker(ApiClient.forDataDir(dir), did, 'developer', createAdapter(config));
 * worker.start();
 * await worker.done; // until stop() is called, or maxTasks answered
 * ```
 */
export class AdapterWorker {
  private readonly remote: RemoteWorker;
  private readonly work = new Map<string, { controller: AbortController; settled: Promise<void> }>();
  private readonly stopAll = new AbortController();
  private watchTimer: ReturnType<typeof setInterval> | undefined;
  private answered = 0;
  private finish: (() => void) | undefined;
  /** Resolves when the worker stops: `stop()` was called or `maxTasks` tasks were answered. */
  readonly done: Promise<void>;

  constructor(
    private readonly api: ApiClient,
    readonly did: string,
    readonly role: string,
    configured: ConfiguredAdapter,
    private readonly options: ServeOptions = {},
  ) {
    this.done = new Promise((resolve) => {
      this.finish = resolve;
    });
    this.remote = new RemoteWorker(api, did, options.pollMs ?? 500);
    this.remote.onConnection = options.onConnection;
    this.remote.onClaimRefused = (task, reason, holder) =>
      this.emit(task, { state: 'left', reason, ...(holder === undefined ? {} : { holder }) });
    const handle = adapterHandler(configured.adapter, configured.options);
    this.remote.onStage(role, (ctx) => {
      const controller = new AbortController();
      const state = { answered: false };
      const watched = this.watched(ctx, controller, state);
      const settled = handle(watched)
        .catch(async (err: unknown) => {
          // The daemon refused the answer (too large, say): the stage fails with why, and is retried.
          if (state.answered || controller.signal.aborted) throw err;
          await watched.fail(
            `the daemon did not take the answer: ${err instanceof Error ? err.message : String(err)}`,
          );
        })
        .finally(() => {
          this.work.delete(ctx.task.task_id);
          if (controller.signal.aborted && !state.answered) this.emit(ctx.task, { state: 'stopped' });
        });
      this.work.set(ctx.task.task_id, { controller, settled });
      this.emit(ctx.task, { state: 'started' });
      // RemoteWorker fails a task whose handler returns unanswered; a task stopped because this worker
      // stops must stay open instead, so its handler's promise is left pending.
      return settled.then(() => (this.stopAll.signal.aborted ? new Promise<void>(() => {}) : undefined));
    });
  }

  /** How many tasks this worker has answered. */
  get count(): number {
    return this.answered;
  }

  start(): void {
    this.remote.start();
    this.watchTimer ??= setInterval(() => void this.watch(), this.options.watchMs ?? 2000);
  }

  /** Stops polling and all work in progress (unanswered), and resolves once the work has stopped. */
  async stop(): Promise<void> {
    this.remote.stop();
    if (this.watchTimer !== undefined) clearInterval(this.watchTimer);
    this.watchTimer = undefined;
    this.stopAll.abort();
    await Promise.allSettled([...this.work.values()].map((w) => w.settled));
    // Tasks left unanswered go to the next worker at once, not after the lease.
    await this.remote.close();
    this.finish?.();
  }

  /** Stops work on tasks the daemon no longer lists as open. */
  private async watch(): Promise<void> {
    if (this.work.size === 0) return;
    let open: Set<string>;
    try {
      const { tasks } = await this.api.get<{ tasks: Array<{ task_id: string }> }>(
        `/v1/workers/${encodeURIComponent(this.did)}/tasks`,
      );
      open = new Set(tasks.map((t) => t.task_id));
    } catch {
      return; // The daemon may be restarting: look again next time.
    }
    for (const [taskId, w] of this.work) if (!open.has(taskId)) w.controller.abort();
  }

  private watched(ctx: AdapterStageContext, controller: AbortController, state: { answered: boolean }) {
    const stop = () => controller.abort();
    this.stopAll.signal.addEventListener('abort', stop, { once: true });
    const answered = (event: Answer) => {
      state.answered = true;
      this.stopAll.signal.removeEventListener('abort', stop);
      this.answered++;
      this.emit(ctx.task, event);
      if (this.options.maxTasks !== undefined && this.answered >= this.options.maxTasks) void this.stop();
    };
    const watched: AdapterStageContext = {
      ...ctx,
      signal: controller.signal,
      deliver: async (d) => {
        const ref = await ctx.deliver(d);
        answered({ state: 'delivered', ref });
        return ref;
      },
      reject: async (r) => {
        await ctx.reject(r);
        answered({ state: 'rejected', reason: r.reason });
      },
      fail: async (e, f) => {
        await ctx.fail(e, f);
        answered({
          state: 'failed',
          error: e instanceof Error ? e.message : String(e),
          fatal: f?.fatal === true,
        });
      },
    };
    return watched;
  }

  private emit(
    task: { task_id: string; stage: string; attempt: number },
    event: Answer | { state: 'started' | 'stopped' } | { state: 'left'; reason: string; holder?: string },
  ): void {
    try {
      this.options.onTask?.({
        task_id: task.task_id,
        stage: task.stage,
        attempt: task.attempt,
        ...event,
      } as TaskEvent);
    } catch {
      // A listener's failure must not stop the worker.
    }
  }
}
