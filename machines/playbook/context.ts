// Context budget: the bounded Context Snapshot a stage receives, and the Handoff Checkpoint a finished stage leaves.
import type { ArtifactRef, PlaybookDefinition, StageDefinition } from './definition.ts';
import type { RunContext, StageExecution, StageStatus } from './run.ts';

/** What a stage's worker is handed instead of a chat history. Its JSON encoding never exceeds the budget. */
export interface ContextSnapshot {
  run_id: string;
  playbook: { name: string; version: string };
  objective: string;
  stage: {
    id: string;
    role: string;
    brief: string;
    output: { kind: string; key: string };
    /** Set for fan-out stages: which share of the work this worker has. */
    shard?: { index: number; count: number; partition: boolean };
  };
  /** Refs of the artifacts the stage reads; bodies stay in the vault. */
  inputs: ArtifactRef[];
  /** Why this stage runs again, when it does: a review's rejection or the last failure. */
  feedback: string | null;
  /** Summaries of earlier stages, nearest first. */
  earlier: Array<{ stage: string; status: StageStatus; summary: string }>;
  /** True when anything above was shortened or left out to fit the budget. */
  truncated: boolean;
  /** How many earlier summaries were left out (the oldest go first). */
  omitted_summaries: number;
  /** How many input refs were left out (only when refs alone exceed the budget). */
  omitted_inputs: number;
}

/** What a finished stage hands on: recorded in the trace when the stage completes. */
export interface HandoffCheckpoint {
  run_id: string;
  stage: string;
  task_id: string | null;
  attempt: number;
  worker: string | null;
  status: StageStatus;
  refs: ArtifactRef[];
  summary: string;
  ended_at: number | null;
}

const encoder = new TextEncoder();

/** Any character that takes more than one byte in UTF-8. */
const NOT_ASCII = /[\u0080-\uffff]/;

/** Bytes of `value` encoded as UTF-8 JSON: the measure every budget in the run uses. */
export function jsonBytes(value: unknown): number {
  const json = JSON.stringify(value) as string | undefined;
  if (json === undefined) return 0;
  // Mostly ASCII: one byte per character, counted without encoding the text.
  return NOT_ASCII.test(json) ? encoder.encode(json).length : json.length;
}

/**
 * Shortens `text` to at most `maxBytes` UTF-8 bytes, never splitting a character, ending with `…`
 * when something was cut.
 */
export function truncateUtf8(text: string, maxBytes: number): string {
  if (maxBytes <= 0) return '';
  // No character takes more than three bytes per UTF-16 unit, and ASCII takes one: most text needs no encoding.
  if (text.length * 3 <= maxBytes) return text;
  if (text.length <= maxBytes && !NOT_ASCII.test(text)) return text;
  if (encoder.encode(text).length <= maxBytes) return text;
  const ellipsisBytes = 3;
  if (maxBytes < ellipsisBytes) return '';
  let bytes = 0;
  let out = '';
  for (const ch of text) {
    const n = encoder.encode(ch).length;
    if (bytes + n > maxBytes - ellipsisBytes) break;
    bytes += n;
    out += ch;
  }
  return out + '…';
}

/** Objective, brief and feedback are cut no shorter than this before input ref summaries are given up. */
const TEXT_FLOOR_BYTES = 160;

/** Longest summary any single stage keeps in the run context or shows in a snapshot. */
export const SUMMARY_MAX_BYTES = 512;

/** Every ref a stage produced: one, or one per worker for fan-out and vote stages. */
export function stageRefs(exec: StageExecution | undefined): ArtifactRef[] {
  if (!exec) return [];
  if (exec.shards) {
    const refs: ArtifactRef[] = [];
    for (const s of exec.shards) if (s.output_ref) refs.push(s.output_ref);
    return refs;
  }
  return exec.output_ref ? [exec.output_ref] : [];
}

/** Resolves a stage's declared inputs to refs: earlier stages' outputs, or vault keys given at start. */
export function resolveInputs(
  def: PlaybookDefinition,
  run: RunContext,
  stage: StageDefinition,
): ArtifactRef[] {
  const refs: ArtifactRef[] = [];
  for (const input of stage.inputs) {
    const producer = def.stages.find((s) => s.id === input || s.output.key === input);
    if (producer) {
      refs.push(...stageRefs(run.stages[producer.id]));
      continue;
    }
    const given = run.artifacts[input];
    if (given) refs.push(given);
  }
  return refs;
}

/**
 * Builds the Context Snapshot for `stageId` whose JSON size is at most `budgetBytes`
 * (default: the playbook's `context_budget_bytes`). Deterministic: the same run gives the same snapshot.
 *
 * What gives way, in order: the oldest earlier-stage summaries, then the brief, objective and feedback,
 * then input ref summaries, then input refs from the end. Anything given up sets `truncated`.
 *
 * @example
 * ```ts
 * const snap = buildContextSnapshot(def, snapshot.context, 'implement');
 * // jsonBytes(snap) <= def.context_budget_bytes
 * ```
 */
export function buildContextSnapshot(
  def: PlaybookDefinition,
  run: RunContext,
  stageId: string,
  budgetBytes: number = def.context_budget_bytes,
  shard?: { index: number; count: number },
): ContextSnapshot {
  const index = def.stages.findIndex((s) => s.id === stageId);
  const stage = def.stages[index];
  if (!stage) throw new RangeError(`stage ${JSON.stringify(stageId)} is not in playbook ${def.name}`);
  const exec = run.stages[stageId];
  const snap: ContextSnapshot = {
    run_id: run.run_id,
    playbook: run.playbook,
    objective: run.objective,
    stage: { id: stage.id, role: stage.role, brief: stage.brief, output: stage.output },
    inputs: resolveInputs(def, run, stage),
    feedback: exec?.last_error ?? null,
    earlier: [],
    truncated: false,
    omitted_summaries: 0,
    omitted_inputs: 0,
  };
  if (shard && stage.fanout) snap.stage.shard = { ...shard, partition: stage.fanout.partition };
  const fits = () => jsonBytes(snap) <= budgetBytes;

  // Fixed part first: it must fit before any summary is worth adding. Text is cut down to a useful floor,
  // then input ref summaries go, then text is cut further, and only then are input refs themselves dropped.
  let size = jsonBytes(snap);
  if (size > budgetBytes) {
    let textCap = Math.max(jsonBytes(snap.stage.brief), jsonBytes(snap.objective), jsonBytes(snap.feedback));
    const shrinkText = (floor: number) => {
      while (!fits() && textCap > floor) {
        textCap = Math.max(floor, Math.floor(textCap / 2));
        snap.stage.brief = truncateUtf8(stage.brief, textCap);
        snap.objective = truncateUtf8(run.objective, textCap);
        if (snap.feedback !== null) snap.feedback = truncateUtf8(exec?.last_error ?? '', textCap);
        snap.truncated = true;
      }
    };
    shrinkText(TEXT_FLOOR_BYTES);
    if (!fits()) {
      snap.inputs = snap.inputs.map((r) => ({ ...r, summary: '' }));
      snap.truncated = true;
    }
    shrinkText(0);
    while (!fits() && snap.inputs.length > 0) {
      snap.inputs.pop();
      snap.omitted_inputs += 1;
    }
    size = jsonBytes(snap);
  }

  // Then earlier stages, nearest first, so what is dropped is always the oldest.
  const cap = Math.min(SUMMARY_MAX_BYTES, Math.floor(budgetBytes / 4));
  const candidates: ContextSnapshot['earlier'] = [];
  for (let i = index - 1; i >= 0; i--) {
    const id = def.stages[i]?.id ?? '';
    const e = run.stages[id];
    if (!e || e.status === 'pending') continue;
    candidates.push({ stage: id, status: e.status, summary: truncateUtf8(e.summary, cap) });
  }
  let taken = 0;
  // The snapshot's size is tracked as summaries are added (one more array element adds its own JSON and,
  // after the first, a comma), so a long run costs one encoding per summary rather than one per prefix.
  for (const c of candidates) {
    const added = jsonBytes(c) + (snap.earlier.length > 0 ? 1 : 0);
    if (size + added <= budgetBytes) {
      snap.earlier.push(c);
      size += added;
      taken += 1;
      continue;
    }
    // Give the first summary that does not fit whatever room is left, then stop.
    const room = budgetBytes - jsonBytes(snap) - jsonBytes({ ...c, summary: '' }) - 1;
    if (room > 16) {
      snap.earlier.push({ ...c, summary: truncateUtf8(c.summary, room) });
      if (fits()) taken += 1;
      else snap.earlier.pop();
    }
    break;
  }
  snap.omitted_summaries = candidates.length - taken;
  if (
    snap.omitted_summaries > 0 ||
    candidates.some((c, i) => i < taken && snap.earlier[i]?.summary !== c.summary)
  ) {
    snap.truncated = true;
  }
  // A last guard, so no future field can make the snapshot overflow silently.
  while (!fits() && snap.earlier.length > 0) {
    snap.earlier.pop();
    snap.omitted_summaries += 1;
  }
  return snap;
}

/**
 * The Handoff Checkpoint of a stage: who did it, which attempt, what it produced, and its short summary.
 */
export function makeHandoffCheckpoint(run: RunContext, stageId: string): HandoffCheckpoint {
  const e = run.stages[stageId];
  return {
    run_id: run.run_id,
    stage: stageId,
    task_id: e?.task_id ?? null,
    attempt: e?.attempt ?? 0,
    worker: e?.worker ?? null,
    status: e?.status ?? 'pending',
    refs: stageRefs(e),
    summary: e?.summary ?? '',
    ended_at: e?.ended_at ?? null,
  };
}
