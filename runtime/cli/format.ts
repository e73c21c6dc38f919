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

/** A span of milliseconds in the largest whole unit that states it exactly: `7d`, `36h`, `90s`, `250ms`. */
export function formatDuration(ms: number): string {
  for (const [unit, size] of [
    ['d', 86_400_000],
    ['h', 3_600_000],
    ['m', 60_000],
    ['s', 1_000],
  ] as const) {
    if (ms >= size && ms % size === 0) return `${ms / size}${unit}`;
  }
  return `${ms}ms`;
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

/**
 * Text as a terminal may show it: control characters other than newline and tab (escape sequences
 * that retitle the window, clear the screen or write the clipboard, a carriage return that hides
 * what came before) become visible `\xNN` escapes. Messages, names and titles come from others.
 */
export function printable(text: string): string {
  return text.replace(
    // biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is the point
    /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g,
    (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`,
  );
}
