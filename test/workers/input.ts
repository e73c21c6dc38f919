// A stage task as an adapter receives it, for tests that call an adapter directly (no host), and what it emitted.
import type { StageProgress, StageTask } from '../../actors/worker-runtime.ts';
import type { AdapterArtifact, AdapterInput } from '../../bridge/workers/adapter.ts';
import { renderPrompt } from '../../bridge/workers/adapter.ts';
import type { ContextSnapshot } from '../../machines/playbook/context.ts';

export interface TestInput extends AdapterInput {
  emitted: StageProgress[];
  controller: AbortController;
}

/** A design task with one input artifact; `emitted` collects the adapter's progress. */
export function testInput(over: { objective?: string; inputText?: string; runId?: string } = {}): TestInput {
  const runId = over.runId ?? 'run-1';
  const inputText = over.inputText ?? 'REQ: lock the form after five failures\n';
  const input: AdapterArtifact = {
    ref: {
      enclave_id: 'enc1',
      key: 'requirements/req.md',
      version: 1,
      hash: '0'.repeat(64),
      size: Buffer.byteLength(inputText),
      summary: 'requirements',
    },
    kind: 'markdown',
    content: new TextEncoder().encode(inputText),
    truncated: false,
  };
  const snapshot: ContextSnapshot = {
    run_id: runId,
    playbook: { name: 'p', version: '1.0.0' },
    objective: over.objective ?? 'ship the login page',
    stage: {
      id: 'design',
      role: 'architect',
      brief: 'Design it.',
      output: { kind: 'markdown', key: 'design/spec.md' },
    },
    inputs: [input.ref],
    feedback: null,
    earlier: [],
    truncated: false,
    omitted_summaries: 0,
    omitted_inputs: 0,
  };
  const task: StageTask = {
    did: 'did:agentnexus:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK',
    run_id: runId,
    task_id: `${runId}/design/1`,
    stage: 'design',
    role: 'architect',
    attempt: 1,
    timeout_ms: 60_000,
    enclave_id: 'enc1',
    context: snapshot,
  };
  const emitted: StageProgress[] = [];
  const controller = new AbortController();
  return {
    task,
    snapshot,
    inputs: [input],
    prompt: renderPrompt(snapshot, [input]),
    emit: (p) => emitted.push(p),
    signal: controller.signal,
    emitted,
    controller,
  };
}

/** The text of the emitted progress of one kind, joined. */
export function emittedText(input: TestInput, kind: StageProgress['kind']): string {
  return input.emitted
    .filter((p) => p.kind === kind)
    .map((p) => (p.payload as { text?: string }).text ?? '')
    .join('');
}
