// Runs the shared vault suite against the LMDB backend on a real LMDB environment in a temp dir.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Key, open, type RootDatabase } from 'lmdb';
import { expect, it } from 'vitest';
import { VaultBackendError } from '../../runtime/vault/errors.ts';
import { LmdbVault } from '../../runtime/vault/lmdb.ts';
import { vaultSuite } from './vault.case.ts';

vaultSuite('lmdb', async (clock) => {
  const dir = await mkdtemp(join(tmpdir(), 'anx-vault-lmdb-'));
  const roots: RootDatabase[] = [];
  const openVault = () => {
    const root = open({ path: dir, maxDbs: 8, compression: false });
    roots.push(root);
    return LmdbVault.fromRoot(root, 'vault', { now: () => clock.t });
  };
  const vault = openVault();
  return {
    vault,
    reopen: async () => {
      await roots[0]?.close();
      return openVault();
    },
    cleanup: async () => {
      for (const r of roots) await r.close().catch(() => {});
      await rm(dir, { recursive: true, force: true });
    },
  };
});

it('writes a version whole or not at all: a write that fails takes back the others of that put', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'anx-vault-lmdb-'));
  const root = open({ path: dir, maxDbs: 8, compression: false });
  try {
    const db = root.openDB<unknown, Key>({ name: 'vault', encoding: 'msgpack' });
    const vault = new LmdbVault(db);
    // The content write fails after the metadata write of the same version.
    const put = db.put.bind(db);
    db.put = ((key: Key, value: unknown) => {
      if (Array.isArray(key) && key[0] === 'blob') throw new Error('disk trouble');
      return put(key, value);
    }) as typeof db.put;
    const artifact = { kind: 'text', content: 'draft', author: 'did:agentnexus:z6Mkx', summary: 's' };
    await expect(vault.put('e1', 'notes/a', artifact)).rejects.toBeInstanceOf(VaultBackendError);
    expect([...db.getKeys({})]).toEqual([]);
    db.put = put;
    const ref = await vault.put('e1', 'notes/a', artifact);
    expect(new TextDecoder().decode((await vault.get('e1', 'notes/a')).content)).toBe('draft');
    expect((await vault.history('e1', 'notes/a')).map((v) => v.version)).toEqual([ref.version]);
  } finally {
    await root.close();
    await rm(dir, { recursive: true, force: true });
  }
});
