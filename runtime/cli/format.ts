// Human-readable output of the CLI: aligned tables and one-line events.
import type { EventV1 } from '../events/event.ts';

/** Aligns rows of cells into columns separated by two spaces. */
export function formatTable(rows: string[][]): string {
  const widths: number[] = [];
  for (const row of rows) {
    for (const [i, cell] of row.entries()) widths[i] = Math.max(widths[i] ?? 0, cell.length);
  }
  return rows
    .map((row) =>
      row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i] ?? 0))).join('  '),
    )
    .join('\n');
}

/** `#seq time kind actor [run/task/step] payload` on one line. */
export function formatEvent(event: EventV1): string {
  const where = [
    event.run_id && `run=${event.run_id}`,
    event.task_id && `task=${event.task_id}`,
    event.step && `step=${event.step}`,
  ]
    .filter(Boolean)
    .join(' ');
  const payload = JSON.stringify(event.payload);
  return `#${event.seq} ${new Date(event.ts).toISOString()} ${event.kind.padEnd(9)} ${event.actor ?? '-'}${where ? ` ${where}` : ''} ${
    payload.length > 200 ? `${payload.slice(0, 197)}...` : payload
  }`;
}
