// Runs the shared vault suite against the LMDB backend on a real LMDB environment in a temp dir.
import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Database, type Key, open, type RootDatabase } from 'lmdb';
import { expect, it } from 'vitest';
import { VaultBackendError } from '../../runtime/vault/errors.ts';
import { INLINE_MAX, LmdbVault } from '../../runtime/vault/lmdb.ts';
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

/** Runs `fn` on the `vault` database of a fresh LMDB environment in a temp dir, then removes it. */
async function withVaultDb(fn: (db: Database<unknown, Key>) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'anx-vault-lmdb-'));
  const root = open({ path: dir, maxDbs: 8, compression: false });
  try {
    await fn(root.openDB<unknown, Key>({ name: 'vault', encoding: 'msgpack' }));
  } finally {
    await root.close();
    await rm(dir, { recursive: true, force: true });
  }
}

it('writes a version whole or not at all: a write that fails takes back the others of that put', () =>
  withVaultDb(async (db) => {
    const vault = new LmdbVault(db);
    // The content write fails after the metadata write of the same version.
    const put = db.put.bind(db);
    db.put = ((key: Key, value: unknown) => {
      if (Array.isArray(key) && key[0] === 'blob') throw new Error('disk trouble');
      return put(key, value);
    }) as typeof db.put;
    // Content too large to go inline: its version is two records.
    const draft = 'draft '.repeat(400);
    const artifact = { kind: 'text', content: draft, author: 'did:agentnexus:z6Mkx', summary: 's' };
    await expect(vault.put('e1', 'notes/a', artifact)).rejects.toBeInstanceOf(VaultBackendError);
    expect([...db.getKeys({})]).toEqual([]);
    db.put = put;
    const ref = await vault.put('e1', 'notes/a', artifact);
    expect(new TextDecoder().decode((await vault.get('e1', 'notes/a')).content)).toBe(draft);
    // The failed put's number is given back: no gap in the key's versions.
    expect(ref.version).toBe(1);
    expect((await vault.history('e1', 'notes/a')).map((v) => v.version)).toEqual([1]);
  }));

it('keeps small content in its version record and larger content beside it, with no pointer to write', () =>
  withVaultDb(async (db) => {
    const vault = new LmdbVault(db);
    const author = 'did:agentnexus:z6Mkx';
    const small = 'x'.repeat(INLINE_MAX);
    const large = 'y'.repeat(INLINE_MAX + 1);
    await vault.put('e1', 'a', { kind: 'text', content: small, author, summary: 'small' });
    await vault.put('e1', 'a', { kind: 'text', content: large, author, summary: 'large' });
    expect([...db.getKeys({})]).toEqual([
      ['blob', 'e1', 'a', 2],
      ['meta', 'e1', 'a', 1],
      ['meta', 'e1', 'a', 2],
    ]);
    const decode = (c: Uint8Array) => new TextDecoder().decode(c);
    expect(decode((await vault.get('e1', 'a', 1)).content)).toBe(small);
    expect(decode((await vault.get('e1', 'a')).content)).toBe(large);
    // The inline content stays inside the store: metadata is the same shape whichever way it was kept.
    const [v1, v2] = await vault.history('e1', 'a');
    expect(Object.keys(v1 as object).sort()).toEqual(Object.keys(v2 as object).sort());
    expect((await vault.get('e1', 'a', 1)).meta).toEqual(v1);
    expect(await vault.list('e1')).toEqual([v2]);
  }));

it('reads a store written in the earlier layout (every content beside its metadata, a latest pointer)', () =>
  withVaultDb(async (db) => {
    const author = 'did:agentnexus:z6Mkx';
    const old = (key: string, version: number, text: string) => {
      const content = Buffer.from(text);
      const meta = {
        enclave_id: 'e1',
        key,
        version,
        kind: 'text',
        hash: createHash('sha256').update(content).digest('hex'),
        size: content.length,
        author,
        summary: text,
        ts: 1_700_000_000_000 + version,
      };
      db.putSync(['meta', 'e1', key, version], meta);
      db.putSync(['blob', 'e1', key, version], content);
      db.putSync(['latest', 'e1', key], version);
      return meta;
    };
    old('spec.md', 1, 'one');
    const two = old('spec.md', 2, 'two');
    const notes = old('notes.md', 1, 'notes');
    const vault = new LmdbVault(db);
    const decode = (c: Uint8Array) => new TextDecoder().decode(c);
    expect(decode((await vault.get('e1', 'spec.md')).content)).toBe('two');
    expect(decode((await vault.get('e1', 'spec.md', 1)).content)).toBe('one');
    expect((await vault.history('e1', 'spec.md')).map((v) => v.version)).toEqual([1, 2]);
    expect(await vault.list('e1')).toEqual([notes, two]);
    // A new version goes on from the last one stored, in the new layout.
    const ref = await vault.put('e1', 'spec.md', { kind: 'text', content: 'three', author, summary: '3' });
    expect(ref.version).toBe(3);
    expect(decode((await vault.get('e1', 'spec.md')).content)).toBe('three');
    expect(db.get(['blob', 'e1', 'spec.md', 3])).toBeUndefined();
  }));

it('lists a key with many versions by its last one, seeking past the rest', () =>
  withVaultDb(async (db) => {
    const vault = new LmdbVault(db);
    const author = 'did:agentnexus:z6Mkx';
    for (let i = 1; i <= 300; i++)
      await vault.put('e1', 'b/log', { kind: 'text', content: `${i}`, author, summary: '' });
    await vault.put('e1', 'a', { kind: 'text', content: 'a', author, summary: '' });
    await vault.put('e1', 'b', { kind: 'text', content: 'b', author, summary: '' });
    await vault.put('e1', 'c', { kind: 'text', content: 'c', author, summary: '' });
    expect((await vault.list('e1')).map((m) => [m.key, m.version])).toEqual([
      ['a', 1],
      ['b', 1],
      ['b/log', 300],
      ['c', 1],
    ]);
    expect((await vault.list('e1', 'b/')).map((m) => [m.key, m.version])).toEqual([['b/log', 300]]);
  }));

it('keeps at most versionCacheKeys version numbers in memory, never forgetting one still on its way to disk', () =>
  withVaultDb(async (db) => {
    const author = 'did:agentnexus:z6Mkx';
    const vault = new LmdbVault(db, { versionCacheKeys: 4 });
    const input = (content: string) => ({ kind: 'text', content, author, summary: '' });
    // Staged for a commit that has not happened yet: its number must not be handed out again.
    const staged = vault.prepare('e1', 'pending', input('staged'));
    expect(staged.ref.version).toBe(1);
    for (let i = 0; i < 12; i++) await vault.put('e1', `k${i}`, input(`v${i}`));
    const held = (vault as unknown as { reserved: Map<string, number> }).reserved;
    expect(held.size).toBeLessThanOrEqual(5);
    expect(held.has('e1\u0000pending')).toBe(true);
    expect((await vault.put('e1', 'pending', input('direct'))).version).toBe(2);
    // A forgotten key is read again and goes on from its stored version.
    expect(held.has('e1\u0000k0')).toBe(false);
    expect((await vault.put('e1', 'k0', input('again'))).version).toBe(2);
    expect((await vault.history('e1', 'k0')).map((v) => v.version)).toEqual([1, 2]);
  }));

it("reads a key's last stored version once, then numbers its versions from what it reserved", () =>
  withVaultDb(async (db) => {
    const author = 'did:agentnexus:z6Mkx';
    const first = new LmdbVault(db);
    await first.put('e1', 'k', { kind: 'text', content: 'one', author, summary: '' });
    // A vault opened later (a restarted host) goes on from the stored versions, reading them once.
    const vault = new LmdbVault(db);
    let reads = 0;
    const getKeys = db.getKeys.bind(db);
    db.getKeys = ((...args: Parameters<typeof db.getKeys>) => {
      reads++;
      return getKeys(...args);
    }) as typeof db.getKeys;
    const write = (content: string) => vault.put('e1', 'k', { kind: 'text', content, author, summary: '' });
    expect((await write('two')).version).toBe(2);
    expect(reads).toBe(1);
    const staged = vault.prepare('e1', 'k', { kind: 'text', content: 'three', author, summary: '' });
    expect(staged.ref.version).toBe(3);
    expect((await write('four')).version).toBe(4);
    expect(reads).toBe(1);
  }));

it('gives a failed put its number back without handing out again a number still on its way to disk', () =>
  withVaultDb(async (db) => {
    const vault = new LmdbVault(db);
    const artifact = { kind: 'text', content: 'v', author: 'did:agentnexus:z6Mkx', summary: 's' };
    // Version 1 is staged for a caller's own transaction and not committed yet.
    const staged = vault.prepare('e1', 'k', artifact);
    expect(staged.ref.version).toBe(1);
    const put = db.put.bind(db);
    db.put = (() => {
      throw new Error('disk trouble');
    }) as typeof db.put;
    await expect(vault.put('e1', 'k', artifact)).rejects.toBeInstanceOf(VaultBackendError);
    db.put = put;
    // The failed put had 2: the next one takes 2, not 1 (the staged version's).
    expect((await vault.put('e1', 'k', artifact)).version).toBe(2);
    await db.transaction(() => {
      for (const [key, value] of staged.writes) db.put(key, value);
    });
    expect((await vault.history('e1', 'k')).map((v) => v.version)).toEqual([1, 2]);
  }));
