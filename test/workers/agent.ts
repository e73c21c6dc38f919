// Where the stand-in agent script is, and how the tests tell that a process they started is gone.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const AGENT = fileURLToPath(new URL('./agent.mjs', import.meta.url));

/** Whether a process is gone (a zombie waiting for its reaper counts as gone). */
export function processGone(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
  } catch {
    return true;
  }
}
