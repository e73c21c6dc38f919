// Runs the shared vault suite against the LMDB backend on a real LMDB environment in a temp dir.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { open, type RootDatabase } from 'lmdb';
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
