// Owner controls on a real host: takeover after exhausted retries (deliver, reassign, skip), pause and resume, abort.
import { afterEach, expect, it } from 'vitest';
import { isAnxError } from '../../runtime/errors.ts';
import { waitFor } from '../helpers/daemon.ts';
import { cleanupTempDirs } from '../helpers/tmp.ts';
import { type TeamHost, teamHost } from './fixtures.ts';

let team: TeamHost | undefined;
afterEach(async () => {
  await team?.host.close();
  team = undefined;
  cleanupTempDirs();
});

const playbook = {
  name: 'two',
  version: '1',
  defaults: { max_retries: 1, backoff: { initial: '10ms', max: '10ms' } },
  stages: [
    { id: 'build', role: 'developer', output: { kind: 'text', key: 'build/out.txt' } },
    { id: 'check', role: 'tester', inputs: ['build'], output: { kind: 'text', key: 'check/out.txt' } },
  ],
};

async function start(t: TeamHost) {
  return t.host.teamwork.startRun({
    playbook,
    objective: 'owner controls',
    owner: t.owner,
    enclave: t.enclave,
    assignments: { developer: t.workers['developer'] as string, tester: t.workers['tester'] as string },
  });
}

it('hands the run to the owner when retries are spent; the owner delivers and the run completes', async () => {
  team = await teamHost();
  const t = team.host.teamwork;
  let failures = 0;
  t.worker(team.workers['developer'] as string).onStage('developer', () => {
    failures++;
    throw new Error('compiler crashed');
  });
  t.worker(team.workers['tester'] as string).onStage('tester', async (ctx) => {
    const input = await ctx.vault.text(
      ctx.snapshot.inputs[0] as NonNullable<(typeof ctx.snapshot.inputs)[0]>,
    );
    await ctx.deliver({ value: `checked: ${input}`, summary: 'ok' });
  });
  const { run_id } = await start(team);
  await waitFor(() => t.runs.status(run_id).state === 'takeover', 10_000, 'takeover');
  expect(failures).toBe(2);
  const waiting = t.runs.status(run_id);
  expect(waiting.takeover?.stage).toBe('build');
  expect(waiting.stages[0]?.last_error).toContain('compiler crashed');
  // The owner was told, in its inbox.
  const owner = team.owner;
  const host = team.host;
  await waitFor(
    () => host.inbox(owner).messages.some((m) => m.type === 'run.takeover'),
    10_000,
    'run.takeover in the owner inbox',
  );
  // Nobody but the owner may settle it.
  const refused = await t.runs
    .control(run_id, 'takeover.skip', {}, team.workers['tester'] as string)
    .catch((e: unknown) => e);
  expect(isAnxError(refused, 'ANX_FORBIDDEN_ENCLAVE')).toBe(true);
  const after = await t.takeoverDeliver(run_id, { content: 'hand-built output', summary: 'built by hand' });
  expect(['running', 'completed']).toContain(after.state);
  await waitFor(() => t.manifests.has(run_id), 10_000, 'the manifest');
  const { signed } = t.manifests.get(run_id);
  const build = signed.manifest.stages.find((s) => s.stage === 'build');
  expect(build?.worker).toBe(team.owner);
  const checked = await t.vault.get(team.enclave, 'check/out.txt', team.owner);
  expect(new TextDecoder().decode(checked.content)).toContain('hand-built');
});

it('reassigns a stage to another worker, or skips it, as the owner', async () => {
  team = await teamHost();
  const t = team.host.teamwork;
  t.worker(team.workers['developer'] as string).onStage('developer', async (ctx) =>
    ctx.fail('no', { fatal: true }),
  );
  // The architect is a member with write, so it can take the developer's stage over.
  t.worker(team.workers['architect'] as string).onStage('developer', async (ctx) => {
    await ctx.deliver({ value: 'built by the architect', summary: 'built' });
  });
  t.worker(team.workers['tester'] as string).onStage('tester', async (ctx) =>
    ctx.fail('flaky', { fatal: true }),
  );
  const { run_id } = await start(team);
  await waitFor(() => t.runs.status(run_id).state === 'takeover', 10_000, 'takeover');
  await t.runs.control(run_id, 'takeover.reassign', { worker: team.workers['architect'] });
  await waitFor(() => t.runs.status(run_id).takeover?.stage === 'check', 10_000, 'takeover at check');
  expect(t.runs.status(run_id).stages[0]?.worker).toBe(team.workers['architect']);
  await t.runs.control(run_id, 'takeover.skip', { reason: 'checked by hand' });
  await waitFor(() => t.manifests.has(run_id), 10_000, 'the manifest');
  const status = t.runs.status(run_id);
  expect(status.state).toBe('completed');
  expect(status.stages[1]?.status).toBe('skipped');
});

it('holds deliveries while paused and applies them on resume; abort ends the run for good', async () => {
  team = await teamHost();
  const t = team.host.teamwork;
  let release: (() => void) | undefined;
  const gate = new Promise<void>((r) => {
    release = r;
  });
  t.worker(team.workers['developer'] as string).onStage('developer', async (ctx) => {
    await gate;
    await ctx.deliver({ value: 'built', summary: 'built' });
  });
  t.worker(team.workers['tester'] as string).onStage('tester', async () => {
    await new Promise((r) => setTimeout(r, 60_000));
  });
  const { run_id } = await start(team);
  await waitFor(() => t.runs.status(run_id).stages[0]?.status === 'running', 10_000, 'build running');
  expect((await t.runs.control(run_id, 'run.pause', { reason: 'lunch' })).state).toBe('paused');
  release?.();
  await t.workers.idle().catch(() => {});
  await new Promise((r) => setTimeout(r, 100));
  expect(t.runs.status(run_id).state).toBe('paused');
  expect(t.runs.status(run_id).current).toBe('build');
  const resumed = await t.runs.control(run_id, 'run.resume', {});
  expect(resumed.state).not.toBe('paused');
  await waitFor(() => t.runs.status(run_id).current === 'check', 10_000, 'the held delivery to apply');
  const aborted = await t.runs.control(run_id, 'run.abort', { reason: 'changed our minds' });
  expect(aborted.state).toBe('aborted');
  expect(aborted.end_reason).toBe('changed our minds');
  const again = await t.runs.control(run_id, 'run.resume', {}).catch((e: unknown) => e);
  expect(isAnxError(again, 'ANX_RUN_REFUSED')).toBe(true);
});

it('answers each Owner action with its own outcome when another action was sent just before', async () => {
  team = await teamHost();
  const t = team.host.teamwork;
  t.worker(team.workers['developer'] as string).onStage('developer', async () => {
    await new Promise((r) => setTimeout(r, 60_000));
  });
  const { run_id } = await start(team);
  await waitFor(() => t.runs.status(run_id).stages[0]?.status === 'running', 10_000, 'build running');
  // A pause goes in (as a freeze hold sends one) and reports only after the abort's answer is awaited:
  // the abort must answer with its own outcome, not the pause's.
  const system = team.host.system;
  const owner = team.owner;
  await system.accept([
    system.envelope({
      type: 'run.pause',
      from: owner,
      to: `run/${run_id}`,
      body: { reason: 'freeze' },
      ctx: { run_id },
    }),
  ]);
  const aborted = await t.runs.control(run_id, 'run.abort', { reason: 'incident' });
  expect(aborted.state).toBe('aborted');
  expect(aborted.end_reason).toBe('incident');
  expect(t.runs.status(run_id).state).toBe('aborted');
});

it('never shows a stage delivered before its artifact can be read: the delivery and the transition commit together', async () => {
  team = await teamHost({ noSync: false });
  const t = team.host.teamwork;
  const developer = team.workers['developer'] as string;
  t.worker(developer).onStage('developer', async (ctx) => {
    await ctx.deliver({ value: 'built', summary: 'built' });
  });
  t.worker(team.workers['tester'] as string).onStage('tester', async () => {
    await new Promise((r) => setTimeout(r, 60_000));
  });
  const { run_id } = await start(team);
  // Polled at every turn of the event loop: the first turn that shows the stage delivered reads the vault.
  for (let turns = 0; turns < 200_000; turns++) {
    if (t.runs.status(run_id).stages[0]?.status === 'delivered') break;
    await new Promise((r) => setImmediate(r));
  }
  expect(t.runs.status(run_id).stages[0]?.status).toBe('delivered');
  const versions = await t.vault.history(team.enclave, 'build/out.txt', team.owner);
  expect(versions.map((v) => [v.version, v.author])).toEqual([[1, developer]]);
  expect(
    new TextDecoder().decode((await t.vault.get(team.enclave, 'build/out.txt', team.owner)).content),
  ).toBe('built');
});
