// Model-based test of the Task statechart: @xstate/graph explores every request by every kind of signer, and an
// independent permission table says which may change the task; everything else must leave it exactly as it was.
import { type AdjacencyMap, type AdjacencyValue, getAdjacencyMap } from '@xstate/graph';
import { describe, expect, it } from 'vitest';
import type { SnapshotFrom } from 'xstate';
import type { Statement, StatementVerifier } from '../../machines/statement.ts';
import { createTaskMachine, type TaskContext, type TaskInput, type TaskState } from '../../machines/task.ts';

const PROPOSER = 'did:agentnexus:zProposer';
const CANDIDATE = 'did:agentnexus:zCandidate';
const OTHER = 'did:agentnexus:zOtherCandidate';
const STRANGER = 'did:agentnexus:zStranger';
const ADDRESS = 'task/t1';

/** Statements for the model: JSON of the fields (signatures are covered by the host-level tests). */
const verify: StatementVerifier = (raw, expected) => {
  const s = JSON.parse(String(raw)) as Statement & { forged?: boolean };
  if (s.forged === true) return { ok: false, problem: { code: 'SIGNATURE_INVALID', reason: 'forged' } };
  if (s.subject !== expected.subject || s.type !== expected.type)
    return { ok: false, problem: { code: 'SIGNATURE_INVALID', reason: 'bound elsewhere' } };
  return { ok: true, statement: { ...s, raw: String(raw) } };
};

const machine = createTaskMachine(verify);
type Snap = SnapshotFrom<typeof machine>;
type ModelEvent = { type: string; id: string; from: string; ts: number; body: { statement: string } };

function statement(id: string, type: string, signer: string, body: Record<string, unknown>, extra = {}) {
  return JSON.stringify({
    id,
    type,
    signer,
    subject: ADDRESS,
    ts: 1,
    body: { task_id: 't1', ...body },
    ...extra,
  });
}

const input: TaskInput = {
  task_id: 't1',
  address: ADDRESS,
  propose: {
    ...(JSON.parse(
      statement('p0', 'task.propose', PROPOSER, { title: 'x', candidates: [CANDIDATE, OTHER] }),
    ) as Statement),
    raw: 'p0',
  },
};

const REQUESTS: Array<{ type: string; body: Record<string, unknown>; label: string }> = [
  { type: 'task.claim', body: {}, label: 'claim' },
  ...(['in_progress', 'done', 'failed', 'cancelled'] as const).map((state) => ({
    type: 'task.notify',
    body: { state },
    label: state,
  })),
  { type: 'task.sync', body: { resources: [{ kind: 'url', url: 'https://example.org' }] }, label: 'sync' },
];

/** Every request by every signer, a forged one, and a replay of the last applied statement. */
function eventsFor(snap: Snap): ModelEvent[] {
  const n = snap.context.log.length;
  const out: ModelEvent[] = [];
  // Bounded: every state is reached within six changes; more resource syncs add nothing new.
  if (n >= 6) return out;
  for (const r of REQUESTS) {
    if (r.label === 'sync' && snap.context.resources.length >= 1) continue;
    for (const signer of [PROPOSER, CANDIDATE, OTHER, STRANGER]) {
      const id = `s${n}-${r.label}-${signer.slice(-6)}`;
      out.push({
        type: r.type,
        id,
        from: signer,
        ts: 1,
        body: { statement: statement(id, r.type, signer, r.body) },
      });
    }
    const forgedId = `s${n}-${r.label}-forged`;
    out.push({
      type: r.type,
      id: forgedId,
      from: snap.context.claimant ?? PROPOSER,
      ts: 1,
      body: {
        statement: statement(forgedId, r.type, snap.context.claimant ?? PROPOSER, r.body, { forged: true }),
      },
    });
  }
  const last = snap.context.log[n - 1];
  if (last !== undefined && last.type !== 'task.propose')
    out.push({
      type: last.type,
      id: `${last.id}-again`,
      from: last.signer,
      ts: 1,
      body: { statement: last.statement },
    });
  return out;
}

/** The permission table, written independently of the machine: where a request may take the task. */
function oracle(state: TaskState, c: TaskContext, e: ModelEvent): TaskState | 'unchanged' {
  const s = JSON.parse(e.body.statement) as {
    signer: string;
    body: { state?: string };
    forged?: boolean;
    id: string;
  };
  if (s.forged === true || c.log.some((l) => l.id === s.id)) return 'unchanged';
  const open = state === 'proposed' || state === 'claimed' || state === 'in_progress';
  if (e.type === 'task.claim')
    return state === 'proposed' && c.candidates.includes(s.signer) ? 'claimed' : 'unchanged';
  if (e.type === 'task.sync')
    return open && (s.signer === c.home || s.signer === c.claimant) ? state : 'unchanged';
  const want = s.body.state;
  if (want === 'cancelled') return open && s.signer === c.home ? 'cancelled' : 'unchanged';
  if (s.signer !== c.claimant) return 'unchanged';
  if (want === 'in_progress' && state === 'claimed') return 'in_progress';
  if (want === 'done' && state === 'in_progress') return 'done';
  if (want === 'failed' && (state === 'claimed' || state === 'in_progress')) return 'failed';
  return 'unchanged';
}

describe('task statechart (model-based)', () => {
  const adjacency = getAdjacencyMap(
    machine as never,
    {
      input,
      events: (s: Snap) => eventsFor(s) as never[],
      serializeState: (s: Snap) =>
        JSON.stringify([s.value, s.context.claimant, s.context.log.length, s.context.resources.length]),
      serializeEvent: (e: ModelEvent) => `${e.type}:${e.id}`,
      limit: 2000,
    } as never,
  ) as AdjacencyMap<Snap, ModelEvent>;
  const entries = Object.values(adjacency) as Array<AdjacencyValue<Snap, ModelEvent>>;

  it('reaches every state', () => {
    const reached = new Set(entries.map((v) => v.state.value as string));
    expect([...reached].sort()).toEqual([
      'cancelled',
      'claimed',
      'done',
      'failed',
      'in_progress',
      'proposed',
    ]);
  });

  it('changes the task only as the permission table allows, and leaves every refused request without a trace', () => {
    let checked = 0;
    let refused = 0;
    for (const { state: from, transitions } of entries) {
      for (const { event, state: to } of Object.values(transitions)) {
        const e = event as ModelEvent;
        const expected = oracle(from.value as TaskState, from.context, e);
        if (expected === 'unchanged') {
          expect(to.value).toBe(from.value);
          expect(to.context).toEqual(from.context);
          refused++;
        } else {
          expect(to.value).toBe(expected);
          expect(to.context.log.length).toBe(from.context.log.length + 1);
          expect(to.context.log.at(-1)?.signer).toBe(JSON.parse(e.body.statement).signer);
          if (e.type === 'task.claim') expect(to.context.claimant).toBe(JSON.parse(e.body.statement).signer);
          else expect(to.context.claimant).toBe(from.context.claimant);
        }
        checked++;
      }
    }
    expect(checked).toBeGreaterThan(100);
    expect(refused).toBeGreaterThan(checked / 2);
  });
});
