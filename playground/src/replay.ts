// Replays a playbook run from its events: each status event moves the run's statechart to a state the page can highlight.

/** The fields of an EventV1 the replay reads. */
export interface ReplayEvent {
  seq: number;
  ts: number;
  kind: string;
  actor?: string;
  step?: string;
  payload: unknown;
}

/** One step of a replay: after event `seq`, the run was in `value` (an XState state value). */
export interface ReplayStep {
  seq: number;
  ts: number;
  state: string;
  value: unknown;
}

const stageValue = (stage: string) => ({ live: { running: { [stage]: 'working' } } });

/**
 * The run's state after each of its status events. The run's statechart reports every change of
 * state as a status event (`stage.started`, `stage.retrying`, `run.takeover`, `run.paused`, …), so
 * the sequence of states is recovered from the events alone, also for runs long finished.
 */
export function replaySteps(events: readonly ReplayEvent[]): ReplayStep[] {
  const steps: ReplayStep[] = [];
  let value: unknown = 'pending';
  let beforePause: unknown = value;
  steps.push({ seq: 0, ts: events[0]?.ts ?? 0, state: 'pending', value });
  for (const e of events) {
    if (e.kind !== 'status' || e.payload === null || typeof e.payload !== 'object') continue;
    const p = e.payload as Record<string, unknown>;
    const state = p['state'];
    if (typeof state !== 'string') continue;
    const stage = typeof p['stage'] === 'string' ? p['stage'] : e.step;
    let next: unknown;
    switch (state) {
      case 'run.started':
        next = { live: 'route' };
        break;
      case 'stage.started':
        if (stage !== undefined) next = stageValue(stage);
        break;
      case 'stage.rejected':
        next = { live: 'route' };
        break;
      case 'stage.retrying':
        next = { live: 'retrying' };
        break;
      case 'run.takeover':
        next = { live: 'takeover' };
        break;
      case 'stage.reassigned':
      case 'stage.skipped':
        next = { live: 'route' };
        break;
      case 'run.paused':
        beforePause = value;
        next = 'paused';
        break;
      case 'run.resumed':
        next = beforePause;
        break;
      case 'run.completed':
        next = 'completed';
        break;
      case 'run.failed':
        next = 'failed';
        break;
      case 'run.aborted':
        next = 'aborted';
        break;
      default:
        break;
    }
    if (next === undefined) continue;
    value = next;
    steps.push({ seq: e.seq, ts: e.ts, state, value });
  }
  return steps;
}
