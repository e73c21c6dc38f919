// The MCP name binding's lock: binding runs one at a time per name, and a lock left by a dead process is taken over.
import { mkdirSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { bindingFile, readBinding, withBindingLock, writeBinding } from '../../bridge/mcp/binding.ts';
import { cleanupTempDirs, tempDir } from '../helpers/tmp.ts';

afterAll(() => cleanupTempDirs());

it('runs binders of one name one at a time, so the second finds the first one’s binding', async () => {
  const dir = tempDir();
  let inside = 0;
  let most = 0;
  let created = 0;
  const bind = (did: string) =>
    withBindingLock(dir, 'Twin', async () => {
      inside++;
      most = Math.max(most, inside);
      const existing = readBinding(dir, 'Twin');
      await new Promise((r) => setTimeout(r, 50));
      if (existing === undefined) {
        created++;
        writeBinding(dir, { name: 'Twin', did, createdAt: Date.now() });
      }
      inside--;
      return readBinding(dir, 'Twin')?.did;
    });
  const dids = await Promise.all([
    bind('did:agentnexus:z6MkA'),
    bind('did:agentnexus:z6MkB'),
    bind('did:agentnexus:z6MkC'),
  ]);
  expect(most).toBe(1);
  expect(created).toBe(1);
  expect(new Set(dids).size).toBe(1);
});

it('takes over a lock left by a process that died, and gives up on a live one after its wait', async () => {
  const dir = tempDir();
  const lock = `${bindingFile(dir, 'Stale')}.lock`;
  mkdirSync(join(dir, 'mcp'), { recursive: true });
  writeFileSync(lock, '');
  const old = (Date.now() - 60_000) / 1000;
  utimesSync(lock, old, old);
  expect(await withBindingLock(dir, 'Stale', async () => 'bound')).toBe('bound');

  writeFileSync(lock, '');
  await expect(withBindingLock(dir, 'Stale', async () => 'never', 300)).rejects.toMatchObject({
    code: 'ANX_MCP_BINDING',
  });
});
