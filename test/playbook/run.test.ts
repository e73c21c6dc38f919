// The compiled run statechart, driven like the kernel drives it: assignments, rollbacks, retries, takeover, pause, abort.

import { describe, expect, it } from 'vitest';
import { createActor, SimulatedClock } from 'xstate';
import { armedTimers, compilePlaybook } from '../../machines/playbook/compile.ts';
import type { ContextSnapshot } from '../../machines/playbook/context.ts';
import type { DeliveryManifestContent } from '../../machines/playbook/run.ts';
import { playbookTemplate, TEMPLATE_NAMES } from '../../machines/playbook/templates.ts';
import { assertPlaybook } from '../../machines/playbook/validate.ts';
import { did, OWNER, SECRETARY, startRun } from './harness.ts';

const devTeam = playbookTemplate('dev-team');
const DEV_STAGES = ['requirements', 'design', 'implement', 'test', 'review'];

function toReview(run: ReturnType<typeof startRun>) {
  run.start();
  for (const s of ['requirements', 'design', 'implement', 'test']) run.deliver(s);
  expect(run.value()).toContain('review');
}

describe('run: happy path', () => {
  it('assigns each stage once, to its role, with a deterministic task id and a context snapshot', () => {
    const run = startRun(devTeam);
    expect(run.value()).toBe('"pending"');
    expect(run.effects).toEqual([]);
    run.start();
    run.finish();
    expect(run.value()).toBe('"completed"');
    const assigns = run.sends('stage.assign');
    expect(assigns.map((a) => [a.to, (a.body as { task_id: string }).task_id])).toEqual([
      [did('pm0'), 'run1/requirements/1'],
      [did('architect0'), 'run1/design/1'],
      [did('developer0'), 'run1/implement/1'],
      [did('tester0'), 'run1/test/1'],
      [did('reviewer0'), 'run1/review/1'],
    ]);
    const first = assigns[2]!;
    expect(first.ctx).toEqual({
      run_id: 'run1',
      task_id: 'run1/implement/1',
      stage: 'implement',
      enclave_id: 'enc1',
      session_id: 'sess1',
    });
    const snap = (first.body as { context: ContextSnapshot }).context;
    expect(snap.stage.id).toBe('implement');
    expect(snap.inputs.map((r) => r.key)).toEqual(['requirements/0', 'design/0']);
    expect(snap.earlier.map((e) => e.stage)).toEqual(['design', 'requirements']);
  });

  it('emits a status event per stage start and completion, a checkpoint per stage, and the manifest to the coordinator', () => {
    const run = startRun(devTeam);
    run.start();
    run.finish();
    const st = run.statuses();
    expect(st[0]).toBe('run.started');
    expect(st.filter((s) => s === 'stage.started').length).toBe(5);
    expect(st.filter((s) => s === 'stage.completed').length).toBe(5);
    expect(st.at(-1)).toBe('run.completed');
    const checkpoints = run
      .events('artifact')
      .map((e) => (e.payload as { checkpoint: { stage: string } }).checkpoint.stage);
    expect(checkpoints).toEqual(DEV_STAGES);
    const done = run.sends('run.completed');
    expect(done.length).toBe(1);
    expect(done[0]?.to).toBe(SECRETARY);
    const manifest = done[0]?.body as DeliveryManifestContent;
    expect(manifest.stages.map((s) => [s.stage, s.status, s.refs.map((r) => r.key)])).toEqual(
      DEV_STAGES.map((s) => [s, 'delivered', [`${s}/0`]]),
    );
    expect(manifest.final.map((r) => r.key)).toEqual(['review/0']);
    expect(manifest).toMatchObject({
      run_id: 'run1',
      playbook: { name: 'dev-team', version: '1.0.0' },
      enclave_id: 'enc1',
    });
  });

  it('ignores run.start from anyone but the owner', () => {
    const run = startRun(devTeam);
    run.actor.send({ type: 'run.start', from: did('stranger'), ts: 5, body: {} });
    expect(run.value()).toBe('"pending"');
    expect(run.events('error').length).toBe(1);
  });
});

describe('run: review rollback', () => {
  it('rolls back to implement when review rejects, counting a retry and passing the feedback on', () => {
    const run = startRun(devTeam);
    toReview(run);
    run.reject('review', 'missing input validation');
    expect(run.value()).toContain('implement');
    expect(run.exec('implement')).toMatchObject({
      attempt: 2,
      retry_count: 1,
      task_id: 'run1/implement/2',
      status: 'running',
    });
    expect(run.exec('review').status).toBe('rejected');
    const assign = run.sends('stage.assign').at(-1)!;
    expect((assign.body as { context: ContextSnapshot }).context.feedback).toBe(
      'rejected by review: missing input validation',
    );
    run.deliver('implement');
    expect(run.exec('test')).toMatchObject({ attempt: 2, retry_count: 0 });
    run.deliver('test');
    run.deliver('review');
    expect(run.value()).toBe('"completed"');
  });

  it('rolls back to an earlier target the reviewer names, and to on_reject when the target is not earlier', () => {
    const run = startRun(devTeam);
    toReview(run);
    run.reject('review', 'design is wrong', 'design');
    expect(run.value()).toContain('design');
    expect(run.exec('design').retry_count).toBe(1);
    for (const s of ['design', 'implement', 'test']) run.deliver(s);
    run.reject('review', 'again', 'review');
    expect(run.value()).toContain('implement');
  });

  it('hands the run to the owner once rejections exhaust the target stage', () => {
    const run = startRun(devTeam);
    toReview(run);
    for (let i = 0; i < 2; i++) {
      run.reject('review', `round ${i}`);
      run.deliver('implement');
      run.deliver('test');
    }
    run.reject('review', 'third strike');
    expect(run.value()).toBe('{"live":"takeover"}');
    expect(run.ctx().current).toBe('implement');
    expect(run.exec('implement')).toMatchObject({ retry_count: 2, status: 'takeover' });
    const to = run.sends('run.takeover');
    expect(to.length).toBe(1);
    expect(to[0]).toMatchObject({ to: OWNER, body: { stage: 'implement' } });
  });

  it('refuses a rejection from a stage that is not a review', () => {
    const run = startRun(devTeam);
    run.start();
    run.reject('requirements');
    expect(run.value()).toContain('requirements');
    expect(run.events('error').at(-1)?.payload).toMatchObject({ reason: 'not_a_review_stage' });
  });
});

describe('run: timeouts, retries and takeover', () => {
  it("arms each stage timeout with that stage's own timeout, from the first stage on", () => {
    const run = startRun(devTeam);
    run.start();
    run.clock.increment(1);
    expect(run.value()).toContain('requirements');
    run.clock.increment(30 * 60_000 - 2);
    expect(run.value()).toContain('requirements');
    run.clock.increment(1);
    expect(run.value()).toBe('{"live":"retrying"}');
    run.backoff();
    for (const s of ['requirements', 'design']) run.deliver(s);
    run.clock.increment(30 * 60_000 + 1); // implement allows 2 h, not the 30 min of the stage before it
    expect(run.value()).toContain('implement');
    run.clock.increment(90 * 60_000);
    expect(run.value()).toBe('{"live":"retrying"}');
  });

  it('retries a timed-out stage after its backoff with a new task id', () => {
    const run = startRun(devTeam);
    run.start();
    run.timeout('requirements');
    expect(run.value()).toBe('{"live":"retrying"}');
    expect(run.exec('requirements')).toMatchObject({ retry_count: 1, status: 'retrying' });
    run.clock.increment(4_999); // dev-team backoff starts at 5 s
    expect(run.value()).toBe('{"live":"retrying"}');
    run.clock.increment(1);
    expect(run.value()).toContain('requirements');
    expect(run.exec('requirements')).toMatchObject({
      attempt: 2,
      task_id: 'run1/requirements/2',
      status: 'running',
    });
    run.timeout('requirements');
    run.clock.increment(9_999); // second retry waits 10 s
    expect(run.value()).toBe('{"live":"retrying"}');
    run.clock.increment(1);
    expect(run.exec('requirements').attempt).toBe(3);
    expect(run.sends('stage.assign').length).toBe(3);
  });

  it('goes to takeover after retries are exhausted and tells the owner', () => {
    const run = startRun(devTeam);
    run.start();
    for (let i = 0; i < 2; i++) {
      run.fail('requirements');
      run.backoff();
    }
    run.fail('requirements', { error: 'disk full' });
    expect(run.value()).toBe('{"live":"takeover"}');
    expect(run.statuses()).toContain('run.takeover');
    expect(run.sends('run.takeover')[0]?.body).toMatchObject({
      stage: 'requirements',
      retry_count: 2,
      last_error: 'disk full',
    });
  });

  it('goes straight to takeover when the worker reports a fatal failure', () => {
    const run = startRun(devTeam);
    run.start();
    run.fail('requirements', { fatal: true });
    expect(run.value()).toBe('{"live":"takeover"}');
    expect(run.exec('requirements').retry_count).toBe(0);
  });

  it('lets the owner deliver, reassign or skip in takeover, and nobody else', () => {
    const delivered = startRun(devTeam);
    delivered.start();
    delivered.fail('requirements', { fatal: true });
    delivered.actor.send({ type: 'takeover.skip', from: did('pm0'), ts: 9, body: {} });
    expect(delivered.value()).toBe('{"live":"takeover"}');
    delivered.ownerDeliver('requirements/by-owner.md');
    expect(delivered.value()).toContain('design');
    expect(delivered.exec('requirements')).toMatchObject({
      status: 'delivered',
      output_ref: { key: 'requirements/by-owner.md' },
    });

    const reassigned = startRun(devTeam);
    reassigned.start();
    reassigned.fail('requirements', { fatal: true });
    reassigned.ownerReassign(did('backup'));
    expect(reassigned.exec('requirements')).toMatchObject({
      worker: did('backup'),
      attempt: 2,
      retry_count: 0,
    });
    expect(reassigned.sends('stage.assign').at(-1)?.to).toBe(did('backup'));
    reassigned.deliver('requirements');
    expect(reassigned.value()).toContain('design');

    const skipped = startRun(devTeam);
    skipped.start();
    skipped.fail('requirements', { fatal: true });
    skipped.owner('takeover.skip', { reason: 'not needed' });
    expect(skipped.exec('requirements').status).toBe('skipped');
    expect(skipped.value()).toContain('design');
  });

  it('completes the run when the owner skips the last stage', () => {
    const run = startRun(devTeam);
    toReview(run);
    run.fail('review', { fatal: true });
    run.owner('takeover.skip');
    expect(run.value()).toBe('"completed"');
    expect((run.sends('run.completed')[0]!.body as DeliveryManifestContent).final.map((r) => r.key)).toEqual([
      'test/0',
    ]);
  });

  it('takes over at once when a role has no worker, and runs after a reassignment', () => {
    const run = startRun(devTeam, { assignments: { pm: ['did:pm'] } });
    run.start();
    run.deliver('requirements');
    expect(run.value()).toBe('{"live":"takeover"}');
    expect(run.sends('run.takeover')[0]?.body).toMatchObject({
      reason: 'no worker assigned for role architect',
    });
    run.ownerReassign(did('arch'));
    expect(run.exec('design')).toMatchObject({ worker: did('arch'), attempt: 1 });
  });

  it('fails the run when the owner lets a takeover time out', () => {
    const def = assertPlaybook({
      name: 't',
      version: '1',
      takeover_timeout: '1h',
      stages: [{ id: 'a', role: 'r', output: { kind: 'md', key: 'a.md' }, max_retries: 0 }],
    });
    const run = startRun(def);
    run.start();
    run.fail('a');
    expect(run.value()).toBe('{"live":"takeover"}');
    run.clock.increment(3_600_000);
    expect(run.value()).toBe('"failed"');
    expect(run.sends('run.failed').length).toBe(1);
    expect(run.ctx().end_reason).toMatch(/did not act/);
  });
});

describe('run: stale and foreign events', () => {
  it('ignores a late delivery from an earlier attempt with an event, never applying it', () => {
    const run = startRun(devTeam);
    run.start();
    const old = run.exec('requirements').task_id!;
    run.timeout('requirements');
    run.backoff();
    run.deliver('requirements', { task_id: old });
    expect(run.exec('requirements')).toMatchObject({ status: 'running', output_ref: null, attempt: 2 });
    expect(run.events('error').at(-1)?.payload).toMatchObject({ reason: 'stale_task', task_id: old });
    run.deliver('requirements');
    expect(run.value()).toContain('design');
  });

  it('ignores deliveries from the wrong worker, with a malformed ref, or while retrying', () => {
    const run = startRun(devTeam);
    run.start();
    run.deliver('requirements', { from: did('impostor') });
    const task_id = run.exec('requirements').task_id!;
    run.actor.send({
      type: 'stage.delivered',
      from: did('pm0'),
      ts: 99,
      body: { task_id, ref: { key: 'x' } as never },
    });
    expect(run.value()).toContain('requirements');
    expect(run.events('error').map((e) => (e.payload as { reason: string }).reason)).toEqual([
      'not_assigned_worker',
      'invalid_ref',
    ]);
    run.fail('requirements');
    run.deliver('requirements');
    expect(run.value()).toBe('{"live":"retrying"}');
    expect(run.events('error').length).toBe(3);
  });
});

describe('run: pause and resume', () => {
  it('resumes to the stage it paused in without assigning it again', () => {
    const run = startRun(devTeam);
    run.start();
    run.deliver('requirements');
    run.owner('run.pause');
    expect(run.value()).toBe('"paused"');
    run.owner('run.resume');
    expect(run.value()).toBe('{"live":{"running":{"design":"working"}}}');
    expect(run.sends('stage.assign').length).toBe(2);
  });

  it('holds a delivery that arrives while paused and applies it on resume', () => {
    const run = startRun(devTeam);
    run.start();
    run.owner('run.pause');
    run.deliver('requirements');
    expect(run.value()).toBe('"paused"');
    expect(run.ctx().deferred.length).toBe(1);
    run.owner('run.resume');
    expect(run.value()).toContain('design');
    expect(run.ctx().deferred).toEqual([]);
  });

  it('resumes into retrying and takeover too', () => {
    const run = startRun(devTeam);
    run.start();
    run.fail('requirements');
    run.owner('run.pause');
    run.owner('run.resume');
    expect(run.value()).toBe('{"live":"retrying"}');
    run.backoff();
    run.fail('requirements', { fatal: true });
    run.owner('run.pause');
    run.owner('run.resume');
    expect(run.value()).toBe('{"live":"takeover"}');
  });

  it('reports owner decisions sent while paused or before start instead of dropping them silently', () => {
    const run = startRun(devTeam);
    run.owner('takeover.skip');
    run.owner('run.pause');
    run.start();
    run.owner('run.pause');
    run.owner('takeover.skip');
    run.start();
    expect(run.value()).toBe('"paused"');
    expect(run.events('error').map((e) => (e.payload as { ignored: string }).ignored)).toEqual([
      'takeover.skip',
      'run.pause',
      'takeover.skip',
      'run.start',
    ]);
  });

  it('ignores resume when not paused and pause from strangers', () => {
    const run = startRun(devTeam);
    run.start();
    run.owner('run.resume');
    run.actor.send({ type: 'run.pause', from: did('stranger'), ts: 5, body: {} });
    expect(run.value()).toContain('requirements');
    expect(run.events('error').length).toBe(2);
  });
});

describe('run: abort', () => {
  const states: Array<[string, (run: ReturnType<typeof startRun>) => void]> = [
    ['pending', () => {}],
    ['running', (r) => r.start()],
    [
      'retrying',
      (r) => {
        r.start();
        r.fail('requirements');
      },
    ],
    [
      'takeover',
      (r) => {
        r.start();
        r.fail('requirements', { fatal: true });
      },
    ],
    [
      'paused',
      (r) => {
        r.start();
        r.owner('run.pause');
      },
    ],
  ];
  for (const [name, reach] of states) {
    it(`aborts from ${name} and tells the coordinator`, () => {
      const run = startRun(devTeam);
      reach(run);
      run.owner('run.abort', { reason: 'requirements changed' });
      expect(run.value()).toBe('"aborted"');
      expect(run.sends('run.aborted')).toMatchObject([
        { to: SECRETARY, body: { reason: 'requirements changed' } },
      ]);
      expect(run.actor.getSnapshot().status).toBe('done');
    });
  }

  it('tells the worker on a running task to stop', () => {
    const run = startRun(devTeam);
    run.start();
    run.owner('run.abort');
    expect(run.sends('stage.cancel')).toMatchObject([
      { to: did('pm0'), body: { task_id: 'run1/requirements/1' } },
    ]);
  });
});

describe('run: collaboration modes', () => {
  it('fans out to every worker, waits for all, and hands every ref to the merge stage', () => {
    const run = startRun(playbookTemplate('parallel'));
    run.start();
    const assigns = run.sends('stage.assign');
    expect(assigns.map((a) => [a.to, (a.body as { task_id: string }).task_id])).toEqual([
      [did('worker0'), 'run1/work/1#0'],
      [did('worker1'), 'run1/work/1#1'],
      [did('worker2'), 'run1/work/1#2'],
    ]);
    run.deliver('work', { shard: 0 });
    run.deliver('work', { shard: 2 });
    expect(run.value()).toContain('work');
    run.deliver('work', { shard: 1 });
    expect(run.value()).toContain('merge');
    const merge = run.sends('stage.assign').at(-1)!;
    expect((merge.body as { context: ContextSnapshot }).context.inputs.map((r) => r.key)).toEqual([
      'work/0',
      'work/1',
      'work/2',
    ]);
  });

  it('gives each map worker its shard of the input', () => {
    const run = startRun(playbookTemplate('map-reduce'));
    run.start();
    run.deliver('split');
    const shards = run
      .sends('stage.assign')
      .slice(1)
      .map((a) => (a.body as { context: ContextSnapshot }).context.stage.shard);
    expect(shards).toEqual([0, 1, 2, 3].map((index) => ({ index, count: 4, partition: true })));
  });

  it('decides a vote at quorum and ignores the late ballot', () => {
    const run = startRun(playbookTemplate('vote'));
    run.start();
    run.deliver('frame');
    const late = run.exec('ballot').shards![2]!;
    run.deliver('ballot', { shard: 0, choice: 'yes' });
    run.deliver('ballot', { shard: 1, choice: 'yes' });
    expect(run.value()).toContain('conclude');
    expect(run.exec('ballot')).toMatchObject({ decision: 'yes', status: 'delivered' });
    run.actor.send({
      type: 'stage.delivered',
      from: late.worker,
      ts: 1e9,
      body: { task_id: late.task_id, ref: run.exec('ballot').output_ref!, choice: 'no' },
    });
    expect(run.events('error').at(-1)?.payload).toMatchObject({ reason: 'stale_task' });
  });

  it('retries a vote where no choice reaches the quorum', () => {
    const run = startRun(playbookTemplate('vote'));
    run.start();
    run.deliver('frame');
    run.deliver('ballot', { shard: 0, choice: 'yes' });
    run.deliver('ballot', { shard: 1, choice: 'no' });
    run.deliver('ballot', { shard: 2, choice: 'maybe' });
    expect(run.value()).toBe('{"live":"retrying"}');
    expect(run.exec('ballot').last_error).toMatch(/no quorum/);
  });
});

describe('run: persistence', () => {
  it('continues from a persisted snapshot as if nothing happened', () => {
    const run = startRun(devTeam);
    toReview(run);
    run.reject('review');
    const persisted = JSON.parse(JSON.stringify(run.actor.getPersistedSnapshot()));
    run.actor.stop();
    const machine = compilePlaybook(devTeam);
    // Input is only read when a run is created; a restored snapshot carries its own context.
    const input = { run_id: 'unused', objective: '', owner: OWNER, assignments: {} };
    const actor = createActor(machine, { snapshot: persisted, input, clock: new SimulatedClock() });
    actor.start();
    expect(actor.getSnapshot().value).toEqual({ live: { running: { implement: 'working' } } });
    // The kernel re-arms timers itself: the snapshot says which are due and after how long.
    const timers = armedTimers(devTeam, actor.getSnapshot());
    expect(timers).toEqual([
      {
        event: 'xstate.after.stageTimeout.run.live.running.implement.working',
        delay: 'stageTimeout',
        delay_ms: 7_200_000,
      },
    ]);
    const e = actor.getSnapshot().context.stages['implement']!;
    actor.send({
      type: 'stage.delivered',
      from: e.worker!,
      ts: 1e6,
      body: { task_id: e.task_id!, ref: run.exec('design').output_ref! },
    });
    expect(actor.getSnapshot().value).toEqual({ live: { running: { test: 'working' } } });
    actor.send({ type: armedTimers(devTeam, actor.getSnapshot())[0]!.event } as never);
    expect(actor.getSnapshot().value).toEqual({ live: 'retrying' });
    expect(armedTimers(devTeam, actor.getSnapshot())).toMatchObject([
      { delay: 'retryBackoff', delay_ms: 5_000 },
    ]);
  });
});

describe('templates', () => {
  for (const name of TEMPLATE_NAMES) {
    it(`${name} validates, compiles and runs to completion`, () => {
      const run = startRun(playbookTemplate(name));
      run.start();
      run.finish();
      expect(run.value()).toBe('"completed"');
      expect(run.sends('run.completed').length).toBe(1);
    });
  }
});
