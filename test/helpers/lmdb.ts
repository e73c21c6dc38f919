// Watches the LMDB write transactions an environment starts, on LMDB's write thread or on the caller's.
import type { RootDatabase } from 'lmdb';

/**
 * From now on, records each write transaction `root` starts: `inline` when it runs on the calling
 * thread (`transactionSync`), `thread` when LMDB's write thread runs it (`childTransaction`).
 */
export function watchTransactions(root: RootDatabase): { paths: string[]; readonly transactions: number } {
  const paths: string[] = [];
  const childTransaction = root.childTransaction.bind(root);
  root.childTransaction = ((fn: () => unknown) => {
    paths.push('thread');
    return childTransaction(fn);
  }) as typeof root.childTransaction;
  const transactionSync = root.transactionSync.bind(root);
  root.transactionSync = ((fn: () => unknown, flags?: number) => {
    paths.push('inline');
    return transactionSync(fn, flags as never);
  }) as typeof root.transactionSync;
  return {
    paths,
    get transactions() {
      return paths.length;
    },
  };
}
