// A long linear playbook run through a real host: what stage N's snapshot weighs against everything delivered before it.
import { jsonBytes } from '../../machines/playbook/context.ts';
import type { TeamHost } from './fixtures.ts';

/** A playbook of `n` stages, each reading the two before it. */
export function longPlaybook(n: number, budget = 4096) {
  return {
    name: `long-${n}`,
    version: '1',
    context_budget_bytes: budget,
    stages: Array.from({ length: n }, (_, i) => ({
      id: `s${i + 1}`,
      role: 'worker',
      brief: `Stage ${i + 1}: refine the work of the stages before.`,
      inputs: i === 0 ? [] : [`s${i}`, ...(i > 1 ? [`s${i - 1}`] : [])],
      output: { kind: 'markdown', key: `out/s${i + 1}.md` },
    })),
  };
}

export interface LongRunResult {
  run_id: string;
  /** JSON bytes of the Context Snapshot stage `n` received. */
  contextBytes: number;
  /** Bytes of every artifact delivered before stage `n` (what a chat history would carry). */
  historyBytes: number;
  budget: number;
  snapshot: unknown;
}

/** Runs `n` stages, each delivering `outputBytes` of content and a long summary; measures stage `n`'s snapshot. */
export async function runLongPlaybook(
  team: TeamHost,
  n = 50,
  outputBytes = 20_000,
  budget = 4096,
): Promise<LongRunResult> {
  const t = team.host.teamwork;
  const worker = team.workers['developer'] as string;
  let historyBytes = 0;
  let last: { bytes: number; snapshot: unknown } | undefined;
  const finished = new Promise<void>((resolve) => {
    t.worker(worker).onStage('worker', async (ctx) => {
      const i = Number(ctx.task.stage.slice(1));
      if (i === n) last = { bytes: jsonBytes(ctx.snapshot), snapshot: ctx.snapshot };
      const body = `stage ${i}: ${'lorem ipsum dolor sit amet '.repeat(Math.ceil(outputBytes / 27))}`.slice(
        0,
        outputBytes,
      );
      if (i < n) historyBytes += Buffer.byteLength(body);
      await ctx.deliver({ value: body, summary: body.slice(0, 2000) });
      if (i === n) resolve();
    });
  });
  const { run_id } = await t.startRun({
    playbook: longPlaybook(n, budget),
    objective: `a ${n}-stage run`,
    owner: team.owner,
    enclave: team.enclave,
    assignments: { worker },
  });
  await finished;
  if (last === undefined) throw new Error(`stage ${n} never ran`);
  return { run_id, contextBytes: last.bytes, historyBytes, budget, snapshot: last.snapshot };
}
