// EventV1: the one shape of everything observable (status, message, artifact, tool, reasoning, error).

export const EVENT_KINDS = ['status', 'message', 'artifact', 'tool', 'reasoning', 'error'] as const;
export type EventKind = (typeof EVENT_KINDS)[number];

/**
 * An observable event. `seq` is the host-local monotonic sequence assigned at commit staging;
 * `actor` is the address of the actor whose change caused it (absent for host-level events).
 */
export interface EventV1 {
  schema_version: '1';
  seq: number;
  ts: number;
  kind: EventKind;
  actor?: string;
  run_id?: string;
  task_id?: string;
  team_run_id?: string;
  step?: string;
  payload: unknown;
  metadata?: Record<string, unknown>;
}

/** What an emitter supplies; the log fills in `schema_version`, `seq` and `ts`. */
export type EventInput = Omit<EventV1, 'schema_version' | 'seq' | 'ts'> & { ts?: number };

export function isEventKind(value: unknown): value is EventKind {
  return typeof value === 'string' && (EVENT_KINDS as readonly string[]).includes(value);
}
