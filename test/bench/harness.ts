// Shared pieces of `npm run bench`: the result shape, timing helpers and percentile maths.

/** One measured figure. `raw` is the same figure for the raw layer measured in the same run. */
export interface BenchResult {
  id: string;
  value: number;
  unit: string;
  raw?: number;
  ratio?: number;
  /** Extra context printed in the table (e.g. p99 next to p50). */
  note?: string;
}

/** A bench group: a named function returning its results. */
export interface BenchGroup {
  name: string;
  run(log: (line: string) => void): Promise<BenchResult[]>;
}

/** Runs `fn` repeatedly for about `ms` milliseconds (after a warm-up) and returns operations per second. */
export function opsPerSecond(fn: () => void, ms = 1000, batch = 100): number {
  for (let i = 0; i < batch * 5; i++) fn();
  const start = process.hrtime.bigint();
  const deadline = start + BigInt(ms) * 1_000_000n;
  let ops = 0;
  let now = start;
  while (now < deadline) {
    for (let i = 0; i < batch; i++) fn();
    ops += batch;
    now = process.hrtime.bigint();
  }
  return ops / (Number(now - start) / 1e9);
}

/** Async variant of `opsPerSecond`: `fn` performs `batch` operations per call. */
export async function opsPerSecondAsync(fn: () => Promise<void>, ms = 1000, batch = 1): Promise<number> {
  for (let i = 0; i < 3; i++) await fn();
  const start = process.hrtime.bigint();
  const deadline = start + BigInt(ms) * 1_000_000n;
  let ops = 0;
  let now = start;
  while (now < deadline) {
    await fn();
    ops += batch;
    now = process.hrtime.bigint();
  }
  return ops / (Number(now - start) / 1e9);
}

/** Percentile (0..100) of a list of samples, nearest-rank. */
export function percentile(samples: number[], p: number): number {
  if (samples.length === 0) return Number.NaN;
  const sorted = [...samples].sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank] as number;
}

/** Median of several repeated measurements: the machine is noisy, so groups repeat and take the median. */
export function median(values: number[]): number {
  return percentile(values, 50);
}

/** Milliseconds elapsed since `start` (from `process.hrtime.bigint()`). */
export function msSince(start: bigint): number {
  return Number(process.hrtime.bigint() - start) / 1e6;
}

/** Builds a result with its ratio against the raw layer. */
export function withRatio(id: string, value: number, unit: string, raw: number, note?: string): BenchResult {
  const result: BenchResult = { id, value, unit, raw, ratio: raw === 0 ? 0 : value / raw };
  if (note !== undefined) result.note = note;
  return result;
}
