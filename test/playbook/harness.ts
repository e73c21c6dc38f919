// Test harness for run machines: a started actor on a simulated clock, the effects it emitted, and senders for each party.
import { createHash } from 'node:crypto';
import { createActor, SimulatedClock } from 'xstate';
import { compilePlaybook } from '../../machines/playbook/compile.ts';
import type { ArtifactRef, PlaybookDefinition } from '../../machines/playbook/definition.ts';
import type { RunEffect, RunInput, SendEffect, TraceEffect } from '../../machines/playbook/run.ts';

export const OWNER = 'did:agentnexus:z6MkOwner';
export const SECRETARY = 'did:agentnexus:z6MkSecretary';
export const did = (name: string) => `did:agentnexus:z6Mk${name}`;

/** A well-formed ref for `key`. */
export function ref(key: string, summary = `summary of ${key}`, version = 1): ArtifactRef {
  return {
    enclave_id: 'enc1',
    key,
    version,
    hash: createHash('sha256').update(`${key}@${version}`).digest('hex'),
    size: 10,
    summary,
  };
}

/** Assignments giving every role of `def` one worker named after the role (several for multi-worker stages). */
export function assignmentsFor(def: PlaybookDefinition): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const s of def.stages) {
    const n = s.fanout?.count ?? s.vote?.voters ?? 1;
    const list = out[s.role] ?? [];
    for (let i = list.length; i < n; i++) list.push(did(`${s.role}${i}`));
    out[s.role] = list;
  }
  return out;
}

export function startRun(def: PlaybookDefinition, input: Partial<RunInput> = {}) {
  const machine = compilePlaybook(def);
  const clock = new SimulatedClock();
  const full: RunInput = {
    run_id: 'run1',
    objective: 'ship the login page',
    owner: OWNER,
    coordinator: SECRETARY,
    enclave_id: 'enc1',
    session_id: 'sess1',
    assignments: assignmentsFor(def),
    ...input,
  };
  const actor = createActor(machine, { input: full, clock });
  const effects: RunEffect[] = [];
  actor.on('*', (e) => effects.push(e as RunEffect));
  actor.start();
  let ts = 1_000;
  const tick = () => {
    ts += 1_000;
    return ts;
  };

  const ctx = () => actor.getSnapshot().context;
  const exec = (stage: string) => {
    const e = ctx().stages[stage];
    if (!e) throw new Error(`no stage ${stage}`);
    return e;
  };
  const value = () => JSON.stringify(actor.getSnapshot().value);
  const sends = (msgType?: string) =>
    effects.filter(
      (e): e is SendEffect => e.type === 'anx.send' && (msgType === undefined || e.msgType === msgType),
    );
  const events = (kind?: TraceEffect['kind']) =>
    effects.filter(
      (e): e is TraceEffect => e.type === 'anx.event' && (kind === undefined || e.kind === kind),
    );
  const statuses = () => events('status').map((e) => (e.payload as { state: string }).state);

  const run = {
    actor,
    machine,
    clock,
    effects,
    ctx,
    exec,
    value,
    sends,
    events,
    statuses,
    start: () => actor.send({ type: 'run.start', from: OWNER, ts: tick(), body: {} }),
    /** Delivers for the stage's current task (or one shard of it) as its worker. */
    deliver(
      stage: string,
      opts: { shard?: number; summary?: string; choice?: string; task_id?: string; from?: string } = {},
    ) {
      const e = exec(stage);
      const shard = opts.shard === undefined ? undefined : e.shards?.[opts.shard];
      const task_id = opts.task_id ?? shard?.task_id ?? e.task_id ?? '';
      const from = opts.from ?? shard?.worker ?? e.worker ?? '';
      actor.send({
        type: 'stage.delivered',
        from,
        ts: tick(),
        body: {
          task_id,
          ref: ref(`${stage}/${opts.shard ?? 0}`, opts.summary ?? `did ${stage}`),
          ...(opts.summary !== undefined ? { summary: opts.summary } : {}),
          ...(opts.choice !== undefined ? { choice: opts.choice } : {}),
        },
      });
    },
    fail(stage: string, opts: { fatal?: boolean; error?: string } = {}) {
      const e = exec(stage);
      actor.send({
        type: 'stage.failed',
        from: e.worker ?? '',
        ts: tick(),
        body: {
          task_id: e.task_id ?? '',
          error: opts.error ?? 'boom',
          ...(opts.fatal ? { fatal: true } : {}),
        },
      });
    },
    reject(stage: string, reason = 'not good enough', target?: string) {
      const e = exec(stage);
      actor.send({
        type: 'stage.rejected',
        from: e.worker ?? '',
        ts: tick(),
        body: { task_id: e.task_id ?? '', reason, ...(target ? { target } : {}) },
      });
    },
    /** Fires the current stage's timeout by moving the simulated clock past it. */
    timeout(stage: string) {
      const s = def.stages.find((x) => x.id === stage);
      clock.increment((s?.timeout_ms ?? 0) + 1);
    },
    /** Lets the pending retry backoff elapse. */
    backoff() {
      clock.increment(3_600_000);
    },
    owner(
      type: 'run.pause' | 'run.resume' | 'run.abort' | 'takeover.skip',
      body: Record<string, unknown> = {},
    ) {
      actor.send({ type, from: OWNER, ts: tick(), body } as never);
    },
    ownerDeliver(key: string) {
      actor.send({ type: 'takeover.deliver', from: OWNER, ts: tick(), body: { ref: ref(key, 'by owner') } });
    },
    ownerReassign(worker: string) {
      actor.send({ type: 'takeover.reassign', from: OWNER, ts: tick(), body: { worker } });
    },
    /** Delivers every remaining stage in order until the run leaves `live`. */
    finish() {
      for (let guard = 0; guard < 1000 && value().includes('running'); guard++) {
        const current = ctx().current;
        if (!current) break;
        const e = exec(current);
        const stageDef = def.stages.find((s) => s.id === current);
        if (e.shards) {
          for (let i = 0; i < e.shards.length && value().includes(`"${current}"`); i++) {
            run.deliver(current, { shard: i, choice: stageDef?.vote ? 'yes' : undefined });
          }
        } else run.deliver(current);
      }
    },
  };
  return run;
}
