// Compiles a validated playbook into the XState statechart of its Run: one explicit state per stage, retries, pause, takeover.
/*
 * Events the run accepts. The kernel feeds envelopes `{ type, id, from, to, ts, body, ctx?, actor?, ... }`;
 * `from` (or `actor`) is checked: stage events must come from the assigned worker, Owner actions from the
 * owner or the coordinator. `ts` moves the run's clock forward.
 *
 *   run.start        {}                                       pending → first stage
 *   stage.delivered  { task_id, ref: ArtifactRef, summary?, choice? }
 *                                                             the task's output; `choice` is a voter's answer
 *   stage.rejected   { task_id, reason, target? }             review stages only: roll back to `on_reject`
 *                                                             (or `target`, if it is an earlier stage), counting a
 *                                                             retry of that stage
 *   stage.failed     { task_id, error, fatal? }               retry with backoff, or takeover when retries are
 *                                                             spent or the worker says `fatal`
 *   takeover.deliver { ref, summary? }                        Owner: use this ref as the stage's output, go on
 *   takeover.reassign{ worker }                               Owner: run the stage again on this DID (fresh retries)
 *   takeover.skip    { reason? }                              Owner: leave the stage out, go on
 *   run.pause        { reason? }    run.resume {}             stage events that arrive while paused are held and
 *                                                             replayed on resume; timers restart on resume
 *   run.abort        { reason? }                              from every live state
 *   xstate.after.stageTimeout.run.live.running.<stage>.working the stage timed out (kernel-kept timer)
 *   xstate.after.retryBackoff.run.live.retrying               the retry backoff elapsed
 *   xstate.after.takeoverTimeout.run.live.takeover            only when the playbook sets `takeover_timeout`
 *
 * A stage event whose task_id is not a running task of the current stage (a late delivery from an earlier
 * attempt, a duplicate, a stranger) is never applied: it yields an `anx.event` of kind `error` instead.
 */
import { and, enqueueActions, not, setup } from 'xstate';
import {
  buildContextSnapshot,
  makeHandoffCheckpoint,
  SUMMARY_MAX_BYTES,
  stageRefs,
  truncateUtf8,
} from './context.ts';
import {
  type ArtifactRef,
  backoffDelay,
  type PlaybookDefinition,
  type StageDefinition,
  workerCount,
} from './definition.ts';
import type {
  DeferredEvent,
  DeliveryManifestContent,
  RunContext,
  RunEffect,
  RunEvent,
  RunInput,
  SendEffect,
  ShardExecution,
  StageEvent,
  StageExecution,
  TraceEffect,
} from './run.ts';

/** Bytes kept of free text that arrives in events (reasons, errors, objectives): the snapshot must stay bounded. */
const TEXT_MAX_BYTES = 512;
const OBJECTIVE_MAX_BYTES = 4096;
const ID_MAX_CHARS = 256;

type AnyRunEvent = RunEvent | { type: `xstate.after.${string}` };

/** Names of the run's parameterless actions, so generated transitions stay type-checked. */
type ActionName =
  | 'startRun'
  | 'recordDelivery'
  | 'completeStage'
  | 'completeRun'
  | 'failStage'
  | 'failStageFinal'
  | 'rollback'
  | 'rollbackFinal'
  | 'escalate'
  | 'wakeForRetry'
  | 'refuseEvent'
  | 'takeoverDeliver'
  | 'takeoverReassign'
  | 'takeoverSkip'
  | 'pauseRun'
  | 'deferEvent'
  | 'resumeRun'
  | 'abortRun'
  | 'failRun';

interface Change {
  ctx: RunContext;
  effects: RunEffect[];
}

const HEX64 = /^[0-9a-f]{64}$/;

/** True when `v` has the shape of an ArtifactRef; deliveries carrying anything else are refused. */
export function isArtifactRef(v: unknown): v is ArtifactRef {
  if (typeof v !== 'object' || v === null) return false;
  const r = v as Record<string, unknown>;
  return (
    typeof r['enclave_id'] === 'string' &&
    r['enclave_id'].length > 0 &&
    r['enclave_id'].length <= ID_MAX_CHARS &&
    typeof r['key'] === 'string' &&
    r['key'].length > 0 &&
    r['key'].length <= ID_MAX_CHARS &&
    typeof r['version'] === 'number' &&
    Number.isInteger(r['version']) &&
    r['version'] >= 1 &&
    typeof r['hash'] === 'string' &&
    HEX64.test(r['hash']) &&
    typeof r['size'] === 'number' &&
    Number.isInteger(r['size']) &&
    r['size'] >= 0 &&
    typeof r['summary'] === 'string'
  );
}

function boundedRef(ref: ArtifactRef): ArtifactRef {
  return {
    enclave_id: ref.enclave_id,
    key: ref.key,
    version: ref.version,
    hash: ref.hash,
    size: ref.size,
    summary: truncateUtf8(ref.summary, SUMMARY_MAX_BYTES / 2),
  };
}

function text(v: unknown, fallback = ''): string {
  return truncateUtf8(typeof v === 'string' ? v : fallback, TEXT_MAX_BYTES);
}

function bodyOf(event: AnyRunEvent): Record<string, unknown> {
  const b = (event as { body?: unknown }).body;
  return typeof b === 'object' && b !== null ? (b as Record<string, unknown>) : {};
}

function senderOf(event: AnyRunEvent): string[] {
  const e = event as { from?: unknown; actor?: unknown };
  return [e.from, e.actor].filter((v): v is string => typeof v === 'string');
}

function emptyExecution(stage: string): StageExecution {
  return {
    stage,
    worker: null,
    task_id: null,
    status: 'pending',
    output_ref: null,
    retry_count: 0,
    started_at: null,
    ended_at: null,
    attempt: 0,
    summary: '',
    last_error: null,
    shards: null,
    decision: null,
  };
}

/** The initial context of a run of `def`; exported so tests and the kernel can inspect what input becomes. */
export function initialRunContext(def: PlaybookDefinition, input: RunInput): RunContext {
  const assignments: Record<string, string[]> = {};
  for (const [role, who] of Object.entries(input.assignments ?? {})) {
    const list = (Array.isArray(who) ? who : [who]).filter((d) => typeof d === 'string' && d.length > 0);
    assignments[role] = list.slice(0, 64).map((d) => d.slice(0, ID_MAX_CHARS));
  }
  const artifacts: Record<string, ArtifactRef> = {};
  for (const s of def.stages) {
    for (const inp of s.inputs) {
      const ref = input.artifacts?.[inp];
      if (isArtifactRef(ref)) artifacts[inp] = boundedRef(ref);
    }
  }
  const objective = def.objective
    ? def.objective.split('{{objective}}').join(input.objective)
    : input.objective;
  return {
    run_id: String(input.run_id).slice(0, ID_MAX_CHARS),
    playbook: { name: def.name, version: def.version },
    objective: truncateUtf8(objective, OBJECTIVE_MAX_BYTES),
    owner: input.owner,
    coordinator: input.coordinator ?? input.owner,
    enclave_id: input.enclave_id ?? null,
    session_id: input.session_id ?? null,
    assignments,
    reassigned: {},
    artifacts,
    current: null,
    now: 0,
    stages: Object.fromEntries(def.stages.map((s) => [s.id, emptyExecution(s.id)])),
    takeover: null,
    deferred: [],
    end_reason: null,
  };
}

/**
 * Compiles a validated playbook into the statechart of its Run actor. Pure: no I/O, no clock; every effect
 * is an emitted `anx.send` or `anx.event`.
 *
 * @example
 * ```ts
 * const machine = compilePlaybook(assertPlaybook(raw));
 * const actor = createActor(machine, { input: { run_id: 'r1', objective: 'login page', owner, assignments } });
 * actor.on('*', (effect) => kernel.perform(effect));
 * actor.start();
 * actor.send({ type: 'run.start', from: owner, ts: Date.now(), body: {} });
 * ```
 */
export function compilePlaybook(def: PlaybookDefinition) {
  const byId = new Map<string, { stage: StageDefinition; index: number }>(
    def.stages.map((stage, index) => [stage.id, { stage, index }]),
  );
  const stageDef = (id: string | null): StageDefinition | undefined =>
    id === null ? undefined : byId.get(id)?.stage;
  const nextOf = (id: string): string | null => {
    const at = byId.get(id)?.index;
    return at === undefined ? null : (def.stages[at + 1]?.id ?? null);
  };

  // ---- pure helpers over the context ----

  const clock = (ctx: RunContext, event: AnyRunEvent): number => {
    const ts = (event as { ts?: unknown }).ts;
    return typeof ts === 'number' && Number.isFinite(ts) ? Math.max(ctx.now, ts) : ctx.now;
  };

  const workersFor = (ctx: RunContext, stage: StageDefinition): string[] => {
    const chosen = ctx.reassigned[stage.id];
    return chosen ? [chosen] : (ctx.assignments[stage.role] ?? []);
  };

  const msgCtx = (ctx: RunContext, stage: string, task_id: string): SendEffect['ctx'] => {
    const c: NonNullable<SendEffect['ctx']> = { run_id: ctx.run_id, task_id, stage };
    if (ctx.enclave_id !== null) c.enclave_id = ctx.enclave_id;
    if (ctx.session_id !== null) c.session_id = ctx.session_id;
    return c;
  };

  const status = (
    ctx: RunContext,
    state: string,
    payload: Record<string, unknown>,
    step?: string,
  ): TraceEffect => {
    const e: TraceEffect = {
      type: 'anx.event',
      kind: 'status',
      run_id: ctx.run_id,
      payload: { state, ...payload },
    };
    if (step !== undefined) {
      e.step = step;
      const task = ctx.stages[step]?.task_id;
      if (task) e.task_id = task;
    }
    return e;
  };

  const withExec = (ctx: RunContext, exec: StageExecution): RunContext => ({
    ...ctx,
    stages: { ...ctx.stages, [exec.stage]: exec },
  });

  /** Running tasks of the current stage, with the worker each belongs to. */
  const runningTasks = (ctx: RunContext): Array<{ task_id: string; worker: string; shard: number }> => {
    const e = ctx.current === null ? undefined : ctx.stages[ctx.current];
    if (e?.status !== 'running') return [];
    if (e.shards) {
      return e.shards.flatMap((s, shard) =>
        s.status === 'running' ? [{ task_id: s.task_id, worker: s.worker, shard }] : [],
      );
    }
    return e.task_id && e.worker ? [{ task_id: e.task_id, worker: e.worker, shard: -1 }] : [];
  };

  /** Why a stage event must not be applied, or null when it may. */
  const refusal = (ctx: RunContext, event: AnyRunEvent): string | null => {
    const body = bodyOf(event);
    const task = runningTasks(ctx).find((t) => t.task_id === body['task_id']);
    if (!task) return 'stale_task';
    if (!senderOf(event).includes(task.worker)) return 'not_assigned_worker';
    if (event.type === 'stage.delivered') {
      if (!isArtifactRef(body['ref'])) return 'invalid_ref';
      const stage = stageDef(ctx.current);
      if (stage?.vote && (typeof body['choice'] !== 'string' || body['choice'].length === 0))
        return 'missing_choice';
    }
    if (event.type === 'stage.rejected' && typeof body['reason'] !== 'string') return 'missing_reason';
    if (event.type === 'stage.failed' && typeof body['error'] !== 'string') return 'missing_error';
    return null;
  };

  const isOwner = (ctx: RunContext, event: AnyRunEvent): boolean =>
    senderOf(event).some((d) => d === ctx.owner || d === ctx.coordinator);

  /** The context after a delivery is recorded (not yet judged complete). */
  const applyDelivery = (ctx: RunContext, event: AnyRunEvent): RunContext => {
    const body = bodyOf(event);
    const now = clock(ctx, event);
    const exec = ctx.stages[ctx.current ?? ''];
    if (!exec || !isArtifactRef(body['ref'])) return { ...ctx, now };
    const ref = boundedRef(body['ref']);
    const summary = truncateUtf8(
      typeof body['summary'] === 'string' ? body['summary'] : ref.summary,
      SUMMARY_MAX_BYTES,
    );
    if (exec.shards) {
      const shards = exec.shards.map(
        (s): ShardExecution =>
          s.task_id === body['task_id']
            ? {
                ...s,
                status: 'delivered',
                output_ref: ref,
                choice: typeof body['choice'] === 'string' ? text(body['choice']).slice(0, 128) : null,
              }
            : s,
      );
      return withExec({ ...ctx, now }, { ...exec, shards, summary });
    }
    return withExec({ ...ctx, now }, { ...exec, output_ref: ref, summary });
  };

  /** Choice that reached quorum, or null. */
  const quorumChoice = (exec: StageExecution, quorum: number): string | null => {
    const counts = new Map<string, number>();
    for (const s of exec.shards ?? []) {
      if (s.status !== 'delivered' || s.choice === null) continue;
      const n = (counts.get(s.choice) ?? 0) + 1;
      counts.set(s.choice, n);
      if (n >= quorum) return s.choice;
    }
    return null;
  };

  const outcomeAfter = (ctx: RunContext, event: AnyRunEvent): 'complete' | 'partial' | 'deadlock' => {
    const next = applyDelivery(ctx, event);
    const exec = next.stages[next.current ?? ''];
    const stage = stageDef(next.current);
    if (!exec || !stage) return 'partial';
    if (!exec.shards) return 'complete';
    if (stage.vote) {
      if (quorumChoice(exec, stage.vote.quorum) !== null) return 'complete';
      return exec.shards.every((s) => s.status === 'delivered') ? 'deadlock' : 'partial';
    }
    return exec.shards.every((s) => s.status === 'delivered') ? 'complete' : 'partial';
  };

  const retriesLeft = (ctx: RunContext, stageId: string | null): boolean => {
    const stage = stageDef(stageId);
    const exec = ctx.stages[stageId ?? ''];
    return !!stage && !!exec && exec.retry_count < stage.max_retries;
  };

  const rejectTarget = (ctx: RunContext, event: AnyRunEvent): string | null => {
    const stage = stageDef(ctx.current);
    if (!stage?.review) return null;
    const wanted = bodyOf(event)['target'];
    const here = byId.get(stage.id)?.index ?? 0;
    if (typeof wanted === 'string') {
      const at = byId.get(wanted)?.index;
      if (at !== undefined && at < here) return wanted;
    }
    return stage.review.on_reject;
  };

  const failureReason = (ctx: RunContext, event: AnyRunEvent): string => {
    if (event.type.startsWith('xstate.after.')) {
      return `timed out after ${stageDef(ctx.current)?.timeout_ms ?? 0} ms`;
    }
    const body = bodyOf(event);
    if (event.type === 'stage.failed') return text(body['error'], 'failed');
    if (event.type === 'stage.delivered')
      return 'no quorum: every voter answered and no choice reached the quorum';
    return text(body['reason'], 'rejected');
  };

  // ---- reducers: (context, event) → new context and the effects to emit ----

  const enterStage = (ctx: RunContext, stageId: string): Change => {
    const stage = stageDef(stageId);
    const prev = ctx.stages[stageId];
    if (!stage || !prev) return { ctx, effects: [] };
    const attempt = prev.attempt + 1;
    const task_id = `${ctx.run_id}/${stageId}/${attempt}`;
    const pool = workersFor(ctx, stage);
    const multi = stage.fanout !== undefined || stage.vote !== undefined;
    const n = workerCount(stage);
    const shards: ShardExecution[] | null = multi
      ? Array.from({ length: n }, (_, i) => ({
          worker: pool[i % pool.length] ?? '',
          task_id: `${task_id}#${i}`,
          status: 'running',
          output_ref: null,
          choice: null,
        }))
      : null;
    const exec: StageExecution = {
      ...prev,
      worker: pool[0] ?? null,
      task_id,
      status: 'running',
      output_ref: null,
      started_at: ctx.now,
      ended_at: null,
      attempt,
      summary: '',
      shards,
      decision: null,
    };
    const next: RunContext = { ...withExec(ctx, exec), current: stageId, takeover: null };
    const tasks = shards
      ? shards.map((s, i) => ({ worker: s.worker, task_id: s.task_id, shard: { index: i, count: n } }))
      : [{ worker: exec.worker ?? '', task_id, shard: undefined }];
    const effects: RunEffect[] = tasks.map(
      (t): SendEffect => ({
        type: 'anx.send',
        to: t.worker,
        msgType: 'stage.assign',
        body: {
          run_id: ctx.run_id,
          stage: stageId,
          role: stage.role,
          task_id: t.task_id,
          attempt,
          timeout_ms: stage.timeout_ms,
          context: buildContextSnapshot(def, next, stageId, def.context_budget_bytes, t.shard),
        },
        ctx: msgCtx(ctx, stageId, t.task_id),
      }),
    );
    effects.push(
      status(
        next,
        'stage.started',
        { stage: stageId, attempt, workers: tasks.map((t) => t.worker) },
        stageId,
      ),
    );
    return { ctx: next, effects };
  };

  const completeStage = (ctx: RunContext, by: 'worker' | 'owner'): Change => {
    const stageId = ctx.current;
    const stage = stageDef(stageId);
    const exec = ctx.stages[stageId ?? ''];
    if (!stage || !exec || stageId === null) return { ctx, effects: [] };
    const decision = stage.vote ? quorumChoice(exec, stage.vote.quorum) : null;
    const winner = exec.shards?.find(
      (s) => s.status === 'delivered' && (decision === null || s.choice === decision),
    );
    const done: StageExecution = {
      ...exec,
      status: 'delivered',
      ended_at: ctx.now,
      output_ref: exec.output_ref ?? winner?.output_ref ?? null,
      decision,
      last_error: null,
    };
    const next = { ...withExec(ctx, done), current: nextOf(stageId), takeover: null };
    const checkpoint = makeHandoffCheckpoint(next, stageId);
    return {
      ctx: next,
      effects: [
        {
          type: 'anx.event',
          kind: 'artifact',
          run_id: ctx.run_id,
          ...(done.task_id ? { task_id: done.task_id } : {}),
          step: stageId,
          payload: { checkpoint },
        },
        status(
          next,
          'stage.completed',
          {
            stage: stageId,
            by,
            refs: checkpoint.refs,
            decision,
            ...(done.worker === null ? {} : { worker: done.worker }),
          },
          stageId,
        ),
      ],
    };
  };

  const failStage = (ctx: RunContext, event: AnyRunEvent, retry: boolean): Change => {
    const stageId = ctx.current;
    const exec = ctx.stages[stageId ?? ''];
    const stage = stageDef(stageId);
    if (!exec || !stage || stageId === null) return { ctx, effects: [] };
    const timedOut = event.type.startsWith('xstate.after.');
    const now = timedOut
      ? Math.max(ctx.now, (exec.started_at ?? ctx.now) + stage.timeout_ms)
      : clock(ctx, event);
    const retry_count = retry ? exec.retry_count + 1 : exec.retry_count;
    const failed: StageExecution = {
      ...exec,
      status: retry ? 'retrying' : 'failed',
      ended_at: now,
      retry_count,
      last_error: failureReason(ctx, event),
    };
    const next = { ...withExec(ctx, failed), now };
    const effects: RunEffect[] = [
      status(
        next,
        retry ? 'stage.retrying' : 'stage.failed',
        {
          stage: stageId,
          ...(exec.worker === null ? {} : { worker: exec.worker }),
          reason: failed.last_error,
          retry_count,
          ...(retry ? { backoff_ms: backoffDelay(stage.backoff, retry_count) } : {}),
        },
        stageId,
      ),
    ];
    return { ctx: next, effects };
  };

  const rollback = (ctx: RunContext, event: AnyRunEvent, retry: boolean): Change => {
    const reviewId = ctx.current;
    const review = ctx.stages[reviewId ?? ''];
    const targetId = rejectTarget(ctx, event);
    const target = ctx.stages[targetId ?? ''];
    if (!review || !target || reviewId === null || targetId === null) return { ctx, effects: [] };
    const now = clock(ctx, event);
    const reason = text(bodyOf(event)['reason'], 'rejected');
    const rejected: StageExecution = { ...review, status: 'rejected', ended_at: now, summary: reason };
    const rolled: StageExecution = {
      ...target,
      status: 'retrying',
      retry_count: retry ? target.retry_count + 1 : target.retry_count,
      last_error: truncateUtf8(`rejected by ${reviewId}: ${reason}`, TEXT_MAX_BYTES),
    };
    const next = { ...withExec(withExec(ctx, rejected), rolled), now, current: targetId };
    return {
      ctx: next,
      effects: [
        status(
          next,
          'stage.rejected',
          { stage: reviewId, target: targetId, reason, retry_count: rolled.retry_count },
          reviewId,
        ),
      ],
    };
  };

  const escalate = (ctx: RunContext, reason: string): Change => {
    const stageId = ctx.current ?? '';
    const exec = ctx.stages[stageId];
    const next: RunContext = {
      ...(exec ? withExec(ctx, { ...exec, status: 'takeover' }) : ctx),
      takeover: { stage: stageId, reason },
    };
    const body = {
      run_id: ctx.run_id,
      stage: stageId,
      reason,
      task_id: exec?.task_id ?? null,
      retry_count: exec?.retry_count ?? 0,
      last_error: exec?.last_error ?? null,
      actions: ['takeover.deliver', 'takeover.reassign', 'takeover.skip', 'run.abort'],
    };
    return {
      ctx: next,
      effects: [
        status(next, 'run.takeover', { stage: stageId, reason }, stageId),
        {
          type: 'anx.send',
          to: ctx.owner,
          msgType: 'run.takeover',
          body,
          ctx: msgCtx(ctx, stageId, exec?.task_id ?? ''),
        },
      ],
    };
  };

  const manifest = (ctx: RunContext): DeliveryManifestContent => {
    const stages = def.stages.map((s) => {
      const e = ctx.stages[s.id] ?? emptyExecution(s.id);
      return {
        stage: s.id,
        status: e.status,
        worker: e.worker,
        task_id: e.task_id,
        attempt: e.attempt,
        retry_count: e.retry_count,
        refs: stageRefs(e),
        decision: e.decision,
      };
    });
    const lastDelivered = [...stages].reverse().find((s) => s.status === 'delivered');
    return {
      run_id: ctx.run_id,
      playbook: ctx.playbook,
      enclave_id: ctx.enclave_id,
      session_id: ctx.session_id,
      objective: ctx.objective,
      completed_at: ctx.now,
      stages,
      final: lastDelivered?.refs ?? [],
    };
  };

  const endRun = (
    ctx: RunContext,
    state: 'run.completed' | 'run.aborted' | 'run.failed',
    reason?: string,
  ): Change => {
    const next: RunContext = { ...ctx, current: state === 'run.completed' ? null : ctx.current };
    if (reason !== undefined) next.end_reason = reason;
    const effects: RunEffect[] = [];
    // Tell workers still on a task that it no longer matters, so they stop spending on it.
    if (state !== 'run.completed') {
      for (const t of runningTasks(ctx)) {
        effects.push({
          type: 'anx.send',
          to: t.worker,
          msgType: 'stage.cancel',
          body: { run_id: ctx.run_id, task_id: t.task_id, reason: reason ?? state },
          ctx: msgCtx(ctx, ctx.current ?? '', t.task_id),
        });
      }
    }
    const body =
      state === 'run.completed' ? manifest(next) : { run_id: ctx.run_id, reason, stage: ctx.current };
    effects.push(
      status(
        next,
        state,
        state === 'run.completed' ? { final: (body as DeliveryManifestContent).final } : { reason },
      ),
      {
        type: 'anx.send',
        to: ctx.coordinator,
        msgType: state,
        body,
        ctx: { run_id: ctx.run_id, ...(ctx.enclave_id ? { enclave_id: ctx.enclave_id } : {}) },
      },
    );
    return { ctx: next, effects };
  };

  // Each reducer runs inside one enqueueActions so its assign and its emits stay together and in order.
  const run =
    <P>(reduce: (ctx: RunContext, event: AnyRunEvent, params: P) => Change) =>
    (
      {
        context,
        event,
        enqueue,
      }: {
        context: RunContext;
        event: AnyRunEvent;
        enqueue: { assign: (c: Partial<RunContext>) => void; emit: (e: RunEffect) => void };
      },
      params: P,
    ) => {
      const { ctx, effects } = reduce(context, event, params);
      if (ctx !== context) enqueue.assign(ctx);
      for (const e of effects) enqueue.emit(e);
    };

  const first = def.stages[0]?.id;
  if (first === undefined) throw new RangeError(`playbook ${def.name} has no stages`);
  const current = (stage: string) => ({ type: 'isCurrent' as const, params: { stage } });

  const live = '#run.live';
  const failureRouting = (extra: readonly ActionName[]) => [
    {
      guard: 'canRetry' as const,
      target: `${live}.retrying`,
      actions: [...extra, 'failStage'] as ActionName[],
    },
    { target: `${live}.takeover`, actions: [...extra, 'failStageFinal', 'escalate'] as ActionName[] },
  ];

  const stageStates = Object.fromEntries(
    def.stages.map((s) => {
      const next = nextOf(s.id);
      const onward = next === null ? '#run.completed' : `${live}.running.${next}`;
      const completing: ActionName[] =
        next === null
          ? ['recordDelivery', 'completeStage', 'completeRun']
          : ['recordDelivery', 'completeStage'];
      return [
        s.id,
        {
          initial: 'assign',
          states: {
            assign: {
              always: [
                {
                  guard: { type: 'hasWorker' as const, params: { stage: s.id } },
                  target: 'working',
                  actions: { type: 'enterStage' as const, params: { stage: s.id } },
                },
                {
                  target: `${live}.takeover`,
                  actions: { type: 'escalateNoWorker' as const, params: { stage: s.id } },
                },
              ],
            },
            // The timeout lives here, not on the stage state: its delay is read after enterStage has made
            // this stage current (on the first stage, `current` is still null when the stage state is entered).
            working: {
              after: {
                stageTimeout: failureRouting([]),
              },
            },
          },
          on: {
            'stage.delivered': [
              { guard: 'isRefused', actions: 'refuseEvent' },
              { guard: 'completesStage', target: onward, actions: completing },
              ...(s.vote
                ? [
                    {
                      guard: and(['voteDeadlocked', 'canRetry']),
                      target: `${live}.retrying`,
                      actions: ['recordDelivery', 'failStage'] as ActionName[],
                    },
                    {
                      guard: 'voteDeadlocked' as const,
                      target: `${live}.takeover`,
                      actions: ['recordDelivery', 'failStageFinal', 'escalate'] as ActionName[],
                    },
                  ]
                : []),
              { actions: 'recordDelivery' },
            ],
            'stage.failed': [
              { guard: 'isRefused', actions: 'refuseEvent' },
              { guard: and(['canRetry', not('isFatal')]), target: `${live}.retrying`, actions: 'failStage' },
              { target: `${live}.takeover`, actions: ['failStageFinal', 'escalate'] },
            ],
            'stage.rejected': s.review
              ? ([
                  { guard: 'isRefused', actions: 'refuseEvent' },
                  { guard: 'canRollback', target: `${live}.route`, actions: 'rollback' },
                  { target: `${live}.takeover`, actions: ['rollbackFinal', 'escalate'] },
                ] as const)
              : ([{ actions: 'refuseEvent' }] as const),
          },
        } as const,
      ];
    }),
  );

  const ownerOnly = (target: string, actions: ActionName[]) => [
    { guard: 'isOwner' as const, target, actions },
    { actions: 'refuseEvent' as const },
  ];

  const machine = setup({
    types: {
      context: {} as RunContext,
      events: {} as RunEvent,
      input: {} as RunInput,
      emitted: {} as RunEffect,
    },
    guards: {
      isCurrent: ({ context }, params: { stage: string }) => context.current === params.stage,
      runFinished: ({ context }) => context.current === null,
      hasWorker: ({ context }, params: { stage: string }) => {
        const stage = stageDef(params.stage);
        return !!stage && workersFor(context, stage).length > 0;
      },
      isRefused: ({ context, event }) => refusal(context, event) !== null,
      completesStage: ({ context, event }) => outcomeAfter(context, event) === 'complete',
      voteDeadlocked: ({ context, event }) => outcomeAfter(context, event) === 'deadlock',
      canRetry: ({ context }) => retriesLeft(context, context.current),
      isFatal: ({ event }) => bodyOf(event)['fatal'] === true,
      canRollback: ({ context, event }) => retriesLeft(context, rejectTarget(context, event)),
      isOwner: ({ context, event }) => isOwner(context, event),
      isValidTakeoverRef: ({ event }) => isArtifactRef(bodyOf(event)['ref']),
      isValidWorker: ({ event }) => {
        const w = bodyOf(event)['worker'];
        return typeof w === 'string' && w.length > 0 && w.length <= ID_MAX_CHARS;
      },
    },
    delays: {
      stageTimeout: ({ context }) => runDelay(def, 'stageTimeout', context),
      retryBackoff: ({ context }) => runDelay(def, 'retryBackoff', context),
      takeoverTimeout: ({ context }) => runDelay(def, 'takeoverTimeout', context),
    },
    actions: {
      startRun: enqueueActions(
        run((ctx, event) => {
          const next = { ...ctx, now: clock(ctx, event) };
          return {
            ctx: next,
            effects: [status(next, 'run.started', { playbook: ctx.playbook, objective: ctx.objective })],
          };
        }),
      ),
      enterStage: enqueueActions(run<{ stage: string }>((ctx, _e, p) => enterStage(ctx, p.stage))),
      escalateNoWorker: enqueueActions(
        run<{ stage: string }>((ctx, _e, p) => {
          const role = stageDef(p.stage)?.role ?? '?';
          return escalate({ ...ctx, current: p.stage }, `no worker assigned for role ${role}`);
        }),
      ),
      recordDelivery: enqueueActions(
        run((ctx, event) => {
          const next = applyDelivery(ctx, event);
          const body = bodyOf(event);
          return {
            ctx: next,
            effects: [
              {
                type: 'anx.event',
                kind: 'message',
                run_id: ctx.run_id,
                task_id: String(body['task_id']),
                step: ctx.current ?? '',
                payload: {
                  delivered: boundedRef(body['ref'] as ArtifactRef),
                  choice: body['choice'] ?? null,
                },
              },
            ],
          };
        }),
      ),
      completeStage: enqueueActions(run((ctx) => completeStage(ctx, 'worker'))),
      completeRun: enqueueActions(run((ctx) => endRun(ctx, 'run.completed'))),
      failStage: enqueueActions(run((ctx, event) => failStage(ctx, event, true))),
      failStageFinal: enqueueActions(run((ctx, event) => failStage(ctx, event, false))),
      rollback: enqueueActions(run((ctx, event) => rollback(ctx, event, true))),
      rollbackFinal: enqueueActions(run((ctx, event) => rollback(ctx, event, false))),
      escalate: enqueueActions(
        run((ctx) => {
          const exec = ctx.stages[ctx.current ?? ''];
          return escalate(
            ctx,
            exec?.last_error ? `retries exhausted or fatal: ${exec.last_error}` : 'escalated',
          );
        }),
      ),
      wakeForRetry: enqueueActions(
        run((ctx) => {
          const stage = stageDef(ctx.current);
          const exec = ctx.stages[ctx.current ?? ''];
          if (!stage || !exec) return { ctx, effects: [] };
          const due = (exec.ended_at ?? ctx.now) + backoffDelay(stage.backoff, exec.retry_count);
          return { ctx: { ...ctx, now: Math.max(ctx.now, due) }, effects: [] };
        }),
      ),
      refuseEvent: enqueueActions(
        run((ctx, event) => {
          const body = bodyOf(event);
          const isStage = event.type.startsWith('stage.');
          const reason = isStage
            ? (refusal(ctx, event) ?? 'not_expected_now')
            : 'not_authorised_or_not_expected';
          const effect: TraceEffect = {
            type: 'anx.event',
            kind: 'error',
            run_id: ctx.run_id,
            payload: {
              ignored: event.type,
              reason:
                event.type === 'stage.rejected' && !stageDef(ctx.current)?.review
                  ? 'not_a_review_stage'
                  : reason,
              from: senderOf(event)[0] ?? null,
              task_id: typeof body['task_id'] === 'string' ? body['task_id'].slice(0, ID_MAX_CHARS) : null,
              current: ctx.current,
            },
          };
          if (typeof body['task_id'] === 'string') effect.task_id = body['task_id'].slice(0, ID_MAX_CHARS);
          return { ctx: { ...ctx, now: clock(ctx, event) }, effects: [effect] };
        }),
      ),
      takeoverDeliver: enqueueActions(
        run((ctx, event) => {
          const body = bodyOf(event);
          const exec = ctx.stages[ctx.current ?? ''];
          if (!exec || !isArtifactRef(body['ref'])) return { ctx, effects: [] };
          const ref = boundedRef(body['ref']);
          const summary = truncateUtf8(
            typeof body['summary'] === 'string' ? body['summary'] : ref.summary,
            SUMMARY_MAX_BYTES,
          );
          const owned: StageExecution = {
            ...exec,
            output_ref: ref,
            summary,
            shards: null,
            worker: senderOf(event)[0] ?? ctx.owner,
          };
          return completeStage({ ...withExec(ctx, owned), now: clock(ctx, event) }, 'owner');
        }),
      ),
      takeoverReassign: enqueueActions(
        run((ctx, event) => {
          const stageId = ctx.current ?? '';
          const exec = ctx.stages[stageId];
          const worker = String(bodyOf(event)['worker']);
          if (!exec) return { ctx, effects: [] };
          const next: RunContext = {
            ...withExec(ctx, { ...exec, retry_count: 0, status: 'retrying' }),
            reassigned: { ...ctx.reassigned, [stageId]: worker },
            takeover: null,
            now: clock(ctx, event),
          };
          return {
            ctx: next,
            effects: [status(next, 'stage.reassigned', { stage: stageId, worker }, stageId)],
          };
        }),
      ),
      takeoverSkip: enqueueActions(
        run((ctx, event) => {
          const stageId = ctx.current ?? '';
          const exec = ctx.stages[stageId];
          if (!exec) return { ctx, effects: [] };
          const now = clock(ctx, event);
          const reason = text(bodyOf(event)['reason'], 'skipped by owner');
          const skipped: StageExecution = {
            ...exec,
            status: 'skipped',
            ended_at: now,
            summary: reason,
            shards: null,
          };
          const next: RunContext = {
            ...withExec(ctx, skipped),
            now,
            current: nextOf(stageId),
            takeover: null,
          };
          return { ctx: next, effects: [status(next, 'stage.skipped', { stage: stageId, reason }, stageId)] };
        }),
      ),
      pauseRun: enqueueActions(
        run((ctx, event) => {
          const next = { ...ctx, now: clock(ctx, event) };
          return {
            ctx: next,
            effects: [
              status(next, 'run.paused', { stage: ctx.current, reason: text(bodyOf(event)['reason']) }),
            ],
          };
        }),
      ),
      deferEvent: enqueueActions(
        run((ctx, event) => {
          const body = bodyOf(event);
          // Held events are trimmed and capped: a paused run must not grow without bound.
          const held = {
            ...(event as StageEvent),
            body: {
              ...body,
              ...(typeof body['summary'] === 'string'
                ? { summary: truncateUtf8(body['summary'], SUMMARY_MAX_BYTES) }
                : {}),
              ...(typeof body['reason'] === 'string' ? { reason: text(body['reason']) } : {}),
              ...(typeof body['error'] === 'string' ? { error: text(body['error']) } : {}),
              ...(isArtifactRef(body['ref']) ? { ref: boundedRef(body['ref']) } : {}),
            },
          } as DeferredEvent;
          const cap = Math.max(1, ...def.stages.map(workerCount));
          const deferred = [...ctx.deferred.filter((d) => d.body.task_id !== body['task_id']), held].slice(
            -cap,
          );
          return {
            ctx: { ...ctx, deferred, now: clock(ctx, event) },
            effects: [status(ctx, 'run.event_held', { type: event.type, task_id: body['task_id'] ?? null })],
          };
        }),
      ),
      resumeRun: enqueueActions(({ context, event, enqueue }) => {
        const now = clock(context, event);
        enqueue.assign({ deferred: [], now });
        enqueue.emit(
          status(context, 'run.resumed', { stage: context.current, held: context.deferred.length }),
        );
        // Raised events run after history has restored the stage, so they meet the same checks as live ones.
        for (const held of context.deferred) enqueue.raise(held);
      }),
      abortRun: enqueueActions(
        run((ctx, event) =>
          endRun({ ...ctx, now: clock(ctx, event) }, 'run.aborted', text(bodyOf(event)['reason'], 'aborted')),
        ),
      ),
      failRun: enqueueActions(
        run((ctx) => {
          const now = ctx.now + (def.takeover_timeout_ms ?? 0);
          return endRun({ ...ctx, now }, 'run.failed', 'owner did not act on the takeover in time');
        }),
      ),
    },
  }).createMachine({
    id: 'run',
    description: `Run of playbook ${def.name}@${def.version}`,
    context: ({ input }) => initialRunContext(def, input),
    initial: 'pending',
    states: {
      pending: {
        on: {
          'run.start': ownerOnly('live', ['startRun']),
          'run.abort': ownerOnly('aborted', ['abortRun']),
          // Nothing has been assigned yet: whatever else arrives is reported and dropped.
          'stage.delivered': { actions: 'refuseEvent' },
          'stage.failed': { actions: 'refuseEvent' },
          'stage.rejected': { actions: 'refuseEvent' },
          'takeover.deliver': { actions: 'refuseEvent' },
          'takeover.reassign': { actions: 'refuseEvent' },
          'takeover.skip': { actions: 'refuseEvent' },
          'run.pause': { actions: 'refuseEvent' },
          'run.resume': { actions: 'refuseEvent' },
        },
      },
      live: {
        initial: 'running',
        on: {
          'run.pause': ownerOnly('paused', ['pauseRun']),
          'run.abort': ownerOnly('#run.aborted', ['abortRun']),
          // Anything a more specific state does not handle is reported and dropped, never applied.
          'stage.delivered': { actions: 'refuseEvent' },
          'stage.failed': { actions: 'refuseEvent' },
          'stage.rejected': { actions: 'refuseEvent' },
          'takeover.deliver': { actions: 'refuseEvent' },
          'takeover.reassign': { actions: 'refuseEvent' },
          'takeover.skip': { actions: 'refuseEvent' },
          'run.resume': { actions: 'refuseEvent' },
          'run.start': { actions: 'refuseEvent' },
        },
        states: {
          route: {
            always: [
              { guard: 'runFinished', target: '#run.completed', actions: 'completeRun' },
              ...def.stages.map((s) => ({ guard: current(s.id), target: `running.${s.id}` })),
            ],
          },
          running: { initial: first, states: stageStates },
          retrying: {
            after: { retryBackoff: { target: 'route', actions: 'wakeForRetry' } },
          },
          takeover: {
            ...(def.takeover_timeout_ms !== undefined
              ? { after: { takeoverTimeout: { target: '#run.failed', actions: 'failRun' } } }
              : {}),
            on: {
              'takeover.deliver': [
                {
                  guard: and(['isOwner', 'isValidTakeoverRef']),
                  target: 'route',
                  actions: 'takeoverDeliver',
                },
                { actions: 'refuseEvent' },
              ],
              'takeover.reassign': [
                { guard: and(['isOwner', 'isValidWorker']), target: 'route', actions: 'takeoverReassign' },
                { actions: 'refuseEvent' },
              ],
              'takeover.skip': ownerOnly('route', ['takeoverSkip']),
            },
          },
          hist: { type: 'history', history: 'deep' },
        },
      },
      paused: {
        on: {
          'run.resume': ownerOnly('live.hist', ['resumeRun']),
          'run.abort': ownerOnly('aborted', ['abortRun']),
          'stage.delivered': { actions: 'deferEvent' },
          'stage.failed': { actions: 'deferEvent' },
          'stage.rejected': { actions: 'deferEvent' },
          // Owner decisions wait until the run is resumed; they are reported, not held.
          'takeover.deliver': { actions: 'refuseEvent' },
          'takeover.reassign': { actions: 'refuseEvent' },
          'takeover.skip': { actions: 'refuseEvent' },
          'run.pause': { actions: 'refuseEvent' },
          'run.start': { actions: 'refuseEvent' },
        },
      },
      completed: { type: 'final' },
      failed: { type: 'final' },
      aborted: { type: 'final' },
    },
  });
  return machine;
}

/** The statechart type `compilePlaybook` returns. */
export type RunMachine = ReturnType<typeof compilePlaybook>;

/** Names of the run's delayed transitions. */
export type RunDelay = 'stageTimeout' | 'retryBackoff' | 'takeoverTimeout';

/** Milliseconds of a named delay in the given context: the stage timeout, the retry backoff, the takeover wait. */
export function runDelay(def: PlaybookDefinition, name: RunDelay, context: RunContext): number {
  const stage = def.stages.find((s) => s.id === context.current);
  const exec = context.current === null ? undefined : context.stages[context.current];
  if (name === 'stageTimeout') return stage?.timeout_ms ?? 0;
  if (name === 'retryBackoff') return stage && exec ? backoffDelay(stage.backoff, exec.retry_count) : 0;
  return def.takeover_timeout_ms ?? 0;
}

/**
 * The delayed events armed in a run snapshot, with their delays: what the kernel must keep as deadlines,
 * since XState's persisted snapshot does not carry pending timers. Send `{ type: event }` when one is due.
 *
 * @example
 * ```ts
 * for (const t of armedTimers(def, actor.getSnapshot())) timers.set(t.event, enteredAt + t.delay_ms);
 * ```
 */
export function armedTimers(
  def: PlaybookDefinition,
  snapshot: { context: RunContext; _nodes: ReadonlyArray<{ after: ReadonlyArray<{ eventType: string }> }> },
): Array<{ event: string; delay: RunDelay; delay_ms: number }> {
  const out = new Map<string, { event: string; delay: RunDelay; delay_ms: number }>();
  for (const node of snapshot._nodes) {
    for (const t of node.after) {
      const name = t.eventType.split('.')[2] as RunDelay | undefined;
      if (name === 'stageTimeout' || name === 'retryBackoff' || name === 'takeoverTimeout') {
        out.set(t.eventType, {
          event: t.eventType,
          delay: name,
          delay_ms: runDelay(def, name, snapshot.context),
        });
      }
    }
  }
  return [...out.values()];
}
