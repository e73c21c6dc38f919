// The bounded in-memory replay guard: remembers within the window, forgets after it, stays within its size.
import { describe, expect, it } from 'vitest';
import { MemoryReplayGuard } from '../../runtime/envelope/index.ts';
import { describeReplayGuard } from './replay-guard.case.ts';

function clockAt(start: number) {
  const clock = { t: start, now: () => clock.t };
  return clock;
}

describeReplayGuard('MemoryReplayGuard', (now) => new MemoryReplayGuard({ clock: { now: () => now } }));

describe('MemoryReplayGuard', () => {
  it('remembers (sender, id) pairs, not ids alone', () => {
    const guard = new MemoryReplayGuard({ clock: clockAt(1000) });
    guard.remember('did:a', 'id-1', 1000);
    expect(guard.seen('did:a', 'id-1')).toBe(true);
    expect(guard.seen('did:b', 'id-1')).toBe(false);
    expect(guard.seen('did:a', 'id-2')).toBe(false);
  });

  it('forgets an id once its ts has left the window, and not before', () => {
    const clock = clockAt(1_000_000);
    const guard = new MemoryReplayGuard({ windowMs: 80_000, clock });
    guard.remember('did:a', 'old', 1_000_000);
    clock.t = 1_000_000 + 80_000;
    expect(guard.seen('did:a', 'old')).toBe(true);
    clock.t = 1_000_000 + 80_000 + 10_000 + 1;
    expect(guard.seen('did:a', 'old')).toBe(false);
    expect(guard.size).toBe(0);
  });

  it('keeps ids whose ts is still inside the window when older ones go', () => {
    const clock = clockAt(10_000_000);
    const guard = new MemoryReplayGuard({ windowMs: 80_000, clock });
    guard.remember('did:a', 'early', 10_000_000 - 79_000);
    guard.remember('did:a', 'late', 10_000_000 + 50_000);
    clock.t = 10_000_000 + 100_000;
    expect(guard.seen('did:a', 'early')).toBe(false);
    expect(guard.seen('did:a', 'late')).toBe(true);
  });

  it('holds at most maxEntries ids, dropping those with the oldest ts first', () => {
    const guard = new MemoryReplayGuard({ windowMs: 80_000, maxEntries: 100, clock: clockAt(1_000_000) });
    for (let i = 0; i < 300; i++) guard.remember('did:a', `id-${i}`, 1_000_000 - 79_000 + i * 100);
    expect(guard.size).toBe(100);
    expect(guard.seen('did:a', 'id-299')).toBe(true);
    expect(guard.seen('did:a', 'id-0')).toBe(false);
  });

  it('moves a re-remembered id to its newer time', () => {
    const clock = clockAt(1_000_000);
    const guard = new MemoryReplayGuard({ windowMs: 80_000, clock });
    guard.remember('did:a', 'x', 1_000_000 - 70_000);
    guard.remember('did:a', 'x', 1_000_000 + 70_000);
    clock.t = 1_000_000 + 40_000;
    expect(guard.seen('did:a', 'x')).toBe(true);
    expect(guard.size).toBe(1);
  });
});
