// Model-based tests of the multi-worker collaboration modes (vote with quorum, parallel fan-out) via @xstate/graph.
import { type AdjacencyMap, type AdjacencyValue, getAdjacencyMap, getShortestPaths } from '@xstate/graph';
import { describe, expect, it } from 'vitest';
import { createActor, getNextTransitions, SimulatedClock, type SnapshotFrom } from 'xstate';
import { compilePlaybook, type RunMachine } from '../../machines/playbook/compile.ts';
import type { RunEffect, RunInput, SendEffect, TraceEffect } from '../../machines/playbook/run.ts';
import { playbookTemplate, type TemplateName } from '../../machines/playbook/templates.ts';
import { assignmentsFor, did, OWNER, ref, SECRETARY } from './harness.ts';

type Snap = SnapshotFrom<RunMachine>;
type ModelEvent = { type: string; from?: string; ts?: number; body?: Record<string, unknown> };
const TS = 50_000;

function eventsFor(snap: Snap): ModelEvent[] {
  const ctx = snap.context;
  const exec = ctx.current ? ctx.stages[ctx.current] : undefined;
  const out: ModelEvent[] = [];
  for (const type of new Set(getNextTransitions(snap).map((t) => String(t.eventType)))) {
    if (type === '' || type === '*') continue;
    if (type.startsWith('xstate.after.')) out.push({ type });
    else if (type === 'stage.delivered' && exec?.status === 'running') {
      const tasks = exec.shards
        ? exec.shards
            .filter((s) => s.status === 'running')
            .map((s) => ({ task_id: s.task_id, worker: s.worker }))
        : [{ task_id: exec.task_id ?? '', worker: exec.worker ?? '' }];
      // Only the first open task: the order in which workers answer does not change which states exist.
      const t = tasks[0];
      if (!t) continue;
      for (const choice of exec.shards && ctx.current === 'ballot' ? ['yes', 'no', 'maybe'] : [undefined]) {
        out.push({
          type,
          from: t.worker,
          ts: TS,
          body: { task_id: t.task_id, ref: ref(`${exec.stage}/out`), ...(choice ? { choice } : {}) },
        });
      }
    } else if (type === 'stage.failed' && exec?.status === 'running') {
      const t = exec.shards?.find((s) => s.status === 'running') ?? {
        task_id: exec.task_id ?? '',
        worker: exec.worker ?? '',
      };
      out.push({ type, from: t.worker, ts: TS, body: { task_id: t.task_id, error: 'crashed' } });
    } else if (type === 'takeover.deliver')
      out.push({ type, from: OWNER, ts: TS, body: { ref: ref('owner/out') } });
    else if (type === 'takeover.reassign')
      out.push({ type, from: OWNER, ts: TS, body: { worker: did('backup') } });
    else if (type === 'takeover.skip' || type.startsWith('run.'))
      out.push({ type, from: OWNER, ts: TS, body: {} });
  }
  return out;
}

function serialize(snap: Snap): string {
  const c = snap.context;
  const e = c.current ? c.stages[c.current] : undefined;
  return JSON.stringify([
    snap.value,
    c.current,
    e?.retry_count,
    e?.shards?.map((s) => `${s.status}:${s.choice ?? ''}`),
    c.deferred.length > 0,
  ]);
}

const configOf = (snap: Snap) => JSON.stringify(snap.value);
const sendsOf = (fx: RunEffect[], msgType: string) =>
  fx.filter((e): e is SendEffect => e.type === 'anx.send' && e.msgType === msgType);
const startedOf = (fx: RunEffect[]) =>
  fx.filter(
    (e): e is TraceEffect =>
      e.type === 'anx.event' &&
      e.kind === 'status' &&
      (e.payload as { state: string }).state === 'stage.started',
  );

function modelSuite(name: TemplateName, extra: (ids: string[]) => void): void {
  const def = playbookTemplate(name);
  const machine = compilePlaybook(def);
  const input: RunInput = {
    run_id: 'run1',
    objective: 'decide',
    owner: OWNER,
    coordinator: SECRETARY,
    assignments: assignmentsFor(def),
  };
  const options = {
    input,
    events: (s: Snap) => eventsFor(s) as never[],
    serializeState: (s: Snap) => serialize(s),
    serializeEvent: (e: ModelEvent) => JSON.stringify(e),
  };

  describe(`${name} statechart (model-based)`, () => {
    const paths = getShortestPaths(machine, options);
    const bySerialized = new Map(paths.map((p) => [serialize(p.state), p]));
    const adjacency = getAdjacencyMap(machine as never, options as never) as AdjacencyMap<Snap, ModelEvent>;
    const edges = new Map<string, { prefix: ModelEvent[]; event: ModelEvent; to: Snap }>();
    for (const [key, entry] of Object.entries(adjacency) as Array<
      [string, AdjacencyValue<Snap, ModelEvent>]
    >) {
      const path = bySerialized.get(key);
      if (!path) continue;
      const prefix = path.steps.map((s) => s.event as ModelEvent).filter((e) => e.type !== 'xstate.init');
      for (const t of Object.values(entry.transitions) as Array<{ event: ModelEvent; state: Snap }>) {
        const choice = t.event.body?.['choice'];
        const id = `${configOf(entry.state)} --${t.event.type}${choice ? `(${choice})` : ''}--> ${configOf(t.state)}`;
        const known = edges.get(id);
        if (!known || known.prefix.length > prefix.length)
          edges.set(id, { prefix, event: t.event, to: t.state });
      }
    }

    it('reaches every resting state node', () => {
      const reached = new Set<string>();
      for (const p of paths) for (const s of p.state._nodes) reached.add(s.id);
      const all: string[] = [];
      const walk = (node: { id: string; states: Record<string, unknown> }) => {
        all.push(node.id);
        for (const child of Object.values(node.states)) walk(child as typeof node);
      };
      walk(machine.root as never);
      // `failed` needs a takeover timeout, which these templates do not set.
      const resting = all.filter((id) => !/\.(assign|route|hist)$/.test(id) && id !== 'run.failed');
      expect(resting.filter((id) => !reached.has(id))).toEqual([]);
    });

    it('has the transitions of its collaboration mode', () => {
      extra([...edges.keys()]);
    });

    it('replays every transition on a real actor with one assignment per worker per stage entry', () => {
      for (const [id, edge] of edges) {
        const actor = createActor(machine, { input, clock: new SimulatedClock() });
        const fx: RunEffect[] = [];
        actor.on('*', (e) => fx.push(e as RunEffect));
        actor.start();
        for (const e of [...edge.prefix, edge.event]) actor.send(e as never);
        const snap = actor.getSnapshot();
        expect(configOf(snap), id).toBe(configOf(edge.to));
        const workers = startedOf(fx).flatMap((e) => (e.payload as { workers: string[] }).workers);
        const assigns = sendsOf(fx, 'stage.assign');
        expect(
          assigns.map((a) => a.to),
          id,
        ).toEqual(workers);
        for (const a of assigns) {
          const b = a.body as { stage: string; task_id: string; attempt: number };
          expect(b.task_id, id).toMatch(new RegExp(`^run1/${b.stage}/${b.attempt}(#\\d+)?$`));
        }
        for (const s of def.stages)
          expect(snap.context.stages[s.id]!.retry_count, id).toBeLessThanOrEqual(s.max_retries);
        const ends = ['run.completed', 'run.aborted', 'run.failed'].flatMap((t) => sendsOf(fx, t));
        expect(ends.length, id).toBe(snap.status === 'done' ? 1 : 0);
        actor.stop();
      }
    });
  });
}

modelSuite('vote', (ids) => {
  const has = (re: RegExp) =>
    expect(
      ids.some((i) => re.test(i)),
      String(re),
    ).toBe(true);
  has(/ballot.*--stage.delivered\(yes\)--> .*conclude/);
  has(/ballot.*--stage.delivered\(no\)--> .*conclude/);
  has(/ballot.*--stage.delivered\((yes|no|maybe)\)--> \{"live":"retrying"\}/);
  has(/ballot.*--stage.delivered\((yes|no|maybe)\)--> \{"live":"takeover"\}/);
  has(/ballot.*--stage.delivered\((yes|no)\)--> \{"live":\{"running":\{"ballot"/);
});

modelSuite('parallel', (ids) => {
  const has = (re: RegExp) =>
    expect(
      ids.some((i) => re.test(i)),
      String(re),
    ).toBe(true);
  has(/"work":"working".*--stage.delivered--> .*"work":"working"/);
  has(/"work":"working".*--stage.delivered--> .*merge/);
});
