// Statechart graphs and their layout: every state and state-changing transition drawn, boxes nested and apart.
import { describe, expect, it } from 'vitest';
import { startApiServer } from '../../bridge/api/server.ts';
import { didMachine } from '../../machines/did.ts';
import { enclaveMachine } from '../../machines/enclave.ts';
import { compilePlaybook } from '../../machines/playbook/compile.ts';
import { playbookTemplate, TEMPLATE_NAMES } from '../../machines/playbook/templates.ts';
import {
  activeStateIds,
  allNodes,
  guardLabel,
  type MachineGraph,
  machineGraph,
  type StateNodeLike,
} from '../../playground/src/graph.ts';
import { type Box, layoutGraph } from '../../playground/src/layout.ts';
import { Host } from '../../runtime/host.ts';
import { cleanupTempDirs, tempDir } from '../helpers/tmp.ts';

function graphOf(machine: { root: unknown }, kind: string): MachineGraph {
  return machineGraph(machine.root as StateNodeLike, { kind, title: kind, version: 1 });
}

const devTeam = graphOf(compilePlaybook(playbookTemplate('dev-team')), 'dev-team');

function inside(outer: Box, inner: Box): boolean {
  return (
    inner.x >= outer.x &&
    inner.y >= outer.y &&
    inner.x + inner.w <= outer.x + outer.w &&
    inner.y + inner.h <= outer.y + outer.h
  );
}

function overlap(a: Box, b: Box): boolean {
  return a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h;
}

function checkLayout(graph: MachineGraph): void {
  const layout = layoutGraph(graph);
  const box = new Map(layout.boxes.map((b) => [b.id, b]));
  const nodes = allNodes(graph.root);
  expect(layout.boxes).toHaveLength(nodes.length);
  for (const n of nodes) {
    const parent = box.get(n.id) as Box;
    for (const [i, c] of n.children.entries()) {
      expect(inside(parent, box.get(c.id) as Box), `${c.id} inside ${n.id}`).toBe(true);
      for (const d of n.children.slice(i + 1))
        expect(overlap(box.get(c.id) as Box, box.get(d.id) as Box), `${c.id} apart from ${d.id}`).toBe(false);
    }
  }
  for (const b of layout.boxes) {
    expect(b.x + b.w).toBeLessThanOrEqual(layout.width);
    expect(b.y + b.h).toBeLessThanOrEqual(layout.height);
  }
}

describe('machine graphs', () => {
  it('draws one state per stage with its assign and working states under live.running', () => {
    const ids = allNodes(devTeam.root).map((n) => n.id);
    for (const stage of ['requirements', 'design', 'implement', 'test', 'review']) {
      expect(ids).toContain(`run.live.running.${stage}`);
      expect(ids).toContain(`run.live.running.${stage}.working`);
    }
    expect(devTeam.root.initial).toBe('run.pending');
    expect(allNodes(devTeam.root).find((n) => n.id === 'run.completed')?.type).toBe('final');
    expect(allNodes(devTeam.root).find((n) => n.id === 'run.live.hist')?.type).toBe('history');
  });

  it('labels transitions with their events and guards, delayed ones as after <delay>', () => {
    const edge = (source: string, target: string) =>
      devTeam.edges.filter((e) => e.source === source && e.target === target);
    expect(edge('run.pending', 'run.live')).toEqual([
      expect.objectContaining({ event: 'run.start', guard: 'isOwner', kind: 'event', actions: ['startRun'] }),
    ]);
    expect(edge('run.live.running.review', 'run.live.route')[0]).toMatchObject({
      event: 'stage.rejected',
      guard: 'canRollback',
    });
    expect(edge('run.live.running.design', 'run.live.retrying')[0]?.guard).toBe('canRetry && !isFatal');
    expect(edge('run.live.route', 'run.live.running.test')[0]).toMatchObject({
      event: 'always',
      kind: 'always',
      guard: 'isCurrent(test)',
    });
    expect(edge('run.live.running.test.working', 'run.live.retrying')[0]).toMatchObject({
      event: 'after stageTimeout',
      kind: 'after',
    });
    // Actions-only transitions (refusing an event) never move the state and are not drawn.
    expect(devTeam.edges.every((e) => e.target !== '')).toBe(true);
    expect(edge('run.pending', 'run.pending')).toEqual([]);
  });

  it('reads guards built with and/or/not and parameterised guards', () => {
    expect(guardLabel('isOwner')).toBe('isOwner');
    expect(guardLabel({ type: 'isCurrent', params: { stage: 'x' } })).toBe('isCurrent(x)');
    expect(guardLabel(undefined)).toBeUndefined();
  });

  it('turns state values into the active node ids, parallel regions included', () => {
    expect(activeStateIds({ live: { running: { design: 'working' } } }, 'run')).toEqual([
      'run',
      'run.live',
      'run.live.running',
      'run.live.running.design',
      'run.live.running.design.working',
    ]);
    expect(activeStateIds('completed', 'run')).toEqual(['run', 'run.completed']);
    expect(activeStateIds({ a: 'x', b: 'y' }, 'did')).toEqual([
      'did',
      'did.a',
      'did.a.x',
      'did.b',
      'did.b.y',
    ]);
  });
});

describe('layout', () => {
  const machines: Array<[string, MachineGraph]> = [
    ['did', graphOf(didMachine, 'did')],
    ['enclave', graphOf(enclaveMachine, 'enclave')],
    ...TEMPLATE_NAMES.map(
      (name) => [name, graphOf(compilePlaybook(playbookTemplate(name)), name)] as [string, MachineGraph],
    ),
  ];

  it.each(machines)(
    'places every state of %s inside its parent and apart from its siblings',
    (_name, graph) => {
      checkLayout(graph);
    },
  );

  it('draws every machine a real host serves, run machines included', async () => {
    const host = await Host.open({ dataDir: tempDir('anx-graphs-'), noSync: true });
    const api = await startApiServer(host, { port: 0, token: 'graph-test-token' });
    try {
      const owner = (await host.createIdentity({ name: 'owner' })).did;
      const enclave = (await host.teamwork.enclaves.create({ owner, id: 'e' })).enclave_id;
      const assignments = Object.fromEntries(playbookTemplate('pipeline').stages.map((s) => [s.role, owner]));
      await host.teamwork.startRun({
        playbook: 'pipeline',
        objective: 'o',
        owner,
        enclave,
        assignments,
        run_id: 'r1',
      });
      const get = async <T>(path: string): Promise<T> => {
        const res = await fetch(`${api.url}${path}`, {
          headers: { authorization: 'Bearer graph-test-token' },
        });
        expect(res.status, path).toBe(200);
        return (await res.json()) as T;
      };
      const { machines: list } = await get<{
        machines: Array<{ kind: string; source: string; runs: string[] }>;
      }>('/v1/playground/machines');
      const kinds = list.map((m) => m.kind);
      for (const k of ['did', 'secretary', 'enclave', 'task', 'discussion', 'template/dev-team'])
        expect(kinds).toContain(k);
      expect(list.find((m) => m.source === 'run')?.runs).toEqual(['r1']);
      for (const m of list) {
        const graph = await get<MachineGraph>(`/v1/playground/machines/${encodeURIComponent(m.kind)}`);
        expect(graph.kind).toBe(m.kind);
        checkLayout(graph);
      }
      const unknown = await fetch(`${api.url}/v1/playground/machines/nope`, {
        headers: { authorization: 'Bearer graph-test-token' },
      });
      expect(unknown.status).toBe(404);
      expect(((await unknown.json()) as { error: { code: string } }).error.code).toBe(
        'ANX_MACHINE_NOT_FOUND',
      );
      const { actors } = await get<{ actors: Array<{ address: string }> }>('/v1/playground/actors');
      expect(actors[0]).toMatchObject({ address: 'run/r1' });
    } finally {
      await api.close();
      await host.close();
      cleanupTempDirs();
    }
  });

  it('draws one path per pair of states, labelled with every transition between them', () => {
    const layout = layoutGraph(devTeam);
    const pairs = new Set(devTeam.edges.map((e) => `${e.source}>${e.target}`));
    expect(layout.edges).toHaveLength(pairs.size);
    expect(layout.edges.reduce((n, e) => n + e.edges.length, 0)).toBe(devTeam.edges.length);
    const abort = layout.edges.find((e) => e.source === 'run.live' && e.target === 'run.aborted');
    expect(abort?.labels).toEqual(['run.abort [isOwner]']);
    for (const e of layout.edges) expect(e.d).toMatch(/^M[\d.-]+,[\d.-]+ C/);
  });

  it('puts the stages of a pipeline in order, left to right', () => {
    const layout = layoutGraph(devTeam);
    const x = (id: string) => layout.boxes.find((b) => b.id === `run.live.running.${id}`)?.x ?? -1;
    const order = ['requirements', 'design', 'implement', 'test', 'review'].map(x);
    expect([...order].sort((a, b) => a - b)).toEqual(order);
  });

  it('lays the same graph out the same way every time', () => {
    expect(layoutGraph(devTeam)).toEqual(layoutGraph(devTeam));
  });
});
