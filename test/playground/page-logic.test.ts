// The page's pure parts: run replay from real events, the line diff, timeline filters and the virtual window.
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { diffLines } from '../../playground/src/diff.ts';
import { replaySteps } from '../../playground/src/replay.ts';
import { matchesFilter, TimelineModel, visibleWindow } from '../../playground/src/timeline.ts';
import { runDemo } from '../../runtime/cli/demo.ts';
import type { EventV1 } from '../../runtime/events/event.ts';
import { Host } from '../../runtime/host.ts';
import { cleanupTempDirs, tempDir } from '../helpers/tmp.ts';
import { DEMO_STAGES } from './browser.ts';

afterAll(() => cleanupTempDirs());

const ev = (seq: number, kind: EventV1['kind'], payload: unknown, extra: Partial<EventV1> = {}): EventV1 => ({
  schema_version: '1',
  seq,
  ts: 1_000 + seq,
  kind,
  payload,
  ...extra,
});

describe('replay', () => {
  it("replays the demo run's stages from its events, the rejected review and its rollback included", async () => {
    const dataDir = `${tempDir('anx-replay-')}/data`;
    const { run_id } = await runDemo({ log: () => {}, dataDir });
    const host = await Host.open({ dataDir });
    try {
      const steps = replaySteps(host.trace(run_id));
      const stages = steps
        .map((s) => (s.value as { live?: { running?: Record<string, string> } }).live?.running)
        .filter((r) => r !== undefined)
        .map((r) => Object.keys(r as object)[0]);
      expect(stages).toEqual(DEMO_STAGES);
      expect(steps[0]?.value).toBe('pending');
      expect(steps.at(-1)?.value).toBe('completed');
      // The replay ends where the run really is.
      expect(host.teamwork.runs.status(run_id).value).toBe('completed');
      expect(steps.map((s) => s.state)).toContain('stage.rejected');
    } finally {
      await host.close();
    }
  }, 120_000);

  it('goes back to the stage it was in when a paused run resumes', () => {
    const steps = replaySteps([
      ev(1, 'status', { state: 'run.started' }),
      ev(2, 'status', { state: 'stage.started', stage: 'a' }),
      ev(3, 'message', { text: 'ignored' }),
      ev(4, 'status', { state: 'run.paused' }),
      ev(5, 'status', { state: 'run.resumed' }),
      ev(6, 'status', { state: 'run.aborted' }),
    ]);
    expect(steps.map((s) => s.value)).toEqual([
      'pending',
      { live: 'route' },
      { live: { running: { a: 'working' } } },
      'paused',
      { live: { running: { a: 'working' } } },
      'aborted',
    ]);
  });
});

describe('diffLines', () => {
  it('keeps common lines and marks removed and added ones', () => {
    expect(diffLines('a\nb\nc', 'a\nB\nc\nd').map((l) => `${l.op}${l.text}`)).toEqual([
      ' a',
      '-b',
      '+B',
      ' c',
      '+d',
    ]);
    expect(diffLines('', 'x')).toEqual([{ op: '+', text: 'x', newNo: 1 }]);
  });

  it('rebuilds both texts from the diff, for any pair of texts', () => {
    const text = fc
      .array(fc.constantFrom('a', 'b', 'c', 'dd', ''), { maxLength: 30 })
      .map((l) => l.join('\n'));
    fc.assert(
      fc.property(text, text, (a, b) => {
        const d = diffLines(a, b);
        expect(
          d
            .filter((l) => l.op !== '+')
            .map((l) => l.text)
            .join('\n'),
        ).toBe(a === '' ? '' : a);
        expect(
          d
            .filter((l) => l.op !== '-')
            .map((l) => l.text)
            .join('\n'),
        ).toBe(b === '' ? '' : b);
      }),
    );
  });
});

describe('timeline', () => {
  const events = [
    ev(1, 'status', { state: 'stage.started' }, { actor: 'run/r1' }),
    ev(2, 'artifact', { ref: {} }, { actor: 'enclave/e' }),
    ev(3, 'status', { state: 'run.aborted' }, { actor: 'run/r1' }),
    ev(4, 'error', { code: 'X' }, { actor: 'host' }),
  ];

  it('filters by kind, actor, status and time window like trace does', () => {
    const pick = (f: Parameters<typeof matchesFilter>[1]) =>
      events.filter((e) => matchesFilter(e, f)).map((e) => e.seq);
    expect(pick({ kinds: new Set(['status']) })).toEqual([1, 3]);
    expect(pick({ actor: 'run/' })).toEqual([1, 3]);
    expect(pick({ status: 'aborted' })).toEqual([3]);
    expect(pick({ since: 1002, until: 1004 })).toEqual([2, 3]);
    expect(pick({})).toEqual([1, 2, 3, 4]);
  });

  it('keeps events in sequence order without duplicates, whatever order they arrive in', () => {
    const model = new TimelineModel();
    model.setFilter({ kinds: new Set(['status']) });
    expect(model.add([events[2] as EventV1, events[3] as EventV1])).toBe(2);
    expect(model.add([events[0] as EventV1, events[1] as EventV1, events[2] as EventV1])).toBe(2);
    expect(model.events.map((e) => e.seq)).toEqual([1, 2, 3, 4]);
    expect(model.rows.map((e) => e.seq)).toEqual([1, 3]);
    expect(model.lastSeq).toBe(4);
  });

  it('draws only the rows in view plus the overscan', () => {
    expect(visibleWindow(0, 180, 18, 10_000, 5)).toEqual({ first: 0, last: 15 });
    expect(visibleWindow(18 * 5000, 180, 18, 10_000, 5)).toEqual({ first: 4995, last: 5015 });
    expect(visibleWindow(18 * 10_000, 180, 18, 10_000, 5)).toEqual({ first: 9995, last: 10_000 });
  });
});
