import { expect, it } from 'vitest';
import { newMessageId } from '../../runtime/kernel/message.ts';

it('makes 128-bit base64url message ids, distinct, none beginning with "-"', () => {
  const ids = Array.from({ length: 20_000 }, () => newMessageId());
  expect(new Set(ids).size).toBe(ids.length);
  for (const id of ids) expect(id).toMatch(/^[A-Za-z0-9_][A-Za-z0-9_-]{21}$/);
  // One in 64 would begin with '-' if nothing prevented it: 20,000 ids show the guard works.
  expect(ids.filter((id) => id.startsWith('_')).length).toBeGreaterThan(0);
});
