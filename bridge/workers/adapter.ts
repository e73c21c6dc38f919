// The worker adapter seam: a stage task with its Context Snapshot and input artifacts in, an artifact or a failure out.
import type { StageProgress, StageTask } from '../../actors/worker-runtime.ts';
import type { ContextSnapshot } from '../../machines/playbook/context.ts';
import type { ArtifactRef } from '../../machines/playbook/definition.ts';
import { AnxError } from '../../runtime/errors.ts';

/** One input artifact of the stage, read from the vault as the worker. */
export interface AdapterArtifact {
  ref: ArtifactRef;
  kind: string;
  /** The content, up to the adapter input budget. */
  content: Uint8Array;
  /** True when `content` was cut to fit the budget. */
  truncated: boolean;
}

/** Everything an adapter is given for one task. */
export interface AdapterInput {
  task: StageTask;
  /** The bounded Context Snapshot (also `task.context`). */
  snapshot: ContextSnapshot;
  /** The stage's input artifacts, in the snapshot's order. */
  inputs: AdapterArtifact[];
  /** The snapshot and inputs rendered as one text prompt (see `renderPrompt`). */
  prompt: string;
  /** Reports progress; never throws, never blocks. Text of the same kind in a row is sent in batches. */
  emit(progress: StageProgress): void;
  /** Raised when the run no longer needs the task; the adapter stops its work and returns. */
  signal: AbortSignal;
}

/** What an adapter made of a task. */
export type AdapterOutcome =
  | { status: 'delivered'; value: string | Uint8Array; summary: string; kind?: string }
  | { status: 'rejected'; reason: string }
  | {
      status: 'failed';
      /** Stable reason: `exit`, `timeout`, `spawn`, `http`, `network`, `protocol`, `empty`, `output`. */
      reason: string;
      error: string;
      /** The run should not retry: the owner must look (a bad key, an unknown model). */
      fatal?: boolean;
    };

/**
 * A way of doing a stage's work: a local command (`cli`) or an LLM endpoint (`openai`, `ollama`).
 * `run` never throws for a failure of the work itself; it returns a `failed` outcome saying why.
 */
export interface WorkerAdapter {
  readonly kind: string;
  run(input: AdapterInput): Promise<AdapterOutcome>;
}

/** The operations of a handler context an adapter needs: met by both in-process and remote workers. */
export interface AdapterStageContext {
  task: StageTask;
  snapshot: ContextSnapshot;
  signal?: AbortSignal;
  vault: { get(keyOrRef: string | ArtifactRef): Promise<{ content: Uint8Array; meta?: { kind: string } }> };
  deliver(delivery: {
    value: string | Uint8Array;
    kind?: string;
    summary?: string;
    choice?: string;
  }): Promise<ArtifactRef>;
  reject(rejection: { reason: string }): Promise<void>;
  fail(error: unknown, options?: { fatal?: boolean }): Promise<void>;
  progress(progress: StageProgress): Promise<void>;
}

/** A worker adapter's configuration that does not follow the rules. */
export class WorkerConfigError extends AnxError {
  constructor(message: string, hint = 'see docs/workers.md for the configuration of each adapter') {
    super('ANX_WORKER_CONFIG_INVALID', message, { hint });
  }
}

export interface AdapterHandlerOptions {
  /** Total bytes of input artifact content handed to the adapter (default 256 KiB). */
  inputBudgetBytes?: number;
  /** Progress text is sent at most this often per kind (default 250 ms) … */
  progressIntervalMs?: number;
  /** … or once this many characters are waiting (default 4,000). */
  progressBatchChars?: number;
  /** Progress characters per task beyond which further text is dropped (default 1,000,000). */
  progressMaxChars?: number;
  /**
   * A delivered text whose first non-empty line starts with this rejects the stage instead, the rest
   * being the reason (default `REJECT:`; `null` turns it off).
   */
  rejectMarker?: string | null;
}

const DEFAULT_INPUT_BUDGET = 256 * 1024;

/**
 * The stage handler that runs `adapter` for each task: reads the inputs, renders the prompt, streams
 * progress into the trace and answers the task with the outcome. It fits `Worker.onStage` (in process)
 * and `RemoteWorker.onStage` (through the daemon) alike.
 */
export function adapterHandler(
  adapter: WorkerAdapter,
  options: AdapterHandlerOptions = {},
): (ctx: AdapterStageContext) => Promise<void> {
  return async (ctx) => {
    const controller = new AbortController();
    const abort = () => controller.abort();
    if (ctx.signal?.aborted) return;
    ctx.signal?.addEventListener('abort', abort, { once: true });
    const progress = new ProgressStream(ctx, options);
    try {
      const inputs = await readInputs(ctx, options.inputBudgetBytes ?? DEFAULT_INPUT_BUDGET);
      const prompt = renderPrompt(ctx.snapshot, inputs);
      let outcome: AdapterOutcome;
      try {
        outcome = await adapter.run({
          task: ctx.task,
          snapshot: ctx.snapshot,
          inputs,
          prompt,
          emit: (p) => progress.push(p),
          signal: controller.signal,
        });
      } catch (err) {
        outcome = {
          status: 'failed',
          reason: 'adapter',
          error: `the ${adapter.kind} adapter failed: ${err instanceof Error ? err.message : String(err)}`,
        };
      }
      await progress.close();
      if (controller.signal.aborted) return;
      const marker = options.rejectMarker === undefined ? REJECT_MARKER : options.rejectMarker;
      if (outcome.status === 'delivered' && marker !== null) {
        const reason = rejection(outcome.value, marker);
        if (reason !== undefined) outcome = { status: 'rejected', reason };
      }
      if (outcome.status === 'delivered') {
        const choice = choiceOf(outcome.value);
        await ctx.deliver({
          value: outcome.value,
          summary: outcome.summary,
          ...(outcome.kind === undefined ? {} : { kind: outcome.kind }),
          ...(choice === undefined ? {} : { choice }),
        });
      } else if (outcome.status === 'rejected') {
        await ctx.reject({ reason: outcome.reason });
      } else {
        await ctx.fail(outcome.error, outcome.fatal === true ? { fatal: true } : {});
      }
    } finally {
      progress.stop();
      ctx.signal?.removeEventListener('abort', abort);
    }
  };
}

/** The reason of an answer whose first non-empty line starts with `marker`, else undefined. */
function rejection(value: string | Uint8Array, marker: string): string | undefined {
  const head =
    typeof value === 'string' ? value.slice(0, 4096) : new TextDecoder().decode(value.subarray(0, 4096));
  const text = head.trimStart();
  if (!text.startsWith(marker)) return undefined;
  const full = typeof value === 'string' ? value : new TextDecoder().decode(value);
  return full.trimStart().slice(marker.length).trim().slice(0, 2000) || 'rejected';
}

/** A voter's answer: the rest of a first non-empty line that starts with `CHOICE:`. */
function choiceOf(value: string | Uint8Array): string | undefined {
  const head =
    typeof value === 'string' ? value.slice(0, 1024) : new TextDecoder().decode(value.subarray(0, 1024));
  const line = head.trimStart().split('\n')[0] ?? '';
  if (!line.startsWith(CHOICE_MARKER)) return undefined;
  const choice = line.slice(CHOICE_MARKER.length).trim().slice(0, 128);
  return choice === '' ? undefined : choice;
}

/** Reads the snapshot's input refs as the worker, cutting content to the budget in order. */
async function readInputs(ctx: AdapterStageContext, budget: number): Promise<AdapterArtifact[]> {
  const out: AdapterArtifact[] = [];
  let left = budget;
  for (const ref of ctx.snapshot.inputs) {
    const found = await ctx.vault.get(ref);
    const take = Math.max(0, Math.min(found.content.length, left));
    left -= take;
    out.push({
      ref,
      kind: found.meta?.kind ?? 'unknown',
      content: found.content.subarray(0, take),
      truncated: take < found.content.length,
    });
  }
  return out;
}

/** First non-empty line of `text`, at most 200 characters: the summary of a delivered artifact. */
export function firstLine(text: string): string {
  const line = text.split('\n').find((l) => l.trim() !== '') ?? '';
  return line.trim().slice(0, 200);
}

/** Whether `bytes` look like text: no NUL byte (invalid UTF-8 shows as replacement characters). */
function isText(bytes: Uint8Array): boolean {
  return !bytes.includes(0);
}

/** Marker on the first line of an answer by which a review stage's worker rejects the work. */
export const REJECT_MARKER = 'REJECT:';

/** Marker on the first line of an answer that names a voter's choice (vote stages). */
export const CHOICE_MARKER = 'CHOICE:';

/**
 * The task as one Markdown prompt: objective, the stage's brief and expected output, feedback of the
 * last attempt, earlier stages' summaries and the input artifacts' text.
 */
export function renderPrompt(snapshot: ContextSnapshot, inputs: AdapterArtifact[]): string {
  const s = snapshot.stage;
  const lines = [
    `# Objective`,
    '',
    snapshot.objective,
    '',
    `# Your stage: ${s.id} (role ${s.role}) of playbook ${snapshot.playbook.name}@${snapshot.playbook.version}`,
    '',
    s.brief,
    '',
    `Answer with the content of the artifact itself (${s.output.kind}, stored as ${s.output.key}); its first line is its summary.`,
    `If this stage reviews earlier work and that work must change, answer instead with a first line "${REJECT_MARKER} <what must change>".`,
    `If this stage asks you to vote, make the first line "${CHOICE_MARKER} <your choice>", then give your reasons.`,
  ];
  if (s.shard !== undefined)
    lines.push(
      '',
      `You are worker ${s.shard.index + 1} of ${s.shard.count}${s.shard.partition ? ': do your share of the work only' : ''}.`,
    );
  if (snapshot.feedback !== null) lines.push('', '# Feedback on the last attempt', '', snapshot.feedback);
  if (snapshot.earlier.length > 0) {
    lines.push('', '# Earlier stages', '');
    for (const e of snapshot.earlier) lines.push(`- ${e.stage} (${e.status}): ${e.summary}`);
  }
  if (inputs.length > 0) {
    lines.push('', '# Inputs');
    for (const input of inputs) {
      const r = input.ref;
      lines.push('', `## ${r.key} (version ${r.version}, ${input.kind})`, '');
      if (r.summary !== '') lines.push(`Summary: ${r.summary}`, '');
      if (isText(input.content)) {
        const text = new TextDecoder().decode(input.content);
        const fence = text.includes('```') ? '````' : '```';
        lines.push(fence, text, fence);
        if (input.truncated) lines.push(`(cut to ${input.content.length} of ${r.size} bytes)`);
      } else {
        lines.push(`(binary content, ${r.size} bytes, not shown)`);
      }
    }
  }
  if (snapshot.omitted_inputs > 0)
    lines.push('', `(${snapshot.omitted_inputs} more input(s) left out to fit the context budget)`);
  return `${lines.join('\n')}\n`;
}

/**
 * Coalesces progress into few events: text payloads (`{ text }`) of one kind in a row are joined and
 * sent every `progressIntervalMs` or `progressBatchChars`; other payloads go out in order. Sends one
 * event at a time, so the trace keeps the order; a failed send is dropped (progress never fails a task).
 */
class ProgressStream {
  private queue: StageProgress[] = [];
  private chars = 0;
  private total = 0;
  private dropped = 0;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private sending: Promise<void> = Promise.resolve();
  private stopped = false;
  private readonly interval: number;
  private readonly batch: number;
  private readonly max: number;

  constructor(
    private readonly ctx: AdapterStageContext,
    options: AdapterHandlerOptions,
  ) {
    this.interval = options.progressIntervalMs ?? 250;
    this.batch = options.progressBatchChars ?? 4000;
    this.max = options.progressMaxChars ?? 1_000_000;
  }

  push(p: StageProgress): void {
    if (this.stopped) return;
    const text = textOf(p.payload);
    if (text !== undefined) {
      if (this.total + text.length > this.max) {
        this.dropped += text.length;
        return;
      }
      this.total += text.length;
      this.chars += text.length;
      const last = this.queue.at(-1);
      const lastText = last === undefined ? undefined : textOf(last.payload);
      if (last !== undefined && last.kind === p.kind && lastText !== undefined)
        this.queue[this.queue.length - 1] = { kind: p.kind, payload: { text: lastText + text } };
      else this.queue.push({ kind: p.kind, payload: { text } });
      if (this.chars >= this.batch) this.flush();
      else this.timer ??= setTimeout(() => this.flush(), this.interval);
      return;
    }
    this.queue.push(p);
    this.flush();
  }

  private flush(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    const batch = this.queue;
    this.queue = [];
    this.chars = 0;
    for (const p of batch) {
      this.sending = this.sending.then(() => (this.stopped ? undefined : this.send(p)));
    }
  }

  private async send(p: StageProgress): Promise<void> {
    const text = textOf(p.payload);
    // One event stays under the runtime's 64 KiB payload limit even if every character is escaped (\u00XX).
    if (text !== undefined && text.length > 8000) {
      for (let i = 0; i < text.length; i += 8000)
        await this.send({ kind: p.kind, payload: { text: text.slice(i, i + 8000) } });
      return;
    }
    await this.ctx.progress(p).catch(() => {});
  }

  /** Sends what is waiting (and a note of dropped text) and resolves when all of it is sent. */
  async close(): Promise<void> {
    if (this.dropped > 0)
      this.queue.push({ kind: 'status', payload: { progress_dropped_chars: this.dropped } });
    this.flush();
    await this.sending;
  }

  stop(): void {
    this.stopped = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
  }
}

function textOf(payload: unknown): string | undefined {
  if (payload === null || typeof payload !== 'object') return undefined;
  const keys = Object.keys(payload);
  const text = (payload as { text?: unknown }).text;
  return keys.length === 1 && typeof text === 'string' ? text : undefined;
}
