// The ReplayGuard contract as one shared suite: every guard (in-memory, LMDB-backed) runs these cases.
import { describe, expect, it } from 'vitest';
import type { ReplayGuard } from '../../runtime/envelope/index.ts';

/**
 * Registers the shared ReplayGuard cases. `make` returns a fresh, empty guard whose clock reads
 * `now` (ms since the epoch); ids are remembered with `ts` near `now`.
 *
 * @example
 * ```ts
 * describeReplayGuard('DurableReplayGuard', async (now) => new DurableReplayGuard(store, commits));
 * ```
 */
export function describeReplayGuard(
  name: string,
  make: (now: number) => ReplayGuard | Promise<ReplayGuard>,
): void {
  const now = 1_767_225_600_000;
  describe(`${name} (ReplayGuard contract)`, () => {
    it('has not seen an id it was never told about', async () => {
      const guard = await make(now);
      expect(guard.seen('did:agentnexus:z6MkA', '01KDX0000000000000000000AA')).toBe(false);
    });

    it('has seen an id once it remembered it', async () => {
      const guard = await make(now);
      guard.remember('did:agentnexus:z6MkA', '01KDX0000000000000000000AA', now);
      expect(guard.seen('did:agentnexus:z6MkA', '01KDX0000000000000000000AA')).toBe(true);
    });

    it('keeps senders apart: the same id from another sender is new', async () => {
      const guard = await make(now);
      guard.remember('did:agentnexus:z6MkA', '01KDX0000000000000000000AA', now);
      expect(guard.seen('did:agentnexus:z6MkB', '01KDX0000000000000000000AA')).toBe(false);
      expect(guard.seen('did:agentnexus:z6MkA', '01KDX0000000000000000000AB')).toBe(false);
    });

    it('remembers ids with ts anywhere inside the window', async () => {
      const guard = await make(now);
      guard.remember('did:agentnexus:z6MkA', 'past-0000000000000000', now - 299_000);
      guard.remember('did:agentnexus:z6MkA', 'future-00000000000000', now + 299_000);
      expect(guard.seen('did:agentnexus:z6MkA', 'past-0000000000000000')).toBe(true);
      expect(guard.seen('did:agentnexus:z6MkA', 'future-00000000000000')).toBe(true);
    });

    it('tells apart pairs whose concatenation would collide', async () => {
      const guard = await make(now);
      guard.remember('did:agentnexus:z6MkA', 'x0000000000000000000000', now);
      expect(guard.seen('did:agentnexus:z6MkAx', '0000000000000000000000')).toBe(false);
    });
  });
}
