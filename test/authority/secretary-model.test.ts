// Model-based test of the Secretary's dispatch statechart: @xstate/graph explores every message from the host and from
// anyone else; the steps come in order, abort works from every live state, strangers change nothing, ends are final.
import { type AdjacencyMap, type AdjacencyValue, getAdjacencyMap, getShortestPaths } from '@xstate/graph';
import { describe, expect, it } from 'vitest';
import type { SnapshotFrom } from 'xstate';
import {
  isTerminal,
  SECRETARY_STEPS,
  type SecretaryInput,
  secretaryMachine,
} from '../../machines/secretary.ts';

type Snap = SnapshotFrom<typeof secretaryMachine>;
type ModelEvent = { type: string; from: string; body: Record<string, unknown> };

const OWNER = 'did:agentnexus:zOwner';
const input: SecretaryInput = {
  session_id: 's1',
  owner: OWNER,
  secretary: 'did:agentnexus:zSecretary',
  actor: 'did:agentnexus:zSecretary',
  objective: 'o',
  required_roles: ['developer'],
  source: {},
  playbook: '"dispatch"',
  enclave_id: 'enc-1',
  run_id: 'run-1',
  fingerprint: 'f',
  authorization: { basis: 'binding', proven_by: 'local-key' },
  proposed: [],
  created_at: 1,
};

const BODIES: Record<string, Record<string, unknown>> = {
  'authority.granted': {},
  'authority.refused': { code: 'ANX_FORBIDDEN_BINDING_EXPIRED', message: 'expired' },
  'workers.selected': { workers: [] },
  'enclave.ready': { enclave_id: 'enc-1' },
  'run.started': { run_id: 'run-1' },
  'step.failed': { step: 'x', code: 'ANX_X', message: 'broke' },
  'run.takeover': { stage: 'developer', reason: 'worker failed' },
  'run.completed': {},
  'run.failed': { reason: 'exhausted' },
  'run.aborted': { reason: 'by owner' },
  'result.signed': { manifest_ref: {}, final: [], signer: 'did:agentnexus:zSecretary' },
  'dispatch.abort': { actor: OWNER, reason: 'changed' },
};
const EVENTS: ModelEvent[] = Object.entries(BODIES).flatMap(([type, body]) => [
  { type, from: 'host', body },
  { type, from: OWNER, body },
]);

const options = {
  input,
  events: () => EVENTS as never[],
  serializeState: (s: Snap) => JSON.stringify([s.value, s.context.takeovers > 0]),
  serializeEvent: (e: ModelEvent) => `${e.type}@${e.from}`,
  limit: 5000,
};

describe('secretary dispatch statechart (model-based)', () => {
  const adjacency = getAdjacencyMap(secretaryMachine as never, options as never) as AdjacencyMap<
    Snap,
    ModelEvent
  >;
  const entries = Object.values(adjacency) as Array<AdjacencyValue<Snap, ModelEvent>>;

  it('reaches every step and every end', () => {
    const reached = new Set(entries.map((v) => v.state.value as string));
    for (const state of [
      ...SECRETARY_STEPS.filter((s) => s !== 'intake'),
      'aborting',
      'done',
      'failed',
      'aborted',
    ])
      expect(reached).toContain(state);
  });

  it('ignores every message not from the host: state and context stay exactly as they were', () => {
    for (const { state, transitions } of entries) {
      for (const t of Object.values(transitions)) {
        if (t.event.from === 'host') continue;
        expect(t.state.value).toEqual(state.value);
        expect(t.state.context).toEqual(state.context);
      }
    }
  });

  it('aborts from every live state, and changes nothing once ended', () => {
    for (const { state, transitions } of entries) {
      const value = state.value as string;
      const abort = Object.values(transitions).find(
        (t) => t.event.type === 'dispatch.abort' && t.event.from === 'host',
      );
      if (isTerminal(value)) {
        for (const t of Object.values(transitions)) expect(t.state.value).toBe(value);
      } else if (value !== 'aborting' && value !== 'reporting') {
        expect(['aborting', 'aborted']).toContain(abort?.state.value);
      }
    }
  });

  it('starts the run only after authority, selection and the Enclave, in that order', () => {
    const paths = getShortestPaths(secretaryMachine as never, options as never) as unknown as Array<{
      state: Snap;
      steps: Array<{ state: Snap; event: ModelEvent }>;
    }>;
    const toWaiting = paths.find((p) => p.state.value === 'waiting');
    expect(toWaiting?.steps.map((s) => s.event.type)).toEqual([
      'xstate.init',
      'authority.granted',
      'workers.selected',
      'enclave.ready',
      'run.started',
    ]);
    for (const p of paths.filter((x) => x.state.value === 'done'))
      expect(p.steps.map((s) => s.event.type)).toContain('run.completed');
  });

  it('reports takeovers to the owner without leaving waiting', () => {
    const waiting = entries.find((v) => v.state.value === 'waiting' && v.state.context.takeovers === 0);
    const t = Object.values(waiting?.transitions ?? {}).find(
      (x) => x.event.type === 'run.takeover' && x.event.from === 'host',
    );
    expect(t?.state.value).toBe('waiting');
    expect(t?.state.context.takeovers).toBe(1);
  });
});
