// Line diff between two versions of a vault artifact, for the playground's vault browser.

export interface DiffLine {
  op: ' ' | '-' | '+';
  text: string;
  /** Line number in the old (for ' ' and '-') or new (for '+') text, from 1. */
  oldNo?: number;
  newNo?: number;
}

/** Above this many cells the middle part is shown as removed-then-added instead of aligned. */
const MAX_CELLS = 4_000_000;

/**
 * The lines of `before` and `after`, each kept, removed or added: the longest common subsequence
 * of lines is kept, after the common head and tail are set aside.
 */
export function diffLines(before: string, after: string): DiffLine[] {
  const a = before === '' ? [] : before.split('\n');
  const b = after === '' ? [] : after.split('\n');
  let head = 0;
  while (head < a.length && head < b.length && a[head] === b[head]) head++;
  let tail = 0;
  while (
    tail < a.length - head &&
    tail < b.length - head &&
    a[a.length - 1 - tail] === b[b.length - 1 - tail]
  )
    tail++;
  const midA = a.slice(head, a.length - tail);
  const midB = b.slice(head, b.length - tail);
  const out: DiffLine[] = [];
  let oldNo = 1;
  let newNo = 1;
  const keep = (text: string) => out.push({ op: ' ', text, oldNo: oldNo++, newNo: newNo++ });
  const del = (text: string) => out.push({ op: '-', text, oldNo: oldNo++ });
  const ins = (text: string) => out.push({ op: '+', text, newNo: newNo++ });
  for (let i = 0; i < head; i++) keep(a[i] as string);
  const n = midA.length;
  const m = midB.length;
  if (n * m > MAX_CELLS) {
    for (const l of midA) del(l);
    for (const l of midB) ins(l);
  } else {
    // lcs[i*(m+1)+j] = length of the LCS of midA[i..] and midB[j..].
    const lcs = new Uint32Array((n + 1) * (m + 1));
    for (let i = n - 1; i >= 0; i--) {
      for (let j = m - 1; j >= 0; j--) {
        lcs[i * (m + 1) + j] =
          midA[i] === midB[j]
            ? (lcs[(i + 1) * (m + 1) + j + 1] as number) + 1
            : Math.max(lcs[(i + 1) * (m + 1) + j] as number, lcs[i * (m + 1) + j + 1] as number);
      }
    }
    let i = 0;
    let j = 0;
    while (i < n && j < m) {
      if (midA[i] === midB[j]) {
        keep(midA[i] as string);
        i++;
        j++;
      } else if ((lcs[(i + 1) * (m + 1) + j] as number) >= (lcs[i * (m + 1) + j + 1] as number)) {
        del(midA[i++] as string);
      } else {
        ins(midB[j++] as string);
      }
    }
    while (i < n) del(midA[i++] as string);
    while (j < m) ins(midB[j++] as string);
  }
  for (let i = a.length - tail; i < a.length; i++) keep(a[i] as string);
  return out;
}
