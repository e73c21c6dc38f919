// The effects a machine may cause: the only way pure statecharts reach the world, by XState `emit()`.
import type { EventKind } from '../events/event.ts';
import type { EnvelopeContext } from './message.ts';

/** Send a message to a DID or actor address; committed with the snapshot, dispatched after commit. */
export interface SendEffect {
  type: 'anx.send';
  to: string;
  msgType: string;
  body?: unknown;
  ctx?: EnvelopeContext;
  thread?: string;
  reply?: string;
  exp?: number;
}

/** Append an EventV1 to the trace, in the same transaction as the state change. */
export interface EventEffect {
  type: 'anx.event';
  kind: EventKind;
  payload?: unknown;
  run_id?: string;
  task_id?: string;
  team_run_id?: string;
  step?: string;
  metadata?: Record<string, unknown>;
}

/** Append a record to one of the actor's own collections (e.g. a DID's inbox). */
export interface AppendEffect {
  type: 'anx.append';
  collection: string;
  value: unknown;
}

/**
 * Several effects as one emitted event, applied in their order as if emitted one by one: a machine
 * that handles a batch of messages emits one event for the batch (each XState `emit` costs about a
 * kilobyte of allocation and its share of the transition). Nested `anx.effects` are not applied.
 */
export interface EffectsEffect {
  type: 'anx.effects';
  effects: ReadonlyArray<SendEffect | EventEffect | AppendEffect>;
}

export type KernelEffect = SendEffect | EventEffect | AppendEffect | EffectsEffect;

/** Event types the kernel reserves for effects; a machine's other emitted events are ignored. */
export function isKernelEffect(event: { type: string }): event is KernelEffect {
  return (
    event.type === 'anx.send' ||
    event.type === 'anx.event' ||
    event.type === 'anx.append' ||
    event.type === 'anx.effects'
  );
}
