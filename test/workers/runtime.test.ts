// The worker runtime on one host: a handler's signal fires when its run moves on without the task; done marks and task
// inbox records are pruned once their run has finished, and a restart after pruning runs nothing again.
import { createHash } from 'node:crypto';
import { afterEach, expect, it } from 'vitest';
import { TaskNotRunningError } from '../../actors/errors.ts';
import { runAddress } from '../../actors/playbook-run.ts';
import { Host } from '../../runtime/host.ts';
import type { ArtifactRef } from '../../runtime/vault/types.ts';
import { waitFor } from '../helpers/daemon.ts';
import { cleanupTempDirs, tempDir } from '../helpers/tmp.ts';
import {
  DEV_TEAM_ROLES,
  devTeamAssignments,
  scriptedDevTeam,
  type TeamHost,
  teamHost,
} from '../teamwork/fixtures.ts';

let team: TeamHost | undefined;
afterEach(async () => {
  await team?.host.close();
  team = undefined;
  cleanupTempDirs();
});

/** Starts a dev-team run with the team's scripted workers assigned. */
function startDevTeam(team: TeamHost) {
  return team.host.teamwork.startRun({
    playbook: 'dev-team',
    objective: 'ship the login page',
    owner: team.owner,
    enclave: team.enclave,
    assignments: devTeamAssignments(team),
  });
}

/** The task inbox records (assignments) a DID holds for a run. */
function assignments(host: Host, did: string, runId: string): number {
  return host.system.records('inbox', did).filter((r) => {
    const v = r.value as { type: string; ctx?: { run_id?: string } };
    return v.type === 'stage.assign' && v.ctx?.run_id === runId;
  }).length;
}

it('prunes the done marks and assignments of a finished run, keeps those of a live one, and a restart runs nothing again', async () => {
  const dataDir = tempDir();
  team = await teamHost({ dataDir });
  const t = team.host.teamwork;
  scriptedDevTeam(team);
  const start = (objective: string) =>
    t.startRun({
      playbook: 'dev-team',
      objective,
      owner: team!.owner,
      enclave: team!.enclave,
      assignments: devTeamAssignments(team!),
    });
  const done = await start('ship the login page');
  await waitFor(() => t.runs.status(done.run_id).state === 'completed', 30_000, 'the first run completes');
  await t.workers.idle();

  // A second run that stays live: its architect never answers, so it waits in design.
  const architect = team.workers['architect'] as string;
  t.worker(architect).onStage('architect', () => new Promise<void>(() => {}));
  const live = await start('ship the signup page');
  await waitFor(
    () => t.runs.status(live.run_id).current === 'design',
    30_000,
    'the second run reaches design',
  );

  const pm = team.workers['pm'] as string;
  const finished = t.runs.status(done.run_id).stages.flatMap((s) => (s.task_id === null ? [] : [s]));
  const liveRequirements = t.runs.status(live.run_id).stages[0]?.task_id as string;
  expect(
    finished.every((s) => t.workers.answered(s.worker as string, s.task_id as string) !== undefined),
  ).toBe(true);
  expect(assignments(team.host, pm, done.run_id)).toBe(1);

  // Bounded: one task per call, then the rest.
  expect(await t.workers.prune(1)).toBe(1);
  let pruned = 1;
  for (let i = 0; i < 20; i++) {
    const n = await t.workers.prune();
    pruned += n;
    if (n === 0) break;
  }
  // requirements, design, implement ×2, test ×2, review ×2 of the finished run.
  expect(pruned).toBe(8);
  expect(
    finished.some((s) => t.workers.answered(s.worker as string, s.task_id as string) !== undefined),
  ).toBe(false);
  for (const role of DEV_TEAM_ROLES)
    expect(assignments(team.host, team.workers[role] as string, done.run_id)).toBe(0);
  // The live run keeps what it has.
  expect(t.workers.answered(pm, liveRequirements)).toBeDefined();
  expect(assignments(team.host, pm, live.run_id)).toBe(1);
  expect(assignments(team.host, architect, live.run_id)).toBe(1);

  // After a restart nothing of the finished run is handed out again; the live run's design still is.
  await team.host.close();
  team = undefined;
  const host = await Host.open({ dataDir, noSync: true });
  team = { host, owner: '', enclave: '', workers: {} };
  const calls: string[] = [];
  const names = new Map(host.identities().map((id) => [id.name, id.did]));
  for (const role of DEV_TEAM_ROLES)
    host.teamwork.worker(names.get(role) as string).onStage(role, async (ctx) => {
      calls.push(ctx.task.task_id);
      await ctx.deliver({ value: `${ctx.task.stage} after the restart` });
    });
  await waitFor(
    () => host.teamwork.runs.status(live.run_id).state === 'completed',
    30_000,
    'the live run completes',
  );
  await host.teamwork.workers.idle();
  expect(calls.every((id) => id.startsWith(`${live.run_id}/`))).toBe(true);
  expect(calls[0]).toBe(`${live.run_id}/design/1`);
  expect(host.system.info(runAddress(done.run_id))?.value).toBe('completed');
});

it('aborts the handler of a task whose stage timed out and was assigned again, and lets the new attempt deliver', async () => {
  team = await teamHost();
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
    // The reason says which task is no longer running, and for whom.
    expect(ctx.signal.reason).toBeInstanceOf(TaskNotRunningError);
    expect((ctx.signal.reason as TaskNotRunningError).code).toBe('ANX_TASK_NOT_RUNNING');
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

it('refuses a delivery after a failure given at once, and a refused delivery leaves the task open for the next', async () => {
  team = await teamHost({ dataDir: tempDir() });
  const t = team.host.teamwork;
  scriptedDevTeam(team, { rejectFirst: false });
  const [pm, architect] = [team.workers['pm'] as string, team.workers['architect'] as string];
  const outcomes: string[] = [];
  t.worker(pm).onStage('pm', async (ctx) => {
    // A key the vault refuses: the delivery fails before anything is written, and the task is still open.
    await ctx.deliver({ key: 'bad key', value: 'x' }).catch((err) => outcomes.push(`bad key: ${err.code}`));
    const ref = await ctx.deliver({ value: 'requirements', summary: 'requirements' });
    outcomes.push(`delivered ${ref.key} v${ref.version}`);
  });
  let architectCalls = 0;
  t.worker(architect).onStage('architect', async (ctx) => {
    architectCalls += 1;
    const [failed, delivered] = await Promise.allSettled([
      ctx.fail(new Error('the design cannot be done'), { fatal: true }),
      ctx.deliver({ value: 'design', summary: 'design' }),
    ]);
    outcomes.push(`fail ${failed.status}`);
    outcomes.push(
      `deliver ${delivered.status === 'rejected' ? (delivered.reason as { code: string }).code : 'fulfilled'}`,
    );
  });
  const run = await startDevTeam(team);
  await waitFor(() => outcomes.length === 4, 30_000, 'both handlers answered');
  await t.workers.idle();
  const status = t.runs.status(run.run_id);
  expect(outcomes).toEqual([
    'bad key: ANX_VAULT_INPUT',
    `delivered ${status.stages[0]?.output_ref?.key} v${status.stages[0]?.output_ref?.version}`,
    'fail fulfilled',
    'deliver ANX_TASK_NOT_RUNNING',
  ]);
  expect(architectCalls).toBe(1);
  const design = status.stages.find((s) => s.stage === 'design');
  expect(design?.output_ref).toBeNull();
  // The failure stood, and the delivery given beside it wrote no artifact.
  expect(await t.vault.list(team.enclave, team.owner, 'design/')).toEqual([]);
});

it('takes one outcome from a handler that delivers twice at once, writes one artifact, and keeps no duplicate marker for it', async () => {
  team = await teamHost({ dataDir: tempDir() });
  const t = team.host.teamwork;
  scriptedDevTeam(team, { rejectFirst: false });
  const pm = team.workers['pm'] as string;
  const refs: ArtifactRef[] = [];
  t.worker(pm).onStage('pm', async (ctx) => {
    refs.push(
      ...(await Promise.all([
        ctx.deliver({ value: 'first', summary: 'first' }),
        ctx.deliver({ value: 'second', summary: 'second' }),
      ])),
    );
  });
  const run = await startDevTeam(team);
  await waitFor(() => t.runs.status(run.run_id).state === 'completed', 30_000, 'the run completes');
  await t.workers.idle();
  const requirements = t.runs.status(run.run_id).stages.find((s) => s.stage === 'requirements');
  // The first answer stands; the second wrote nothing and was given the first's ref, so the stage ran once.
  expect(refs).toHaveLength(2);
  expect(refs[1]).toEqual(refs[0]);
  expect(requirements?.output_ref).toEqual(refs[0]);
  const versions = await t.vault.history(team.enclave, refs[0]?.key as string, team.owner);
  expect(versions.map((v) => v.version)).toEqual([refs[0]?.version]);
  expect(Buffer.from((await t.vault.resolve(refs[0] as ArtifactRef, team.owner)).content).toString()).toBe(
    'first',
  );
  expect(requirements?.attempt).toBe(1);
  expect(t.workers.answered(pm, requirements?.task_id as string)?.ref).toEqual(refs[0]);
  // Outcomes are accepted as fresh: the done mark is their record, the kernel keeps no [to, id] marker.
  const outcomeIds = t.runs
    .status(run.run_id)
    .stages.flatMap((s) =>
      s.task_id === null || s.worker === null
        ? []
        : [createHash('sha256').update(`${s.worker}\u0000${s.task_id}`).digest('base64url').slice(0, 32)],
    );
  expect(outcomeIds).toHaveLength(5);
  for (const id of outcomeIds)
    expect(team.host.store.seen.doesExist([runAddress(run.run_id), id])).toBe(false);
});
