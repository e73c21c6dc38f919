// Worker commands on a frozen host: stage assignments stay in the outbox, their runs paused, until thaw sends them.
import type { ActorSystem } from '../kernel/actor-system.ts';
import type { KernelEnvelope } from '../kernel/message.ts';
import type { AuditLog } from './audit.ts';
import type { FreezeState } from './freeze.ts';

/** Envelope types that command a worker: held while the host is frozen. */
export const WORKER_COMMANDS: ReadonlySet<string> = new Set(['stage.assign']);

const HELD_RUNS_KEY = 'authority.freeze.held_runs';

/** What the hold needs of the runs (the composition root supplies it from the playbook runs). */
export interface HeldRunControl {
  /** True when the run is paused (by its Owner or by this hold). */
  isPaused(runId: string): boolean;
  /** Pauses the run so its stage deadline stops. */
  pause(runId: string, reason: string): Promise<void>;
  /** Resumes a run this hold paused, if it is still paused. */
  resume(runId: string): Promise<void>;
  /** True while the command's task is still a running task of its run (else it is dropped at thaw). */
  stillWanted(env: KernelEnvelope): boolean;
}

/**
 * Holds worker commands while the host is frozen. A run that enters a stage on a frozen host commits
 * its `stage.assign` as usual; the kernel keeps it in the outbox instead of dispatching it, and the
 * run is paused (its stage deadline stops, no retry is spent). At thaw the held assignments go out,
 * then the runs paused here resume, which re-arms the stage deadline in full. Because a held
 * assignment never leaves the outbox, a host killed while frozen holds it again after the restart and
 * sends it exactly once after thaw; runs it paused are remembered in `meta` and resumed then too.
 */
export class FreezeHold {
  private readonly heldRuns: Set<string>;
  private readonly pausing = new Set<string>();

  constructor(
    private readonly system: ActorSystem,
    private readonly freeze: FreezeState,
    private readonly audit: AuditLog,
    private readonly runs: HeldRunControl,
  ) {
    const stored = system.store.meta.get(HELD_RUNS_KEY);
    this.heldRuns = new Set(Array.isArray(stored) ? stored.filter((r) => typeof r === 'string') : []);
    system.holdGate = (env) => {
      if (!this.freeze.isFrozen || !WORKER_COMMANDS.has(env.type)) return false;
      queueMicrotask(() => this.onHeld(env));
      return true;
    };
    freeze.onChange((status) => {
      if (!status.frozen) void this.release().catch(() => {});
    });
  }

  /** Runs paused because their assignment is held. */
  get runsHeld(): string[] {
    return [...this.heldRuns];
  }

  /**
   * Called once the host has started: a host that was thawed just before it stopped may still have
   * runs this hold paused; they resume now (their held assignments were sent by the outbox replay).
   */
  async recover(): Promise<void> {
    if (!this.freeze.isFrozen && this.heldRuns.size > 0) await this.release();
  }

  /** Sends what is held and resumes the runs paused for it. */
  async release(): Promise<number> {
    const sent = this.system.releaseHeld((env) => !this.runs.stillWanted(env));
    for (const runId of [...this.heldRuns]) {
      if (this.freeze.isFrozen) break;
      try {
        await this.runs.resume(runId);
      } catch {
        // A run that ended or was resumed meanwhile has nothing left to resume.
      }
      this.heldRuns.delete(runId);
    }
    await this.persist();
    return sent;
  }

  private onHeld(env: KernelEnvelope): void {
    const runId = env.ctx?.run_id;
    if (runId === undefined || this.pausing.has(runId)) return;
    this.pausing.add(runId);
    this.audit.append({
      action: env.type,
      decision: 'deny',
      code: 'ANX_FROZEN',
      reason: 'host is frozen: the assignment is held until thaw',
      actor: env.from,
      resource: `run:${runId}`,
      details: { to: env.to, stage: env.ctx?.stage ?? null, task_id: env.ctx?.task_id ?? null },
    });
    void (async () => {
      try {
        if (!this.heldRuns.has(runId)) {
          // Paused by its Owner: left as it is; the assignment still waits for thaw.
          if (this.runs.isPaused(runId)) return;
          // Remembered before the pause, so a crash in between cannot leave a run paused for good.
          this.heldRuns.add(runId);
          await this.persist();
        }
        if (!this.runs.isPaused(runId))
          await this.runs.pause(runId, 'host frozen: stage assignment held until thaw');
      } catch {
        // A run that cannot be paused (it ended) gets its assignment dropped or sent at thaw.
      } finally {
        this.pausing.delete(runId);
      }
      // Thawed while pausing: nothing else would resume it.
      if (!this.freeze.isFrozen) await this.release().catch(() => {});
    })();
  }

  private async persist(): Promise<void> {
    this.system.commits.put(this.system.store.meta, HELD_RUNS_KEY, [...this.heldRuns]);
    await this.system.commits.flush();
  }
}
