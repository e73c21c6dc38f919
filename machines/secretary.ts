// The Secretary's statechart for one dispatch: intake → authority check → worker selection → Enclave → Run → waiting → result callback → done.
import { assign, emit, setup } from 'xstate';

/** Version recorded in every persisted dispatch snapshot; bump it when the context or states change shape. */
export const SECRETARY_MACHINE_VERSION = 1;

/** Why a worker was picked for a role: what the selection weighed, recorded in an event. */
export interface WorkerChoice {
  role: string;
  did: string;
  binding_id: string;
  presence: 'online' | 'offline' | 'unknown';
  trust: number;
  load: number;
  candidates: number;
  reason: string;
}

export interface SecretaryInput {
  session_id: string;
  owner: string;
  secretary: string;
  actor: string;
  objective: string;
  required_roles: string[];
  source: Record<string, unknown>;
  /** A template name or the hash of a stored definition. */
  playbook: string;
  enclave_id: string;
  run_id: string;
  /** What identifies the request: a repeat with the same fingerprint is the same dispatch. */
  fingerprint: string;
  /** How the actor was allowed (recorded by intake). */
  authorization: { basis: string; proven_by: string; binding_id?: string };
  /** The selection made at intake, confirmed by the selecting step. */
  proposed: WorkerChoice[];
  callback_url?: string;
  created_at: number;
}

export interface SecretaryContext extends SecretaryInput {
  workers: WorkerChoice[];
  enclave_ready: boolean;
  run_started: boolean;
  takeovers: number;
  result: { manifest_ref: unknown; final: unknown[]; signer: string } | null;
  webhook: { url: string; status: number | null; error: string | null } | null;
  abort: { actor: string; reason: string } | null;
  end_reason: string | null;
  failure: { step: string; code: string; message: string } | null;
}

/** Messages the dispatch actor takes; only the host (its driver) sends them. */
export type SecretaryEvent =
  | { type: 'authority.granted'; from: string; body?: unknown }
  | { type: 'authority.refused'; from: string; body: { code: string; message: string } }
  | { type: 'workers.selected'; from: string; body: { workers: WorkerChoice[] } }
  | { type: 'enclave.ready'; from: string; body: { enclave_id: string } }
  | { type: 'run.started'; from: string; body: { run_id: string } }
  | { type: 'step.failed'; from: string; body: { step: string; code: string; message: string } }
  | { type: 'run.takeover'; from: string; body: { stage: string; reason: string } }
  | { type: 'run.completed'; from: string; body: unknown }
  | { type: 'run.failed'; from: string; body: { reason?: string } }
  | { type: 'run.aborted'; from: string; body: { reason?: string } }
  | {
      type: 'result.signed';
      from: string;
      body: {
        manifest_ref: unknown;
        final: unknown[];
        signer: string;
        webhook?: { url: string; status: number | null; error: string | null };
      };
    }
  | { type: 'dispatch.abort'; from: string; body: { actor: string; reason: string } };

/** The live states in the order a dispatch moves through them (`done`, `failed`, `aborted` end it). */
export const SECRETARY_STEPS = [
  'intake',
  'authorizing',
  'selecting',
  'creating_enclave',
  'starting_run',
  'waiting',
  'reporting',
] as const;

const HOST = 'host';

/**
 * The kernel persists the snapshot after each step, so a host killed mid-dispatch resumes at the step it
 * was in; each step's I/O (create the Enclave, start the Run) is idempotent by the deterministic ids
 * fixed at intake, so repeating a step never creates a second Enclave or Run.
 */
export const secretaryMachine = setup({
  types: {
    context: {} as SecretaryContext,
    input: {} as SecretaryInput,
    events: {} as SecretaryEvent,
    emitted: {} as
      | { type: 'anx.event'; kind: 'status' | 'error'; payload: unknown; run_id?: string }
      | { type: 'anx.send'; to: string; msgType: string; body?: unknown; ctx?: Record<string, string> },
  },
  guards: {
    fromHost: ({ event }) => event.from === HOST,
  },
  actions: {
    step: emit(({ context }, params: { status: string; details?: unknown }) => ({
      type: 'anx.event' as const,
      kind: 'status' as const,
      run_id: context.run_id,
      payload: { status: params.status, session_id: context.session_id, ...(params.details ?? {}) },
    })),
    recordWorkers: assign({
      workers: ({ event }) => (event as Extract<SecretaryEvent, { type: 'workers.selected' }>).body.workers,
    }),
    announceWorkers: emit(({ context, event }) => ({
      type: 'anx.event' as const,
      kind: 'status' as const,
      run_id: context.run_id,
      payload: {
        status: 'secretary.workers.selected',
        session_id: context.session_id,
        workers: (event as Extract<SecretaryEvent, { type: 'workers.selected' }>).body.workers,
      },
    })),
    enclaveReady: assign({ enclave_ready: true }),
    runStarted: assign({ run_started: true }),
    recordFailure: assign({
      failure: ({ event }) => {
        const b = (event.body ?? {}) as { step?: string; code?: string; message?: string; reason?: string };
        return {
          step: b.step ?? (event.type === 'run.failed' ? 'waiting' : 'authorizing'),
          code: b.code ?? (event.type === 'run.failed' ? 'ANX_RUN_FAILED' : 'ANX_DISPATCH_FAILED'),
          message: b.message ?? b.reason ?? event.type,
        };
      },
      end_reason: ({ event }) => {
        const b = (event.body ?? {}) as { message?: string; reason?: string };
        return b.message ?? b.reason ?? event.type;
      },
    }),
    reportFailure: emit(({ context }) => ({
      type: 'anx.send' as const,
      to: context.owner,
      msgType: 'secretary.failed',
      body: {
        session_id: context.session_id,
        run_id: context.run_id,
        enclave_id: context.enclave_id,
        secretary: context.secretary,
        failure: context.failure,
      },
      ctx: { session_id: context.session_id, run_id: context.run_id },
    })),
    announceFailure: emit(({ context }) => ({
      type: 'anx.event' as const,
      kind: 'error' as const,
      run_id: context.run_id,
      payload: { status: 'secretary.failed', session_id: context.session_id, ...context.failure },
    })),
    countTakeover: assign({ takeovers: ({ context }) => context.takeovers + 1 }),
    reportTakeover: emit(({ context, event }) => ({
      type: 'anx.send' as const,
      to: context.owner,
      msgType: 'secretary.takeover',
      body: {
        session_id: context.session_id,
        run_id: context.run_id,
        enclave_id: context.enclave_id,
        secretary: context.secretary,
        ...(event.body as { stage: string; reason: string }),
        actions: ['takeover.deliver', 'takeover.reassign', 'takeover.skip', 'run.abort'],
      },
      ctx: { session_id: context.session_id, run_id: context.run_id },
    })),
    recordResult: assign(({ event }) => {
      const b = (event as Extract<SecretaryEvent, { type: 'result.signed' }>).body;
      return {
        result: { manifest_ref: b.manifest_ref, final: b.final, signer: b.signer },
        webhook: b.webhook ?? null,
        end_reason: 'completed',
      };
    }),
    reportResult: emit(({ context }) => ({
      type: 'anx.send' as const,
      to: context.owner,
      msgType: 'secretary.result',
      body: {
        session_id: context.session_id,
        run_id: context.run_id,
        enclave_id: context.enclave_id,
        secretary: context.secretary,
        objective: context.objective,
        source: context.source,
        manifest_ref: context.result?.manifest_ref ?? null,
        final: context.result?.final ?? [],
        signer: context.result?.signer ?? null,
      },
      ctx: { session_id: context.session_id, run_id: context.run_id },
    })),
    recordAbort: assign(({ event }) => {
      const b = (event as Extract<SecretaryEvent, { type: 'dispatch.abort' }>).body;
      return { abort: { actor: b.actor, reason: b.reason }, end_reason: `aborted: ${b.reason}` };
    }),
    reportAborted: emit(({ context }) => ({
      type: 'anx.send' as const,
      to: context.owner,
      msgType: 'secretary.aborted',
      body: {
        session_id: context.session_id,
        run_id: context.run_id,
        enclave_id: context.enclave_id,
        secretary: context.secretary,
        abort: context.abort,
        end_reason: context.end_reason,
      },
      ctx: { session_id: context.session_id, run_id: context.run_id },
    })),
    recordRunAborted: assign({
      end_reason: ({ context, event }) =>
        context.end_reason ?? `run aborted: ${(event.body as { reason?: string } | undefined)?.reason ?? ''}`,
    }),
  },
}).createMachine({
  id: 'secretary',
  context: ({ input }) => ({
    ...input,
    workers: [],
    enclave_ready: false,
    run_started: false,
    takeovers: 0,
    result: null,
    webhook: null,
    abort: null,
    end_reason: null,
    failure: null,
  }),
  initial: 'intake',
  states: {
    intake: {
      entry: {
        type: 'step',
        params: { status: 'secretary.intake' },
      },
      always: 'authorizing',
    },
    authorizing: {
      on: {
        'authority.granted': {
          guard: 'fromHost',
          target: 'selecting',
          actions: { type: 'step', params: { status: 'secretary.authorized' } },
        },
        'authority.refused': {
          guard: 'fromHost',
          target: 'failed',
          actions: 'recordFailure',
        },
        'dispatch.abort': { guard: 'fromHost', target: 'aborted', actions: 'recordAbort' },
      },
    },
    selecting: {
      on: {
        'workers.selected': {
          guard: 'fromHost',
          target: 'creating_enclave',
          actions: ['recordWorkers', 'announceWorkers'],
        },
        'step.failed': { guard: 'fromHost', target: 'failed', actions: 'recordFailure' },
        'dispatch.abort': { guard: 'fromHost', target: 'aborted', actions: 'recordAbort' },
      },
    },
    creating_enclave: {
      on: {
        'enclave.ready': {
          guard: 'fromHost',
          target: 'starting_run',
          actions: ['enclaveReady', { type: 'step', params: { status: 'secretary.enclave.ready' } }],
        },
        'step.failed': { guard: 'fromHost', target: 'failed', actions: 'recordFailure' },
        'dispatch.abort': { guard: 'fromHost', target: 'aborted', actions: 'recordAbort' },
      },
    },
    starting_run: {
      on: {
        'run.started': {
          guard: 'fromHost',
          target: 'waiting',
          actions: ['runStarted', { type: 'step', params: { status: 'secretary.run.started' } }],
        },
        'step.failed': { guard: 'fromHost', target: 'failed', actions: 'recordFailure' },
        // The run may have been committed before the abort came: the driver checks and aborts it.
        'dispatch.abort': { guard: 'fromHost', target: 'aborting', actions: 'recordAbort' },
      },
    },
    waiting: {
      on: {
        'run.takeover': {
          guard: 'fromHost',
          actions: [
            'countTakeover',
            'reportTakeover',
            { type: 'step', params: { status: 'secretary.takeover.reported' } },
          ],
        },
        'run.completed': {
          guard: 'fromHost',
          target: 'reporting',
          actions: { type: 'step', params: { status: 'secretary.run.completed' } },
        },
        'run.failed': { guard: 'fromHost', target: 'failed', actions: 'recordFailure' },
        'run.aborted': {
          guard: 'fromHost',
          target: 'aborted',
          actions: 'recordRunAborted',
        },
        'dispatch.abort': { guard: 'fromHost', target: 'aborting', actions: 'recordAbort' },
      },
    },
    reporting: {
      on: {
        'result.signed': { guard: 'fromHost', target: 'done', actions: 'recordResult' },
      },
    },
    aborting: {
      entry: { type: 'step', params: { status: 'secretary.aborting' } },
      on: {
        'run.aborted': { guard: 'fromHost', target: 'aborted' },
        // The run ended on its own before the abort reached it.
        'run.completed': { guard: 'fromHost', target: 'aborted' },
        'run.failed': { guard: 'fromHost', target: 'aborted' },
        'step.failed': { guard: 'fromHost', target: 'aborted' },
      },
    },
    done: {
      entry: ['reportResult', { type: 'step', params: { status: 'secretary.done' } }],
    },
    failed: {
      entry: ['announceFailure', 'reportFailure'],
    },
    aborted: {
      entry: ['reportAborted', { type: 'step', params: { status: 'secretary.aborted' } }],
    },
  },
});

/** The dispatch states a caller sees. */
export type DispatchState = (typeof SECRETARY_STEPS)[number] | 'aborting' | 'done' | 'failed' | 'aborted';

/** True for the states a dispatch never leaves. */
export function isTerminal(state: string): boolean {
  return state === 'done' || state === 'failed' || state === 'aborted';
}
