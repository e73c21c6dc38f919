// A handler's AbortSignal on one host: it fires when the run moves on without the task (a stage timeout and retry).
import { afterEach, beforeEach, expect, it } from 'vitest';
import { waitFor } from '../helpers/daemon.ts';
import { cleanupTempDirs } from '../helpers/tmp.ts';
import { type TeamHost, teamHost } from '../teamwork/fixtures.ts';

let team: TeamHost;
beforeEach(async () => {
  team = await teamHost();
});
afterEach(async () => {
  await team.host.close();
  cleanupTempDirs();
});

it('aborts the handler of a task whose stage timed out and was assigned again, and lets the new attempt deliver', async () => {
  const t = team.host.teamwork;
  const pm = team.workers['pm'] as string;
  const aborted: number[] = [];
  t.worker(pm).onStage('pm', async (ctx) => {
    if (ctx.task.attempt > 1) {
      await ctx.deliver({ value: 'requirements, second try' });
      return;
    }
    // The first attempt never answers: it waits until the run no longer needs it.
    await new Promise<void>((resolve) => ctx.signal.addEventListener('abort', () => resolve()));
    aborted.push(ctx.task.attempt);
  });
  const { run_id } = await t.startRun({
    playbook: {
      name: 'signal',
      version: '1.0.0',
      objective: '{{objective}}',
      defaults: { max_retries: 1, backoff: { initial: 10, factor: 1, max: 10 } },
      stages: [
        {
          id: 'requirements',
          role: 'pm',
          brief: 'Write them.',
          timeout: 300,
          output: { kind: 'markdown', key: 'req.md' },
        },
      ],
    },
    objective: 'the login page',
    owner: team.owner,
    enclave: team.enclave,
    assignments: { pm },
  });
  await waitFor(() => t.runs.status(run_id).state === 'completed', 30_000, 'the run completes');
  await t.workers.idle();
  expect(aborted).toEqual([1]);
  expect(t.runs.status(run_id).stages[0]).toMatchObject({ status: 'delivered', attempt: 2 });
});
