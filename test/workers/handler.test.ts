// The handler that runs any adapter, on a real host: progress batching and its cap, the prompt, adapter errors, the reject marker.
import { afterEach, beforeEach, expect, it } from 'vitest';
import {
  type AdapterHandlerOptions,
  type AdapterInput,
  type AdapterOutcome,
  adapterHandler,
  renderPrompt,
  type WorkerAdapter,
} from '../../bridge/workers/adapter.ts';
import { waitFor } from '../helpers/daemon.ts';
import { cleanupTempDirs } from '../helpers/tmp.ts';
import { type TeamHost, teamHost } from '../teamwork/fixtures.ts';
import { testInput } from './input.ts';

let team: TeamHost;
beforeEach(async () => {
  team = await teamHost();
});
afterEach(async () => {
  await team.host.close();
  cleanupTempDirs();
});

/** An adapter written in the test: does what `work` says with the input it is given. */
function inline(
  work: (input: AdapterInput) => Promise<AdapterOutcome>,
): WorkerAdapter & { seen: AdapterInput[] } {
  const seen: AdapterInput[] = [];
  return {
    kind: 'inline',
    seen,
    run: (input) => {
      seen.push(input);
      return work(input);
    },
  };
}

async function startOne(adapter: WorkerAdapter, options: AdapterHandlerOptions = {}) {
  const t = team.host.teamwork;
  t.worker(team.workers['pm'] as string).onStage('pm', async (ctx) => {
    await ctx.deliver({ value: new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0, 1, 2]), summary: 'a picture' });
  });
  t.worker(team.workers['architect'] as string).onStage('architect', adapterHandler(adapter, options));
  const { run_id } = await t.startRun({
    playbook: {
      name: 'handler',
      version: '1.0.0',
      objective: '{{objective}}',
      defaults: { max_retries: 0 },
      stages: [
        { id: 'draw', role: 'pm', brief: 'Draw it.', output: { kind: 'image', key: 'draw.png' } },
        {
          id: 'describe',
          role: 'architect',
          brief: 'Describe the picture.',
          inputs: ['draw'],
          output: { kind: 'markdown', key: 'describe.md' },
        },
      ],
    },
    objective: 'explain the drawing',
    owner: team.owner,
    enclave: team.enclave,
    assignments: { pm: team.workers['pm'] as string, architect: team.workers['architect'] as string },
  });
  return run_id;
}

async function runOne(adapter: WorkerAdapter, options: AdapterHandlerOptions = {}) {
  const t = team.host.teamwork;
  const runId = await startOne(adapter, options);
  await waitFor(
    () => ['completed', 'takeover'].includes(t.runs.status(runId).state),
    60_000,
    'the run to settle',
  );
  return { runId, status: t.runs.status(runId) };
}

it('sends streamed text in few events, in order, and caps what one task may stream', {
  timeout: 180_000,
}, async () => {
  const tokens = Array.from({ length: 3000 }, (_, i) => `t${i} `);
  const adapter = inline(async (input) => {
    for (const t of tokens) input.emit({ kind: 'message', payload: { text: t } });
    input.emit({ kind: 'tool', payload: { name: 'grep', args: ['x'] } });
    input.emit({ kind: 'reasoning', payload: { text: 'done thinking' } });
    return { status: 'delivered', value: tokens.join(''), summary: 'tokens' };
  });
  const { runId } = await runOne(adapter, { progressBatchChars: 2000 });
  const events = team.host
    .trace(runId, { kinds: ['message', 'tool', 'reasoning'] })
    .filter((e) => e.metadata?.['worker'] === team.workers['architect']);
  const messages = events.filter((e) => e.kind === 'message');
  expect(messages.map((e) => (e.payload as { text: string }).text).join('')).toBe(tokens.join(''));
  expect(messages.length).toBeLessThan(30);
  expect(events.map((e) => e.kind).slice(-2)).toEqual(['tool', 'reasoning']);
  expect(events.find((e) => e.kind === 'tool')?.payload).toEqual({ name: 'grep', args: ['x'] });

  const capped = inline(async (input) => {
    for (const t of tokens) input.emit({ kind: 'message', payload: { text: t } });
    return { status: 'delivered', value: 'ok', summary: 'ok' };
  });
  const second = await runOne(capped, { progressMaxChars: 1000 });
  const kept = team.host
    .trace(second.runId, { kinds: ['message', 'status'] })
    .filter((e) => e.step === 'describe' && e.metadata?.['worker'] !== undefined);
  const text = kept
    .filter((e) => e.kind === 'message')
    .map((e) => (e.payload as { text: string }).text)
    .join('');
  expect(text.length).toBeLessThanOrEqual(1000);
  const dropped = kept.find((e) => e.kind === 'status')?.payload as { progress_dropped_chars: number };
  expect(text.length + dropped.progress_dropped_chars).toBe(tokens.join('').length);
});

it('hands the adapter the snapshot, the inputs as read from the vault and a prompt that says what they are', {
  timeout: 180_000,
}, async () => {
  const adapter = inline(async () => ({ status: 'delivered', value: 'described', summary: 'described' }));
  await runOne(adapter);
  const input = adapter.seen[0] as AdapterInput;
  expect(input.inputs[0]?.ref.key).toBe('draw.png');
  expect([...(input.inputs[0]?.content ?? [])]).toEqual([0x89, 0x50, 0x4e, 0x47, 0, 1, 2]);
  expect(input.prompt).toContain('explain the drawing');
  expect(input.prompt).toContain('Describe the picture.');
  expect(input.prompt).toContain('## draw.png (version 1, image)');
  expect(input.prompt).toContain('(binary content, 7 bytes, not shown)');
  expect(input.prompt).toMatch(/- draw \(\w+\): a picture/);
});

it('renders feedback, shares, cut inputs and left-out inputs', () => {
  const base = testInput({ inputText: 'x'.repeat(100) });
  const snapshot = {
    ...base.snapshot,
    feedback: 'the reviewer wants tests',
    stage: { ...base.snapshot.stage, shard: { index: 1, count: 3, partition: true } },
    omitted_inputs: 2,
  };
  const cut = [
    {
      ...(base.inputs[0] as AdapterInput['inputs'][number]),
      content: new Uint8Array(10).fill(120),
      truncated: true,
    },
  ];
  const prompt = renderPrompt(snapshot, cut);
  expect(prompt).toContain('# Feedback on the last attempt\n\nthe reviewer wants tests');
  expect(prompt).toContain('You are worker 2 of 3: do your share of the work only.');
  expect(prompt).toContain('```\nxxxxxxxxxx\n```\n(cut to 10 of 100 bytes)');
  expect(prompt).toContain('(2 more input(s) left out to fit the context budget)');
});

it('fails the stage saying which adapter threw, and refuses a rejection marker on a stage that is not a review', {
  timeout: 180_000,
}, async () => {
  const throwing = inline(async () => {
    throw new Error('socket exploded');
  });
  const { status } = await runOne(throwing);
  expect(status.stages.find((s) => s.stage === 'describe')?.last_error).toBe(
    'the inline adapter failed: socket exploded',
  );
  await team.host.close();
  team = await teamHost();
  const rejecting = inline(async () => ({ status: 'delivered', value: 'REJECT: blurry', summary: '' }));
  const second = await runOne(rejecting);
  expect(second.status.stages.find((s) => s.stage === 'describe')?.last_error).toMatch(
    /not a review stage: only review stages can reject/,
  );
  // With the marker turned off the same text is delivered as it is.
  await team.host.close();
  team = await teamHost();
  const third = await runOne(rejecting, { rejectMarker: null });
  expect(third.status.state).toBe('completed');
});

it('answers nothing when the run no longer needs the task', { timeout: 180_000 }, async () => {
  let resolveStarted: () => void = () => {};
  const started = new Promise<void>((r) => {
    resolveStarted = r;
  });
  const adapter = inline(
    (input) =>
      new Promise<AdapterOutcome>((resolve) => {
        resolveStarted();
        input.signal.addEventListener('abort', () =>
          resolve({ status: 'failed', reason: 'aborted', error: 'stopped' }),
        );
      }),
  );
  const t = team.host.teamwork;
  const runId = await startOne(adapter);
  await started;
  await t.runs.control(runId, 'run.abort', {});
  await t.workers.idle();
  expect(t.runs.status(runId).state).toBe('aborted');
  expect(t.runs.status(runId).stages.find((s) => s.stage === 'describe')?.output_ref ?? null).toBeNull();
  expect(team.host.trace(runId, { kinds: ['error'] })).toEqual([]);
});

it("takes a voter's choice from a first line CHOICE: on vote stages", { timeout: 180_000 }, async () => {
  const t = team.host.teamwork;
  const adapter = inline(async () => ({
    status: 'delivered',
    value: 'CHOICE: option B\nbecause it is simpler',
    summary: 'CHOICE: option B',
  }));
  t.worker(team.workers['architect'] as string).onStage('architect', adapterHandler(adapter));
  const { run_id } = await t.startRun({
    playbook: {
      name: 'ballot',
      version: '1.0.0',
      objective: '{{objective}}',
      stages: [
        {
          id: 'ballot',
          role: 'architect',
          brief: 'Pick option A or option B.',
          output: { kind: 'markdown', key: 'ballot.md' },
          vote: { voters: 1, quorum: 1 },
        },
      ],
    },
    objective: 'choose a design',
    owner: team.owner,
    enclave: team.enclave,
    assignments: { architect: team.workers['architect'] as string },
  });
  await waitFor(() => t.runs.status(run_id).state === 'completed', 120_000, 'the vote');
  expect(t.runs.status(run_id).stages[0]?.decision).toBe('option B');
  expect(adapter.seen[0]?.prompt).toContain('make the first line "CHOICE: <your choice>"');
});
