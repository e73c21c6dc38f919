// The Task statechart of the Action Layer: proposed → claimed → in progress → done / failed / cancelled, every change signed.
import { assign, emit, setup } from 'xstate';
import { describeValue } from '../runtime/errors.ts';
import {
  type CollabEnvelope,
  isDidList,
  isStringList,
  type Notice,
  type Problem,
  recipients,
  refusalPayload,
  type Statement,
  type StatementVerifier,
  verifyEvent,
} from './statement.ts';

/** Version recorded in every persisted Task snapshot; bump it when the context or states change shape. */
export const TASK_MACHINE_VERSION = 1;

export const TASK_STATES = ['proposed', 'claimed', 'in_progress', 'done', 'failed', 'cancelled'] as const;
export type TaskState = (typeof TASK_STATES)[number];

/** States a `task.notify` may ask for. */
export const NOTIFY_STATES = ['in_progress', 'done', 'failed', 'cancelled'] as const;
export type NotifyState = (typeof NOTIFY_STATES)[number];

/** Something attached to a task by a resource sync: an artifact ref, or a vault key to read. */
export type TaskResource =
  | {
      kind: 'artifact';
      ref: { enclave_id: string; key: string; version: number; hash: string; size: number; summary: string };
    }
  | { kind: 'vault'; enclave_id: string; key: string; version?: number }
  | { kind: 'url'; url: string };

/** One applied statement: who signed which change, kept with its signed bytes. */
export interface TaskLogEntry {
  seq: number;
  id: string;
  type: string;
  signer: string;
  ts: number;
  state: TaskState;
  statement: string;
}

export interface TaskContext {
  task_id: string;
  address: string;
  /** The proposer: the identity the task's notices are sent as, and the only one who may cancel. */
  home: string;
  title: string;
  description: string;
  enclave_id: string | null;
  /** Who may claim; empty means anyone. */
  candidates: string[];
  claimant: string | null;
  result: string | null;
  reason: string | null;
  resources: Array<TaskResource & { by: string; ts: number }>;
  log: TaskLogEntry[];
  created_at: number;
  updated_at: number;
}

/** What the actor layer spawns a task with: the verified `task.propose` statement. */
export interface TaskInput {
  task_id: string;
  address: string;
  propose: Statement;
}

const MAX_LOG = 256;
const MAX_RESOURCES = 64;
const MAX_TEXT = 4096;
const TERMINAL: readonly TaskState[] = ['done', 'failed', 'cancelled'];

/** Checks a resource sync entry; returns a problem or null. */
export function resourceProblem(r: unknown): string | null {
  if (r === null || typeof r !== 'object') return 'a resource expected an object';
  const x = r as Record<string, unknown>;
  const text = (v: unknown, max = 256) => typeof v === 'string' && v.length > 0 && v.length <= max;
  if (x['kind'] === 'artifact') {
    const ref = x['ref'] as Record<string, unknown> | undefined;
    if (
      ref === undefined ||
      ref === null ||
      !text(ref['enclave_id']) ||
      !text(ref['key']) ||
      !Number.isInteger(ref['version']) ||
      !text(ref['hash'], 128) ||
      typeof ref['size'] !== 'number'
    )
      return 'an artifact resource expected { kind: "artifact", ref: ArtifactRef }';
    return null;
  }
  if (x['kind'] === 'vault') {
    if (!text(x['enclave_id']) || !text(x['key']))
      return 'a vault resource expected { kind: "vault", enclave_id, key }';
    if (x['version'] !== undefined && !Number.isInteger(x['version']))
      return 'a vault resource\'s "version" expected an integer';
    return null;
  }
  if (x['kind'] === 'url')
    return text(x['url'], 2048) ? null : 'a url resource expected { kind: "url", url }';
  return `a resource "kind" expected artifact, vault or url, got ${describeValue(x['kind'])}`;
}

/** Where a request would take the task, or why it may not. Pure: the same answer on every replica. */
export function judgeTask(
  context: TaskContext,
  state: TaskState,
  event: CollabEnvelope,
  verify: StatementVerifier,
): { ok: true; statement: Statement; next: TaskState } | { ok: false; problem: Problem } {
  const checked = verifyEvent(verify, event, context.address);
  if (!checked.ok) return checked;
  const s = checked.statement;
  const fail = (code: string, reason: string) => ({ ok: false as const, problem: { code, reason } });
  if (s.body['task_id'] !== context.task_id)
    return fail('SIGNATURE_INVALID', `the statement names task ${JSON.stringify(s.body['task_id'])}`);
  if (context.log.some((e) => e.id === s.id))
    return fail('REPLAYED', `statement ${s.id} was applied already`);
  if (context.log.length >= MAX_LOG) return fail('CONFLICT', `the task holds ${MAX_LOG} changes, its limit`);
  if (TERMINAL.includes(state)) return fail('CONFLICT', `the task is ${state}: it takes no more changes`);
  if (event.type === 'task.claim') {
    if (state !== 'proposed') return fail('CONFLICT', `the task is ${state}, claimed by ${context.claimant}`);
    if (context.candidates.length > 0 && !context.candidates.includes(s.signer))
      return fail('FORBIDDEN', `${s.signer} is not among the task's candidates`);
    return { ok: true, statement: s, next: 'claimed' };
  }
  if (event.type === 'task.sync') {
    if (s.signer !== context.home && s.signer !== context.claimant)
      return fail('FORBIDDEN', `only the proposer or the claimant may attach resources, not ${s.signer}`);
    const list = s.body['resources'];
    if (!Array.isArray(list) || list.length === 0 || list.length > MAX_RESOURCES)
      return fail('INVALID', `"resources" expected 1 to ${MAX_RESOURCES} resources`);
    for (const r of list) {
      const problem = resourceProblem(r);
      if (problem !== null) return fail('INVALID', problem);
    }
    if (context.resources.length + list.length > MAX_RESOURCES)
      return fail('CONFLICT', `the task holds at most ${MAX_RESOURCES} resources`);
    return { ok: true, statement: s, next: state };
  }
  if (event.type === 'task.notify') {
    const want = s.body['state'];
    if (!(NOTIFY_STATES as readonly unknown[]).includes(want))
      return fail(
        'INVALID',
        `"state" expected one of ${NOTIFY_STATES.join(', ')}, got ${describeValue(want)}`,
      );
    for (const field of ['result', 'reason'] as const) {
      const v = s.body[field];
      if (v !== undefined && (typeof v !== 'string' || v.length > MAX_TEXT))
        return fail('INVALID', `"${field}" expected text of at most ${MAX_TEXT} characters`);
    }
    const next = want as NotifyState;
    if (next === 'cancelled') {
      if (s.signer !== context.home)
        return fail('FORBIDDEN', `only the proposer ${context.home} may cancel, not ${s.signer}`);
      return { ok: true, statement: s, next };
    }
    const allowedFrom: Record<Exclude<NotifyState, 'cancelled'>, TaskState[]> = {
      in_progress: ['claimed'],
      done: ['in_progress'],
      failed: ['claimed', 'in_progress'],
    };
    if (!allowedFrom[next].includes(state)) return fail('CONFLICT', `a ${state} task cannot become ${next}`);
    if (s.signer !== context.claimant)
      return fail('FORBIDDEN', `only the claimant ${context.claimant} may report ${next}, not ${s.signer}`);
    return { ok: true, statement: s, next };
  }
  return fail('INVALID', `a task takes task.claim, task.notify and task.sync, not ${event.type}`);
}

/** The task as views and notices show it. */
export function taskView(context: TaskContext, state: TaskState) {
  return {
    task_id: context.task_id,
    state,
    title: context.title,
    description: context.description,
    proposer: context.home,
    claimant: context.claimant,
    candidates: context.candidates,
    enclave_id: context.enclave_id,
    result: context.result,
    reason: context.reason,
    resources: context.resources,
    seq: context.log.length,
    created_at: context.created_at,
    updated_at: context.updated_at,
  };
}

/**
 * Builds the Task machine around a statement verifier (the actor layer passes the envelope layer's
 * signature check). Each request is an envelope whose `body.statement` is a statement signed by the acting
 * DID; the machine accepts it only when the signature verifies, the statement was signed for this task,
 * was not applied before, and its signer may make that change in the current state. Otherwise it emits an
 * `error` event with a typed code (and, for a request that came from another host, a `task.refused`
 * notice to its sender) and changes nothing.
 */
export function createTaskMachine(verify: StatementVerifier) {
  const judge = (context: TaskContext, state: TaskState, event: CollabEnvelope) =>
    judgeTask(context, state, event, verify);

  const transition = (from: TaskState, next: TaskState) => ({
    guard: { type: 'permits' as const, params: { from, next } },
    target: next === from ? undefined : next,
    actions: [
      { type: 'apply' as const, params: { from } },
      { type: 'announce' as const, params: { from } },
    ],
  });
  const refuse = (from: TaskState) => ({ actions: { type: 'refuse' as const, params: { from } } });

  const on = (from: TaskState, claim: TaskState[], notify: TaskState[]) => ({
    'task.claim': [...claim.map((n) => transition(from, n)), refuse(from)],
    'task.notify': [...notify.map((n) => transition(from, n)), refuse(from)],
    'task.sync': [transition(from, from), refuse(from)],
    // XState's own events (a stale timer) are not requests.
    '*': [{ guard: 'isInternalEvent' as const }, refuse(from)],
  });

  return setup({
    types: {
      context: {} as TaskContext,
      input: {} as TaskInput,
      events: {} as CollabEnvelope,
      emitted: {} as { type: 'anx.event'; kind: 'status' | 'error'; payload: unknown; task_id?: string },
    },
    guards: {
      /** The statement verifies and its signer may move the task from `from` to `next`. */
      permits: ({ context, event }, params: { from: TaskState; next: TaskState }) => {
        const verdict = judge(context, params.from, event);
        return verdict.ok && verdict.next === params.next;
      },
      isInternalEvent: ({ event }) => event.type.startsWith('xstate.'),
    },
    actions: {
      apply: assign(({ context, event }, params: { from: TaskState }) => {
        const verdict = judge(context, params.from, event);
        if (!verdict.ok) return {};
        const s = verdict.statement;
        const entry: TaskLogEntry = {
          seq: context.log.length + 1,
          id: s.id,
          type: s.type,
          signer: s.signer,
          ts: s.ts,
          state: verdict.next,
          statement: s.raw,
        };
        const changes: Partial<TaskContext> = {
          log: [...context.log, entry],
          updated_at: Math.max(context.updated_at, event.ts ?? s.ts),
        };
        if (s.type === 'task.claim') changes.claimant = s.signer;
        if (s.type === 'task.sync') {
          const added = (s.body['resources'] as TaskResource[]).map((r) => ({
            ...r,
            by: s.signer,
            ts: s.ts,
          }));
          changes.resources = [...context.resources, ...added];
        }
        if (s.type === 'task.notify') {
          if (typeof s.body['result'] === 'string') changes.result = s.body['result'];
          if (typeof s.body['reason'] === 'string') changes.reason = s.body['reason'];
        }
        return changes;
      }),
      announce: emit(({ context, event }, params: { from: TaskState }) => {
        const last = context.log[context.log.length - 1] as TaskLogEntry;
        const state = last.state;
        const view = taskView(context, state);
        const notice: Notice = {
          from: context.home,
          // The signer hears it too (a request from another host learns it was applied), unless it is
          // the home itself, which holds the task.
          to: recipients(
            last.signer === context.home ? context.home : undefined,
            [context.home, context.claimant, last.signer],
            context.candidates,
          ),
          type: 'task.state',
          body: {
            task_id: context.task_id,
            home: context.home,
            change: last.type,
            by: last.signer,
            task: view,
          },
        };
        return {
          type: 'anx.event' as const,
          kind: 'status' as const,
          task_id: context.task_id,
          payload: {
            status: last.type === 'task.sync' ? 'task.synced' : `task.${state}`,
            task_id: context.task_id,
            from_state: params.from,
            state,
            seq: last.seq,
            by: last.signer,
            id: event.id ?? null,
            statement_id: last.id,
            notify: notice,
          },
        };
      }),
      refuse: emit(({ context, event }, params: { from: TaskState }) => {
        const verdict = judge(context, params.from, event);
        const problem = verdict.ok
          ? { code: 'CONFLICT', reason: `the change does not apply to a ${params.from} task` }
          : verdict.problem;
        return {
          type: 'anx.event' as const,
          kind: 'error' as const,
          task_id: context.task_id,
          payload: refusalPayload(
            'task',
            context.home,
            { task_id: context.task_id, state: params.from },
            event,
            problem,
          ),
        };
      }),
    },
  }).createMachine({
    id: 'task',
    context: ({ input }) => {
      const b = input.propose.body;
      return {
        task_id: input.task_id,
        address: input.address,
        home: input.propose.signer,
        title: String(b['title'] ?? ''),
        description: typeof b['description'] === 'string' ? b['description'] : '',
        enclave_id: typeof b['enclave_id'] === 'string' ? b['enclave_id'] : null,
        candidates: isStringList(b['candidates'], 256) ? [...new Set(b['candidates'])] : [],
        claimant: null,
        result: null,
        reason: null,
        resources: Array.isArray(b['resources'])
          ? (b['resources'] as TaskResource[]).map((r) => ({
              ...r,
              by: input.propose.signer,
              ts: input.propose.ts,
            }))
          : [],
        log: [
          {
            seq: 1,
            id: input.propose.id,
            type: 'task.propose',
            signer: input.propose.signer,
            ts: input.propose.ts,
            state: 'proposed',
            statement: input.propose.raw,
          },
        ],
        created_at: input.propose.ts,
        updated_at: input.propose.ts,
      };
    },
    initial: 'proposed',
    entry: emit(({ context }) => ({
      type: 'anx.event' as const,
      kind: 'status' as const,
      task_id: context.task_id,
      payload: {
        status: 'task.proposed',
        task_id: context.task_id,
        state: 'proposed',
        seq: 1,
        by: context.home,
        statement_id: context.log[0]?.id ?? null,
        notify: {
          from: context.home,
          to: recipients(context.home, context.candidates),
          type: 'task.proposed',
          body: { task_id: context.task_id, home: context.home, task: taskView(context, 'proposed') },
        } satisfies Notice,
      },
    })),
    states: {
      proposed: { on: on('proposed', ['claimed'], ['cancelled']) },
      claimed: { on: on('claimed', [], ['in_progress', 'failed', 'cancelled']) },
      in_progress: { on: on('in_progress', [], ['done', 'failed', 'cancelled']) },
      done: { on: on('done', [], []) },
      failed: { on: on('failed', [], []) },
      cancelled: { on: on('cancelled', [], []) },
    },
  });
}

/** Checks a proposal's fields (the signed `task.propose` body); returns a problem or null. */
export function proposalProblem(body: Record<string, unknown>): string | null {
  const title = body['title'];
  if (typeof title !== 'string' || title.trim().length === 0 || title.length > 256)
    return '"title" expected text of 1 to 256 characters';
  const d = body['description'];
  if (d !== undefined && (typeof d !== 'string' || d.length > MAX_TEXT))
    return `"description" expected text of at most ${MAX_TEXT} characters`;
  if (body['candidates'] !== undefined && !isDidList(body['candidates'], 256))
    return '"candidates" expected a list of at most 256 DIDs';
  const e = body['enclave_id'];
  if (e !== undefined && (typeof e !== 'string' || e.length === 0 || e.length > 128))
    return '"enclave_id" expected an Enclave id';
  const r = body['resources'];
  if (r !== undefined) {
    if (!Array.isArray(r) || r.length > MAX_RESOURCES)
      return `"resources" expected at most ${MAX_RESOURCES} resources`;
    for (const x of r) {
      const problem = resourceProblem(x);
      if (problem !== null) return problem;
    }
  }
  return null;
}
