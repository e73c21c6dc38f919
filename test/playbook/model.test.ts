// Model-based tests: @xstate/graph walks the compiled dev-team statechart; every distinct transition is replayed on a real actor.
import { type AdjacencyMap, type AdjacencyValue, getAdjacencyMap, getShortestPaths } from '@xstate/graph';
import { describe, expect, it } from 'vitest';
import { createActor, getNextTransitions, SimulatedClock, type SnapshotFrom } from 'xstate';
import { compilePlaybook, type RunMachine } from '../../machines/playbook/compile.ts';
import type { RunEffect, RunInput, SendEffect, TraceEffect } from '../../machines/playbook/run.ts';
import { playbookTemplate } from '../../machines/playbook/templates.ts';
import { assignmentsFor, did, OWNER, ref, SECRETARY } from './harness.ts';

const def = playbookTemplate('dev-team');
const machine = compilePlaybook(def);
const input: RunInput = {
  run_id: 'run1',
  objective: 'ship the login page',
  owner: OWNER,
  coordinator: SECRETARY,
  enclave_id: 'enc1',
  assignments: assignmentsFor(def),
};
type Snap = SnapshotFrom<RunMachine>;
// The machine accepts kernel timer events too; the model hands them over as plain events.
type ModelEvent = { type: string; from?: string; ts?: number; body?: Record<string, unknown> };

const TS = 50_000;
const STRANGER = did('stranger');

/** Concrete events to try in a snapshot: one per transition the statechart offers, plus refusal variants. */
function eventsFor(snap: Snap): ModelEvent[] {
  const ctx = snap.context;
  const exec = ctx.current ? ctx.stages[ctx.current] : undefined;
  const types = new Set(getNextTransitions(snap).map((t) => String(t.eventType)));
  const out: ModelEvent[] = [];
  for (const type of types) {
    if (type === '' || type === '*') continue;
    if (type.startsWith('xstate.after.')) out.push({ type });
    else if (type === 'stage.delivered' && exec?.task_id && exec.worker) {
      out.push({
        type,
        from: exec.worker,
        ts: TS,
        body: { task_id: exec.task_id, ref: ref(`${exec.stage}/out`) },
      });
      // A late delivery from the previous attempt: must be refused, never applied.
      if (exec.attempt > 1) {
        const stale = `${ctx.run_id}/${exec.stage}/${exec.attempt - 1}`;
        out.push({
          type,
          from: exec.worker,
          ts: TS,
          body: { task_id: stale, ref: ref(`${exec.stage}/stale`) },
        });
      }
    } else if (type === 'stage.failed' && exec?.task_id && exec.worker) {
      out.push({ type, from: exec.worker, ts: TS, body: { task_id: exec.task_id, error: 'crashed' } });
      out.push({
        type,
        from: exec.worker,
        ts: TS,
        body: { task_id: exec.task_id, error: 'cannot do this', fatal: true },
      });
    } else if (type === 'stage.rejected' && exec?.task_id && exec.worker) {
      out.push({ type, from: exec.worker, ts: TS, body: { task_id: exec.task_id, reason: 'needs work' } });
    } else if (type === 'takeover.deliver')
      out.push({ type, from: OWNER, ts: TS, body: { ref: ref('owner/out') } });
    else if (type === 'takeover.reassign')
      out.push({ type, from: OWNER, ts: TS, body: { worker: did('backup') } });
    else if (type === 'takeover.skip') out.push({ type, from: OWNER, ts: TS, body: {} });
    else if (type === 'run.abort') {
      out.push({ type, from: OWNER, ts: TS, body: { reason: 'stop' } });
      out.push({ type, from: STRANGER, ts: TS, body: { reason: 'hijack' } });
    } else if (type.startsWith('run.')) out.push({ type, from: OWNER, ts: TS, body: {} });
  }
  return out;
}

/**
 * Abstract state: configuration, current stage, its retry count, the rollback target's retry count and whether
 * events are held. Clocks, ids, refs and other stages' counters are left out so the graph stays small; every
 * path is still made of real transitions.
 */
function serialize(snap: Snap): string {
  const c = snap.context;
  return JSON.stringify([
    snap.value,
    c.current,
    c.current ? c.stages[c.current]?.retry_count : null,
    c.stages['implement']?.retry_count,
    c.deferred.length > 0,
  ]);
}

const label = (e: ModelEvent) => {
  if (e.type.startsWith('xstate.after.')) return e.type.split('.')[2] ?? e.type;
  const b = e.body ?? {};
  if (e.from === STRANGER) return `${e.type}(stranger)`;
  if (b['fatal']) return `${e.type}(fatal)`;
  if (typeof b['task_id'] === 'string' && (b['ref'] as { key?: string } | undefined)?.key?.endsWith('/stale'))
    return `${e.type}(stale)`;
  return e.type;
};
const configOf = (snap: Snap) => JSON.stringify(snap.value);

const options = {
  input,
  events: (s: Snap) => eventsFor(s) as never[],
  serializeState: (s: Snap) => serialize(s),
  serializeEvent: (e: ModelEvent) => JSON.stringify(e),
};

describe('dev-team statechart (model-based)', () => {
  const paths = getShortestPaths(machine, options);
  const bySerialized = new Map(paths.map((p) => [serialize(p.state), p]));
  // getAdjacencyMap's typing does not follow setup()'s inferred snapshot type; the values are this machine's snapshots.
  const adjacency = getAdjacencyMap(machine as never, options as never) as AdjacencyMap<Snap, ModelEvent>;

  // Every distinct statechart transition (source configuration, event kind, target configuration), each with the
  // shortest path that reaches its source.
  const edges = new Map<string, { prefix: ModelEvent[]; event: ModelEvent; from: Snap; to: Snap }>();
  for (const [key, entry] of Object.entries(adjacency) as Array<[string, AdjacencyValue<Snap, ModelEvent>]>) {
    const path = bySerialized.get(key);
    if (!path) continue;
    const prefix = path.steps.map((s) => s.event as ModelEvent).filter((e) => e.type !== 'xstate.init');
    for (const t of Object.values(entry.transitions) as Array<{ event: ModelEvent; state: Snap }>) {
      const event = t.event;
      const id = `${configOf(entry.state)} --${label(event)}--> ${configOf(t.state)}`;
      const known = edges.get(id);
      if (!known || known.prefix.length > prefix.length)
        edges.set(id, { prefix, event, from: entry.state, to: t.state });
    }
  }

  it('reaches every state node of the statechart', () => {
    const reached = new Set<string>();
    for (const p of paths) for (const s of p.state._nodes) reached.add(s.id);
    // Transient nodes (`route`, each stage's `assign`) and the history node are passed through, never rested in.
    const all: string[] = [];
    const walk = (node: { id: string; states: Record<string, unknown> }) => {
      all.push(node.id);
      for (const child of Object.values(node.states)) walk(child as typeof node);
    };
    walk(machine.root as never);
    const resting = all.filter((id) => !/\.(assign|route|hist)$/.test(id));
    // run, pending, live, running, 5 stages × (stage + working), retrying, takeover, paused, completed, failed, aborted
    expect(resting.length).toBe(20);
    expect(resting.filter((id) => !reached.has(id))).toEqual([]);
  });

  it('finds the transitions the design names', () => {
    const ids = [...edges.keys()];
    const has = (re: RegExp) =>
      expect(
        ids.some((i) => re.test(i)),
        String(re),
      ).toBe(true);
    has(/"pending" --run.start--> .*requirements/);
    has(/review.*--stage.rejected--> .*implement/);
    has(/review.*--stage.rejected--> \{"live":"takeover"\}/);
    has(/stageTimeout--> \{"live":"retrying"\}/);
    has(/stageTimeout--> \{"live":"takeover"\}/);
    has(/"retrying"\} --retryBackoff--> /);
    has(/stage.failed\(fatal\)--> \{"live":"takeover"\}/);
    has(/"takeover"\} --takeover.deliver--> /);
    has(/"takeover"\} --takeover.reassign--> /);
    has(/"takeover"\} --takeover.skip--> /);
    has(/--stage.delivered\(stale\)--> /);
    has(/"takeover"\} --takeoverTimeout--> "failed"/);
    has(/review.*--stage.delivered--> "completed"/);
    for (const from of [
      '"pending"',
      'requirements',
      'design',
      'implement',
      'test',
      'review',
      '"retrying"',
      '"takeover"',
      '"paused"',
    ]) {
      expect(
        ids.some(
          (i) =>
            i.includes(from) && i.split(' --')[0]!.includes(from) && i.endsWith('--run.abort--> "aborted"'),
        ),
        from,
      ).toBe(true);
    }
    has(/--run.pause--> "paused"/);
    has(/"paused" --run.resume--> /);
  });

  it(`replays each of the statechart's transitions on a real actor with consistent effects`, () => {
    expect(edges.size).toBeGreaterThan(60);
    for (const [id, edge] of edges) {
      const clock = new SimulatedClock();
      const actor = createActor(machine, { input, clock });
      const effects: RunEffect[] = [];
      actor.on('*', (e) => effects.push(e as RunEffect));
      actor.start();
      for (const e of edge.prefix) actor.send(e as never);
      const before = actor.getSnapshot();
      expect(serialize(before), id).toBe(serialize(edge.from));
      const mark = effects.length;
      actor.send(edge.event as never);
      const after = actor.getSnapshot();
      expect(configOf(after), id).toBe(configOf(edge.to));
      checkInvariants(id, effects, after);
      checkStep(id, edge.event, before, after, effects.slice(mark));
      actor.stop();
    }
  });
});

const sendsOf = (fx: RunEffect[], msgType: string) =>
  fx.filter((e): e is SendEffect => e.type === 'anx.send' && e.msgType === msgType);
const statusOf = (fx: RunEffect[], state: string) =>
  fx.filter(
    (e): e is TraceEffect =>
      e.type === 'anx.event' && e.kind === 'status' && (e.payload as { state: string }).state === state,
  );

/** What must hold over the whole history of effects, whatever the path. */
function checkInvariants(id: string, fx: RunEffect[], snap: Snap): void {
  const assigns = sendsOf(fx, 'stage.assign');
  // Exactly one assignment per stage entry, to the worker of the stage's role, with the deterministic task id.
  expect(assigns.length, id).toBe(statusOf(fx, 'stage.started').length);
  const seen = new Map<string, number>();
  for (const a of assigns) {
    const b = a.body as { stage: string; task_id: string; attempt: number; run_id: string };
    expect(b.task_id, id).toBe(`${b.run_id}/${b.stage}/${b.attempt}`);
    expect(b.attempt, id).toBe((seen.get(b.stage) ?? 0) + 1);
    seen.set(b.stage, b.attempt);
    const role = def.stages.find((s) => s.id === b.stage)?.role ?? '';
    expect([input.assignments[role]?.[0], did('backup')], id).toContain(a.to);
  }
  for (const s of def.stages) {
    const e = snap.context.stages[s.id]!;
    expect(e.retry_count, id).toBeLessThanOrEqual(s.max_retries);
    expect(e.attempt, id).toBe(seen.get(s.id) ?? 0);
  }
  // Every takeover tells the owner once; a run ends with one message to the coordinator.
  expect(sendsOf(fx, 'run.takeover').length, id).toBe(statusOf(fx, 'run.takeover').length);
  expect(
    sendsOf(fx, 'run.takeover').every((s) => s.to === OWNER),
    id,
  ).toBe(true);
  const ends = ['run.completed', 'run.aborted', 'run.failed'].flatMap((t) => sendsOf(fx, t));
  expect(ends.length, id).toBe(snap.status === 'done' ? 1 : 0);
  expect(
    ends.every((s) => s.to === SECRETARY),
    id,
  ).toBe(true);
}

/** What the one step under test must have done. */
function checkStep(id: string, event: ModelEvent, before: Snap, after: Snap, fx: RunEffect[]): void {
  const l = label(event);
  const cur = before.context.current ?? '';
  const errors = fx.filter((e) => e.type === 'anx.event' && e.kind === 'error');
  const wasRunning = configOf(before).includes('running');
  const wasPaused = configOf(before) === '"paused"';
  if (wasPaused && l.startsWith('stage.')) {
    // Held for replay on resume, not applied now.
    expect(after.context.stages, id).toEqual(before.context.stages);
    expect(after.context.deferred.length, id).toBeGreaterThan(0);
    return;
  }
  if (
    l.endsWith('(stale)') ||
    l.endsWith('(stranger)') ||
    (!wasRunning && !wasPaused && l.startsWith('stage.'))
  ) {
    expect(configOf(after), id).toBe(configOf(before));
    expect(after.context.stages, id).toEqual(before.context.stages);
    expect(errors.length, id).toBe(1);
    return;
  }
  if (l === 'stage.rejected' && configOf(before).includes('review')) {
    const target = 'implement';
    const was = before.context.stages[target]!.retry_count;
    if (configOf(after).includes(target)) {
      expect(after.context.stages[target]!.retry_count, id).toBe(was + 1);
      expect(sendsOf(fx, 'stage.assign').length, id).toBe(1);
    } else {
      expect(configOf(after), id).toBe('{"live":"takeover"}');
      expect(sendsOf(fx, 'run.takeover').length, id).toBe(1);
    }
  }
  if (l === 'stageTimeout' || l === 'stage.failed') {
    const was = before.context.stages[cur]!.retry_count;
    if (configOf(after) === '{"live":"retrying"}')
      expect(after.context.stages[cur]!.retry_count, id).toBe(was + 1);
    else {
      expect(configOf(after), id).toBe('{"live":"takeover"}');
      expect(was, id).toBe(def.stages.find((s) => s.id === cur)!.max_retries);
    }
  }
  if (l === 'retryBackoff') {
    expect(sendsOf(fx, 'stage.assign').length, id).toBe(1);
    expect(after.context.stages[cur]!.attempt, id).toBe(before.context.stages[cur]!.attempt + 1);
  }
  if (l === 'run.resume') {
    // History puts the run back where it was; a resumed stage is not assigned again.
    expect(sendsOf(fx, 'stage.assign').length, id).toBe(0);
  }
  if (l === 'run.abort') {
    expect(configOf(after), id).toBe('"aborted"');
    expect(sendsOf(fx, 'run.aborted').length, id).toBe(1);
  }
  if (configOf(after) === '"completed"') {
    const manifest = sendsOf(fx, 'run.completed')[0]?.body as
      | { stages: Array<{ stage: string }> }
      | undefined;
    expect(
      manifest?.stages.map((s) => s.stage),
      id,
    ).toEqual(def.stages.map((s) => s.id));
  }
}
