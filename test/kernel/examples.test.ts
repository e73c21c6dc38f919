// Runs the actor-system usage example, so the documented usage keeps working.
import { afterEach, expect, it } from 'vitest';
import { countOnce } from '../../runtime/kernel/actor-system.examples.ts';
import { cleanupTempDirs, tempDir } from '../helpers/tmp.ts';

afterEach(() => cleanupTempDirs());

it('continues a durable counter across two openings of the same store', async () => {
  const dir = tempDir();
  expect(await countOnce(dir)).toEqual({ count: 2, events: 1 });
  expect(await countOnce(dir)).toEqual({ count: 4, events: 2 });
});
