// Counts the LMDB write transactions an environment starts, on LMDB's write thread or on the caller's.
import type { RootDatabase } from 'lmdb';

/** From now on, `counts.transactions` goes up by one for every write transaction `root` starts. */
export function countTransactions(root: RootDatabase): { transactions: number } {
  const counts = { transactions: 0 };
  const childTransaction = root.childTransaction.bind(root);
  root.childTransaction = ((fn: () => unknown) => {
    counts.transactions++;
    return childTransaction(fn);
  }) as typeof root.childTransaction;
  const transactionSync = root.transactionSync.bind(root);
  root.transactionSync = ((fn: () => unknown, flags?: number) => {
    counts.transactions++;
    return transactionSync(fn, flags as never);
  }) as typeof root.transactionSync;
  return counts;
}
