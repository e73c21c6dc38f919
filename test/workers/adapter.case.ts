// The one test suite every worker adapter (and the built-in script worker) runs, through a real host: deliver, progress, failure, retry, timeout, abort, reject.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { verifyManifest } from '../../actors/manifest.ts';
import type { StageHandler } from '../../actors/worker-runtime.ts';
import { adapterHandler } from '../../bridge/workers/adapter.ts';
import { createAdapter } from '../../bridge/workers/config.ts';
import type { EventV1 } from '../../runtime/events/event.ts';
import { waitFor } from '../helpers/daemon.ts';
import { cleanupTempDirs } from '../helpers/tmp.ts';
import { type TeamHost, teamHost } from '../teamwork/fixtures.ts';

/** How the adapter under test should behave for one run (each harness makes its agent or server do it). */
export type Mode = 'echo' | 'fail' | 'flaky' | 'hang' | 'reject';

/** What an adapter's test file provides: a configuration for `createAdapter`, or a stage handler of its own. */
export interface AdapterHarness {
  /** A worker configuration (as `createAdapter` takes it) whose agent or endpoint behaves as `mode`. */
  config?(mode: Mode, options: { timeoutMs: number }): Record<string, unknown>;
  /** A stage handler that behaves as `mode`, for workers that are not adapters (the script worker). */
  handler?(mode: Mode, options: { timeoutMs: number }): StageHandler;
  /** What the stage's error says when the agent or endpoint fails (mode `fail`). */
  failure: RegExp;
  /** What it says on a timeout (mode `hang` with a short timeout). */
  timeout: RegExp;
  /** True once the work of a hanging task is under way (the process runs, the request arrived). */
  started(): Promise<boolean> | boolean;
  /** True once that work has stopped (the process group is gone, the connection closed). */
  stopped(): Promise<boolean> | boolean;
  cleanup(): Promise<void>;
}

const REQUIREMENTS = 'REQ-7f3a: the login form locks after five failed attempts';

function playbook(options: { retries?: number; review?: boolean } = {}) {
  return {
    name: 'adapter-suite',
    version: '1.0.0',
    objective: '{{objective}}',
    defaults: {
      timeout: '10m',
      max_retries: options.retries ?? 0,
      backoff: { initial: 20, factor: 2, max: 200 },
    },
    stages: [
      {
        id: 'requirements',
        role: 'pm',
        brief: 'Write the requirements.',
        output: { kind: 'markdown', key: 'requirements/req.md' },
      },
      options.review === true
        ? {
            id: 'review',
            role: 'reviewer',
            brief: 'Review the requirements; reject them if they miss something.',
            inputs: ['requirements'],
            output: { kind: 'markdown', key: 'review/report.md' },
            review: { on_reject: 'requirements' },
          }
        : {
            id: 'design',
            role: 'architect',
            brief: 'Design the solution that meets the requirements.',
            inputs: ['requirements'],
            output: { kind: 'markdown', key: 'design/spec.md' },
          },
    ],
  };
}

function textOf(e: EventV1): string {
  return (e.payload as { text?: string } | null)?.text ?? '';
}

/** What the worker under test is given to work from. */
export interface SuiteOptions {
  /**
   * The rendered prompt, with the input artifacts' text and the last attempt's feedback under a heading
   * (adapters); false: the Context Snapshot as it is, with input refs (the script worker).
   */
  prompt?: boolean;
  /** Whether the worker streams progress into the trace. */
  progress?: boolean;
}

/** Registers the shared worker adapter suite under `name`. */
export function adapterSuite(
  name: string,
  make: () => Promise<AdapterHarness>,
  suite: SuiteOptions = {},
): void {
  const prompt = suite.prompt !== false;
  // Each test runs a host and a playbook: generous limits for a loaded machine.
  describe(`worker adapter: ${name}`, { timeout: 180_000 }, () => {
    let h: AdapterHarness;
    let team: TeamHost;
    const feedback: Array<string | null> = [];

    beforeEach(async () => {
      h = await make();
      team = await teamHost();
      feedback.length = 0;
      const pm: StageHandler = async (ctx) => {
        feedback.push(ctx.snapshot.feedback);
        await ctx.deliver({ value: `${REQUIREMENTS}\n`, summary: 'requirements' });
      };
      team.host.teamwork.worker(team.workers['pm'] as string).onStage('pm', pm);
    });
    afterEach(async () => {
      await team.host.close();
      await h.cleanup();
      cleanupTempDirs();
    });

    const serve = (role: 'architect' | 'reviewer', mode: Mode, timeoutMs = 120_000) => {
      const handler = h.handler?.(mode, { timeoutMs }) ?? adapted(mode, timeoutMs);
      team.host.teamwork.worker(team.workers[role] as string).onStage(role, handler);
    };
    const adapted = (mode: Mode, timeoutMs: number): StageHandler => {
      if (h.config === undefined) throw new Error('the harness gives neither config nor handler');
      const { adapter, options } = createAdapter(h.config(mode, { timeoutMs }));
      return adapterHandler(adapter, options);
    };
    const start = async (options: { retries?: number; review?: boolean } = {}) => {
      const { run_id } = await team.host.teamwork.startRun({
        playbook: playbook(options),
        objective: 'OBJ-91c2 ship the login page',
        owner: team.owner,
        enclave: team.enclave,
        assignments: {
          pm: team.workers['pm'] as string,
          ...(options.review === true
            ? { reviewer: team.workers['reviewer'] as string }
            : { architect: team.workers['architect'] as string }),
        },
      });
      return run_id;
    };
    const stage = (runId: string, id: string) =>
      team.host.teamwork.runs.status(runId).stages.find((s) => s.stage === id);

    it('delivers an artifact made from the objective and the input artifacts, authored by the worker, and the run completes with a manifest', async () => {
      serve('architect', 'echo');
      const runId = await start();
      await waitFor(() => team.host.teamwork.manifests.has(runId), 120_000, 'the manifest');
      expect(team.host.teamwork.runs.status(runId).state).toBe('completed');
      const { signed } = team.host.teamwork.manifests.get(runId);
      expect(verifyManifest(signed)).toBe(true);
      const design = await team.host.teamwork.vault.get(team.enclave, 'design/spec.md', team.owner);
      expect(design.meta.author).toBe(team.workers['architect']);
      const text = new TextDecoder().decode(design.content);
      expect(text).toContain('OBJ-91c2');
      // The input's text in a prompt; its ref in a snapshot.
      expect(text).toContain(prompt ? REQUIREMENTS : 'requirements/req.md');
      expect(text).toContain('Design the solution');
      expect(design.meta.summary).toBe(
        text
          .split('\n')
          .find((l) => l.trim() !== '')
          ?.trim(),
      );
    });

    // A worker that streams nothing (the script worker) has no case here rather than a skipped one.
    if (suite.progress !== false)
      it("streams the worker's progress into the trace of the run and the task", async () => {
        serve('architect', 'echo');
        const runId = await start();
        await waitFor(() => team.host.teamwork.manifests.has(runId), 120_000, 'the manifest');
        const taskId = stage(runId, 'design')?.task_id as string;
        const progress = team.host
          .trace(runId, { kinds: ['reasoning', 'message', 'status'] })
          .filter((e) => e.task_id === taskId);
        const reasoning = progress.filter((e) => e.kind === 'reasoning');
        expect(reasoning.map(textOf).join('')).toContain('thinking');
        expect(
          reasoning.every((e) => e.step === 'design' && e.metadata?.['worker'] === team.workers['architect']),
        ).toBe(true);
        // The same events are found by the task's own trace.
        expect(team.host.trace(taskId, { kinds: ['reasoning'] }).length).toBe(reasoning.length);
      });

    it('fails the stage with a readable error when the agent fails, and the owner takes over', async () => {
      serve('architect', 'fail');
      const runId = await start({ retries: 0 });
      await waitFor(() => team.host.teamwork.runs.status(runId).state === 'takeover', 120_000, 'takeover');
      expect(team.host.teamwork.runs.status(runId).takeover?.stage).toBe('design');
      expect(stage(runId, 'design')?.last_error).toMatch(h.failure);
    });

    it('is run again after a failed attempt, and the new attempt sees why the last one failed', async () => {
      serve('architect', 'flaky');
      const runId = await start({ retries: 1 });
      await waitFor(() => team.host.teamwork.manifests.has(runId), 120_000, 'the manifest');
      expect(stage(runId, 'design')?.attempt).toBe(2);
      const design = await team.host.teamwork.vault.get(team.enclave, 'design/spec.md', team.owner);
      const text = new TextDecoder().decode(design.content);
      if (prompt) {
        expect(text).toContain('Feedback on the last attempt');
        expect(text).toContain(REQUIREMENTS);
      } else expect(text).toContain('flaky: first attempt breaks');
    });

    it('fails the stage saying it timed out when the agent does not finish in time', async () => {
      serve('architect', 'hang', 1500);
      const runId = await start({ retries: 0 });
      await waitFor(() => team.host.teamwork.runs.status(runId).state === 'takeover', 120_000, 'takeover');
      expect(stage(runId, 'design')?.last_error).toMatch(h.timeout);
      await waitFor(() => h.stopped(), 30_000, 'the work to stop');
    });

    it('stops the work when the run is aborted, and answers nothing', async () => {
      serve('architect', 'hang');
      const runId = await start();
      await waitFor(() => h.started(), 120_000, 'the work to start');
      await team.host.teamwork.runs.control(runId, 'run.abort', { reason: 'changed my mind' });
      await waitFor(() => h.stopped(), 30_000, 'the work to stop');
      await team.host.teamwork.workers.idle();
      const design = stage(runId, 'design');
      expect(team.host.teamwork.runs.status(runId).state).toBe('aborted');
      expect(design?.output_ref ?? null).toBeNull();
      expect(team.host.trace(runId, { kinds: ['error'] })).toEqual([]);
    });

    it('rejects a review stage with the reason, and the rejected stage runs again with it as feedback', async () => {
      serve('reviewer', 'reject');
      const runId = await start({ review: true, retries: 1 });
      await waitFor(() => feedback.length >= 2, 120_000, 'requirements to run again');
      expect(feedback[0]).toBeNull();
      expect(feedback[1]).toContain('the change has no tests');
      await team.host.teamwork.runs.control(runId, 'run.abort', {});
    });
  });
}
