// Shapes of a Playbook Run actor: its input, context (StageExecution records), the envelopes it accepts and the effects it emits.
import type { ArtifactRef } from './definition.ts';

/** Lifecycle of one stage's execution record. */
export type StageStatus =
  | 'pending'
  | 'running'
  | 'delivered'
  | 'retrying'
  | 'rejected'
  | 'failed'
  | 'takeover'
  | 'skipped';

/** One worker's share of a fan-out or vote stage. */
export interface ShardExecution {
  worker: string;
  task_id: string;
  status: 'running' | 'delivered';
  output_ref: ArtifactRef | null;
  /** The voter's answer, for vote stages. */
  choice: string | null;
}

/** What the run knows about one stage. Summaries and errors are kept short so the persisted snapshot stays bounded. */
export interface StageExecution {
  stage: string;
  /** DID of the worker (the first one, for multi-worker stages). */
  worker: string | null;
  /** `${run_id}/${stage}/${attempt}`; multi-worker stages add `#${shard}` per worker. */
  task_id: string | null;
  status: StageStatus;
  output_ref: ArtifactRef | null;
  /** Retries spent on this stage: timeouts, failures and review rejections that rolled back to it. */
  retry_count: number;
  started_at: number | null;
  ended_at: number | null;
  /** How many times the stage has been entered; makes every task_id unique. */
  attempt: number;
  summary: string;
  /** The last failure or the review feedback that rolled the run back here. */
  last_error: string | null;
  shards: ShardExecution[] | null;
  /** The winning choice of a vote stage. */
  decision: string | null;
}

/** Input given when the kernel creates the run actor. */
export interface RunInput {
  run_id: string;
  objective: string;
  /** DID of the Owner: receives takeover requests and may deliver, reassign, skip, pause, resume or abort. */
  owner: string;
  /** DID that receives the Delivery Manifest content (the Secretary); defaults to the owner. */
  coordinator?: string;
  enclave_id?: string;
  session_id?: string;
  /** Role → worker DID, or several DIDs for stages that fan out or vote. */
  assignments: Record<string, string | string[]>;
  /** Refs of vault artifacts named as stage inputs that no stage of this run produces. */
  artifacts?: Record<string, ArtifactRef>;
}

/** A Stage Event or Owner action held while the run is paused, replayed on resume. */
export type DeferredEvent = StageEvent;

/** The run actor's context. */
export interface RunContext {
  run_id: string;
  playbook: { name: string; version: string };
  objective: string;
  owner: string;
  coordinator: string;
  enclave_id: string | null;
  session_id: string | null;
  assignments: Record<string, string[]>;
  /** Per-stage worker chosen by the Owner through `takeover.reassign`. */
  reassigned: Record<string, string>;
  artifacts: Record<string, ArtifactRef>;
  /** The stage being worked on (or retried, or taken over); null before start and after the last stage. */
  current: string | null;
  /** Latest time known to the run: envelope `ts`, or a delayed transition's deadline. Never read from a clock. */
  now: number;
  stages: Record<string, StageExecution>;
  takeover: { stage: string; reason: string } | null;
  deferred: DeferredEvent[];
  /** Why the run ended, for failed and aborted runs. */
  end_reason: string | null;
}

/** Envelope fields the kernel puts on every event it feeds the run. */
export interface EnvelopeFields {
  id?: string;
  from?: string;
  to?: string;
  ts?: number;
  ctx?: Record<string, unknown>;
  actor?: string;
  thread?: string;
  reply?: string;
}

export type RunStartEvent = EnvelopeFields & { type: 'run.start'; body?: Record<string, never> };
export type StageDeliveredEvent = EnvelopeFields & {
  type: 'stage.delivered';
  body: { task_id: string; ref: ArtifactRef; summary?: string; choice?: string };
};
export type StageRejectedEvent = EnvelopeFields & {
  type: 'stage.rejected';
  body: { task_id: string; reason: string; target?: string };
};
export type StageFailedEvent = EnvelopeFields & {
  type: 'stage.failed';
  body: { task_id: string; error: string; fatal?: boolean };
};
export type TakeoverDeliverEvent = EnvelopeFields & {
  type: 'takeover.deliver';
  body: { ref: ArtifactRef; summary?: string };
};
export type TakeoverReassignEvent = EnvelopeFields & { type: 'takeover.reassign'; body: { worker: string } };
export type TakeoverSkipEvent = EnvelopeFields & { type: 'takeover.skip'; body?: { reason?: string } };
export type RunAbortEvent = EnvelopeFields & { type: 'run.abort'; body?: { reason?: string } };
export type RunPauseEvent = EnvelopeFields & { type: 'run.pause'; body?: { reason?: string } };
export type RunResumeEvent = EnvelopeFields & { type: 'run.resume'; body?: Record<string, never> };

/** Events a worker sends about its task. */
export type StageEvent = StageDeliveredEvent | StageRejectedEvent | StageFailedEvent;

/** Every event the run accepts (delayed transitions come on top, as XState `xstate.after.*` events). */
export type RunEvent =
  | RunStartEvent
  | StageEvent
  | TakeoverDeliverEvent
  | TakeoverReassignEvent
  | TakeoverSkipEvent
  | RunAbortEvent
  | RunPauseEvent
  | RunResumeEvent;

/** Effect: the kernel sends a message to a DID or actor address. */
export interface SendEffect {
  type: 'anx.send';
  to: string;
  msgType: string;
  body?: unknown;
  ctx?: { run_id?: string; task_id?: string; enclave_id?: string; stage?: string; session_id?: string };
  thread?: string;
  reply?: string;
}

/** Effect: the kernel appends an EventV1 to the trace. */
export interface TraceEffect {
  type: 'anx.event';
  kind: 'status' | 'message' | 'artifact' | 'tool' | 'reasoning' | 'error';
  payload?: unknown;
  run_id?: string;
  task_id?: string;
  step?: string;
  metadata?: Record<string, unknown>;
}

/** Everything the run emits. */
export type RunEffect = SendEffect | TraceEffect;

/** Content of the Delivery Manifest sent to the coordinator when a run completes (the Secretary signs it). */
export interface DeliveryManifestContent {
  run_id: string;
  playbook: { name: string; version: string };
  enclave_id: string | null;
  session_id: string | null;
  objective: string;
  completed_at: number;
  stages: Array<{
    stage: string;
    status: StageStatus;
    worker: string | null;
    task_id: string | null;
    attempt: number;
    retry_count: number;
    refs: ArtifactRef[];
    decision: string | null;
  }>;
  /** Refs of the last delivered stage: what the run was for. */
  final: ArtifactRef[];
}
