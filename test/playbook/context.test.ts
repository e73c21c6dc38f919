// Context budget: snapshots stay within their byte budget however long the run, dropping the oldest summaries first.
import fc from 'fast-check';
import { pack } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import { initialRunContext } from '../../machines/playbook/compile.ts';
import { buildContextSnapshot, jsonBytes, truncateUtf8 } from '../../machines/playbook/context.ts';
import type { PlaybookDefinition } from '../../machines/playbook/definition.ts';
import { assertPlaybook } from '../../machines/playbook/validate.ts';
import { ref, startRun } from './harness.ts';

function longPlaybook(n: number, budget = 4096): PlaybookDefinition {
  return assertPlaybook({
    name: 'long',
    version: '1',
    context_budget_bytes: budget,
    stages: Array.from({ length: n }, (_, i) => ({
      id: `s${i + 1}`,
      role: 'worker',
      brief: `Stage ${i + 1}: refine the previous stages' work.`,
      inputs: i === 0 ? [] : [`s${i}`, ...(i > 1 ? [`s${i - 1}`] : [])],
      output: { kind: 'markdown', key: `out/s${i + 1}.md` },
    })),
  });
}

describe('jsonBytes', () => {
  it('counts the UTF-8 bytes of the JSON text, ASCII or not', () => {
    const bytes = (v: unknown) => new TextEncoder().encode(JSON.stringify(v)).length;
    for (const v of ['plain', 'ünïcode', '日本語', '🙂 emoji', '\ud800 lone', { a: ['x', 1, null] }, ''])
      expect(jsonBytes(v), JSON.stringify(v)).toBe(bytes(v));
    expect(jsonBytes(undefined)).toBe(0);
    fc.assert(fc.property(fc.jsonValue(), (v) => jsonBytes(v) === bytes(v)));
    fc.assert(fc.property(fc.string({ unit: 'binary' }), (v) => jsonBytes(v) === bytes(v)));
  });
});

describe('buildContextSnapshot', () => {
  it('keeps the stage-50 snapshot within budget while earlier outputs sum to far more', () => {
    const def = longPlaybook(50, 4096);
    const run = startRun(def);
    run.start();
    let totalSummaries = 0;
    for (let i = 1; i < 50; i++) {
      const summary = `stage ${i} result: ${'lorem ipsum dolor sit amet '.repeat(800)}`; // ~21 KB each
      totalSummaries += Buffer.byteLength(summary);
      run.deliver(`s${i}`, { summary });
    }
    expect(run.value()).toContain('s50');
    const assign = run.sends('stage.assign').at(-1)!;
    const snap = (assign.body as { context: ReturnType<typeof buildContextSnapshot> }).context;
    expect(snap.stage.id).toBe('s50');
    expect(totalSummaries).toBeGreaterThan(1_000_000);
    expect(jsonBytes(snap)).toBeLessThanOrEqual(4096);
    expect(pack(snap).length).toBeLessThanOrEqual(4096);
    // What it keeps: its inputs as refs, the nearest earlier stages, and a mark that the rest was dropped.
    expect(snap.inputs.map((r) => r.key)).toEqual(['s49/0', 's48/0']);
    expect(snap.earlier[0]?.stage).toBe('s49');
    expect(snap.earlier.length).toBeGreaterThan(0);
    expect(snap.truncated).toBe(true);
    expect(snap.omitted_summaries).toBe(49 - snap.earlier.length);
    // The persisted snapshot is bounded too: summaries are cut when recorded.
    expect(JSON.stringify(run.actor.getPersistedSnapshot()).length).toBeLessThan(50 * 2000);
  });

  it('is deterministic and never exceeds any budget from the minimum up', () => {
    const def = longPlaybook(12, 1024);
    const run = startRun(def, { objective: `objective ${'x'.repeat(10_000)}` });
    run.start();
    for (let i = 1; i < 12; i++) run.deliver(`s${i}`, { summary: `${i} ${'ü'.repeat(3000)}` });
    const ctx = run.ctx();
    for (const budget of [1024, 1500, 2048, 4096, 8192, 65536]) {
      const a = buildContextSnapshot(def, ctx, 's12', budget);
      expect(jsonBytes(a), `budget ${budget}`).toBeLessThanOrEqual(budget);
      expect(buildContextSnapshot(def, ctx, 's12', budget)).toEqual(a);
    }
    const small = buildContextSnapshot(def, ctx, 's12', 1024);
    expect(small.truncated).toBe(true);
    expect(small.objective.endsWith('…')).toBe(true);
  });

  it('leaves a small snapshot whole and marks nothing truncated', () => {
    const def = longPlaybook(3, 8192);
    const run = startRun(def);
    run.start();
    run.deliver('s1', { summary: 'short one' });
    run.deliver('s2', { summary: 'short two' });
    const snap = buildContextSnapshot(def, run.ctx(), 's3');
    expect(snap).toMatchObject({
      objective: 'ship the login page',
      truncated: false,
      omitted_summaries: 0,
      earlier: [
        { stage: 's2', status: 'delivered', summary: 'short two' },
        { stage: 's1', status: 'delivered', summary: 'short one' },
      ],
    });
    expect(snap.stage).toMatchObject({
      id: 's3',
      role: 'worker',
      output: { kind: 'markdown', key: 'out/s3.md' },
    });
  });

  it('cuts text on character boundaries', () => {
    expect(truncateUtf8('héllo wörld', 100)).toBe('héllo wörld');
    const cut = truncateUtf8('ü'.repeat(10), 8);
    expect(Buffer.byteLength(cut)).toBeLessThanOrEqual(8);
    expect(cut).toBe('üü…');
    expect(truncateUtf8('abc', 0)).toBe('');
  });

  it('stays within any budget for arbitrary text, summaries and refs (property)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 2, max: 30 }),
        fc.integer({ min: 1024, max: 20_000 }),
        fc.string({ maxLength: 6000, unit: 'grapheme' }),
        fc.array(fc.string({ maxLength: 3000, unit: 'binary' }), { minLength: 30, maxLength: 30 }),
        (n, budget, objective, summaries) => {
          const def = longPlaybook(n, budget);
          const ctx = initialRunContext(def, { run_id: 'r', objective, owner: 'o', assignments: {} });
          for (let i = 1; i < n; i++) {
            const e = ctx.stages[`s${i}`];
            if (!e) continue;
            e.status = 'delivered';
            e.summary = summaries[i] ?? '';
            e.output_ref = ref(`s${i}`, summaries[i] ?? '');
          }
          const snap = buildContextSnapshot(def, ctx, `s${n}`);
          expect(jsonBytes(snap)).toBeLessThanOrEqual(budget);
          expect(pack(snap).length).toBeLessThanOrEqual(budget);
        },
      ),
      { numRuns: 300 },
    );
  });
});
