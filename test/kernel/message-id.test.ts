import { expect, it } from 'vitest';
import { newMessageId } from '../../runtime/kernel/message.ts';

it('makes 128-bit base64url message ids, distinct, none beginning with "-"', () => {
  const ids = Array.from({ length: 20_000 }, () => newMessageId());
  expect(new Set(ids).size).toBe(ids.length);
  for (const id of ids) expect(id).toMatch(/^[A-Za-z0-9_][A-Za-z0-9_-]{21}$/);
});

it('starts an id with the millisecond it was made in, so ids made together share a prefix', () => {
  const before = Date.now();
  const ids = Array.from({ length: 1_000 }, () => newMessageId());
  const after = Date.now();
  for (const id of ids) {
    const bytes = Buffer.from(id, 'base64url');
    expect(bytes.length).toBe(16);
    const ms = bytes.readUIntBE(0, 6);
    expect(ms).toBeGreaterThanOrEqual(before);
    expect(ms).toBeLessThanOrEqual(after);
  }
  // The rest is random: two ids of one millisecond differ in their last ten bytes.
  const tails = new Set(ids.map((id) => Buffer.from(id, 'base64url').subarray(6).toString('hex')));
  expect(tails.size).toBe(ids.length);
  expect(ids[0]?.startsWith('A')).toBe(true);
});
