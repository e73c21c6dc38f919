// Stage outcomes of playbook runs as trust events of their workers: completed → success, timed out → timeout, failed → failure.
import type { EventV1 } from '../events/event.ts';
import type { TrustEventKind, TrustStore } from './trust.ts';

/** The trust event a run's status event says about the stage's worker, if any. */
export function stageOutcome(event: EventV1): { stage: string; kind: TrustEventKind } | undefined {
  if (event.kind !== 'status' || event.run_id === undefined || event.run_id === null) return undefined;
  const p = event.payload as { state?: unknown; stage?: unknown; by?: unknown; reason?: unknown } | null;
  if (p === null || typeof p !== 'object' || typeof p.stage !== 'string') return undefined;
  if (p.state === 'stage.completed')
    return p.by === 'worker' ? { stage: p.stage, kind: 'success' } : undefined;
  if (p.state !== 'stage.failed' && p.state !== 'stage.retrying') return undefined;
  const reason = typeof p.reason === 'string' ? p.reason : '';
  // A vote without quorum is nobody's failure.
  if (reason.startsWith('no quorum')) return undefined;
  return { stage: p.stage, kind: reason.startsWith('timed out') ? 'timeout' : 'failure' };
}

/**
 * Listens to committed events and records each stage outcome against the worker its status event
 * names. The scores follow the event log (`TrustStore.followEvents`): each outcome is noted in memory
 * and the seq heard is passed on, so they are written in groups. Returns the event-log listener; the
 * same function replays the events a crash left unwritten.
 */
export function trustFromRunEvents(trust: TrustStore): (events: readonly EventV1[]) => void {
  return (events) => {
    for (const event of events) {
      const outcome = stageOutcome(event);
      if (outcome === undefined) continue;
      const worker = (event.payload as { worker?: unknown }).worker;
      if (typeof worker !== 'string') continue;
      try {
        trust.noteEvent(worker, outcome.kind, event.ts);
      } catch {
        // A worker that is not a DID moves no score.
      }
    }
    const last = events[events.length - 1];
    if (last !== undefined) trust.heard(last.seq);
  };
}
