// The one test suite every VaultBackend runs: versions, refs, history, listing, key rules, concurrency, reopening.
import { createHash } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isAnxError } from '../../runtime/errors.ts';
import type { ArtifactInput, VaultBackend } from '../../runtime/vault/types.ts';

/** What a backend's test file provides: a fresh vault, the same storage reopened, and cleanup. */
export interface VaultHarness {
  vault: VaultBackend;
  /** A second backend instance over the same storage, as after a restart. */
  reopen(): Promise<VaultBackend>;
  cleanup(): Promise<void>;
}

const DID_A = 'did:agentnexus:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK';
const DID_B = 'did:agentnexus:z6MkfrQREWfvQmcxCsgqbXGsEfFGzWKkhLSrGBZxVUSW4HQd';

const sha = (b: Uint8Array | string) => createHash('sha256').update(b).digest('hex');
const text = (s: string, over: Partial<ArtifactInput> = {}): ArtifactInput => ({
  kind: 'markdown',
  content: s,
  author: DID_A,
  summary: `summary of ${s.slice(0, 20)}`,
  ...over,
});

async function expectCode(p: Promise<unknown>, code: string): Promise<void> {
  let caught: unknown;
  try {
    await p;
  } catch (err) {
    caught = err;
  }
  expect(caught, `expected an error with code ${code}`).toBeDefined();
  expect(isAnxError(caught, code), `got ${String(caught)}`).toBe(true);
}

/**
 * Registers the shared vault suite under `name`. `make(clock)` builds a backend whose `now` reads `clock.t`.
 */
export function vaultSuite(name: string, make: (clock: { t: number }) => Promise<VaultHarness>): void {
  describe(`vault backend: ${name}`, () => {
    let h: VaultHarness;
    const clock = { t: 1_700_000_000_000 };

    beforeEach(async () => {
      clock.t = 1_700_000_000_000;
      h = await make(clock);
    });
    afterEach(async () => {
      await h.cleanup();
    });

    it('numbers versions from 1 and returns refs with the sha256 and size of the content', async () => {
      const r1 = await h.vault.put('enc1', 'design/spec.md', text('# Spec v1'));
      const r2 = await h.vault.put('enc1', 'design/spec.md', text('# Spec v2, longer'));
      expect(r1).toEqual({
        enclave_id: 'enc1',
        key: 'design/spec.md',
        version: 1,
        hash: sha('# Spec v1'),
        size: 9,
        summary: 'summary of # Spec v1',
      });
      expect(r2.version).toBe(2);
      expect(r2.hash).toBe(sha('# Spec v2, longer'));
    });

    it('returns the latest version by default and any earlier one on request', async () => {
      await h.vault.put('enc1', 'a.md', text('one'));
      clock.t += 1000;
      await h.vault.put('enc1', 'a.md', text('two', { author: DID_B, kind: 'text' }));
      const latest = await h.vault.get('enc1', 'a.md');
      expect(new TextDecoder().decode(latest.content)).toBe('two');
      expect(latest.meta).toMatchObject({
        version: 2,
        author: DID_B,
        kind: 'text',
        ts: 1_700_000_001_000,
        size: 3,
      });
      const first = await h.vault.get('enc1', 'a.md', 1);
      expect(new TextDecoder().decode(first.content)).toBe('one');
      expect(first.meta).toMatchObject({ version: 1, author: DID_A, ts: 1_700_000_000_000 });
    });

    it('keeps binary content byte for byte, including empty content', async () => {
      const bytes = Uint8Array.from({ length: 512 }, (_, i) => (i * 7) % 256);
      const ref = await h.vault.put('enc1', 'bin/blob.dat', text('', { content: bytes, kind: 'binary' }));
      expect(ref.hash).toBe(sha(bytes));
      expect(Array.from((await h.vault.get('enc1', 'bin/blob.dat')).content)).toEqual(Array.from(bytes));
      const empty = await h.vault.put('enc1', 'empty', text('', { content: new Uint8Array(0) }));
      expect(empty.size).toBe(0);
      expect((await h.vault.get('enc1', 'empty')).content.length).toBe(0);
      // Larger than a page, after a small version of the same key: each version keeps its own bytes.
      const big = Uint8Array.from({ length: 20_000 }, (_, i) => (i * 31) % 251);
      const bigRef = await h.vault.put('enc1', 'bin/blob.dat', text('', { content: big, kind: 'binary' }));
      expect(bigRef.version).toBe(2);
      expect(Array.from((await h.vault.resolve(bigRef)).content)).toEqual(Array.from(big));
      expect(Array.from((await h.vault.get('enc1', 'bin/blob.dat', 1)).content)).toEqual(Array.from(bytes));
    });

    it('stores identical content twice as two versions', async () => {
      await h.vault.put('enc1', 'same.txt', text('x'));
      await h.vault.put('enc1', 'same.txt', text('x'));
      const hist = await h.vault.history('enc1', 'same.txt');
      expect(hist.map((v) => v.version)).toEqual([1, 2]);
      expect(hist[0]?.hash).toBe(hist[1]?.hash);
    });

    it('answers a missing key or version with VaultNotFoundError', async () => {
      await expectCode(h.vault.get('enc1', 'nope.md'), 'ANX_VAULT_NOT_FOUND');
      await h.vault.put('enc1', 'a.md', text('one'));
      await expectCode(h.vault.get('enc1', 'a.md', 2), 'ANX_VAULT_NOT_FOUND');
      await expectCode(h.vault.get('other', 'a.md'), 'ANX_VAULT_NOT_FOUND');
    });

    it('resolves a ref to its version and refuses a ref whose hash or size differs', async () => {
      const r1 = await h.vault.put('enc1', 'impl/diff.patch', text('--- a\n+++ b\n'));
      await h.vault.put('enc1', 'impl/diff.patch', text('--- a\n+++ c\n'));
      const got = await h.vault.resolve(r1);
      expect(new TextDecoder().decode(got.content)).toBe('--- a\n+++ b\n');
      await expectCode(h.vault.resolve({ ...r1, hash: sha('forged') }), 'ANX_VAULT_REF_MISMATCH');
      await expectCode(h.vault.resolve({ ...r1, size: r1.size + 1 }), 'ANX_VAULT_REF_MISMATCH');
      await expectCode(h.vault.resolve({ ...r1, version: 9 }), 'ANX_VAULT_NOT_FOUND');
      await expectCode(h.vault.resolve({ ...r1, hash: 'xyz' }), 'ANX_VAULT_INPUT');
    });

    it('lists history oldest first with full metadata', async () => {
      for (let i = 1; i <= 3; i++) {
        clock.t += 10;
        await h.vault.put('enc1', 'test/report.md', text(`run ${i}`, { summary: `report ${i}` }));
      }
      const hist = await h.vault.history('enc1', 'test/report.md');
      expect(hist.map((v) => [v.version, v.summary, v.ts])).toEqual([
        [1, 'report 1', 1_700_000_000_010],
        [2, 'report 2', 1_700_000_000_020],
        [3, 'report 3', 1_700_000_000_030],
      ]);
      expect(hist[2]).toEqual({
        enclave_id: 'enc1',
        key: 'test/report.md',
        version: 3,
        kind: 'markdown',
        hash: sha('run 3'),
        size: 5,
        author: DID_A,
        summary: 'report 3',
        ts: 1_700_000_000_030,
      });
      expect(await h.vault.history('enc1', 'never/written')).toEqual([]);
    });

    it('lists the latest version of each key, sorted, filtered by prefix, per enclave', async () => {
      await h.vault.put('enc1', 'review/report.md', text('r'));
      await h.vault.put('enc1', 'design/spec.md', text('s1'));
      await h.vault.put('enc1', 'design/spec.md', text('s2'));
      await h.vault.put('enc1', 'design/notes/n.md', text('n'));
      await h.vault.put('enc2', 'design/other.md', text('o'));
      const all = await h.vault.list('enc1');
      expect(all.map((m) => [m.key, m.version])).toEqual([
        ['design/notes/n.md', 1],
        ['design/spec.md', 2],
        ['review/report.md', 1],
      ]);
      expect((await h.vault.list('enc1', 'design/')).map((m) => m.key)).toEqual([
        'design/notes/n.md',
        'design/spec.md',
      ]);
      expect((await h.vault.list('enc1', 'rev')).map((m) => m.key)).toEqual(['review/report.md']);
      expect((await h.vault.list('enc2')).map((m) => m.key)).toEqual(['design/other.md']);
      expect(await h.vault.list('enc3')).toEqual([]);
    });

    it('lets a key and a key below it coexist', async () => {
      await h.vault.put('enc1', 'a', text('file a'));
      await h.vault.put('enc1', 'a/b', text('file a/b'));
      await h.vault.put('enc1', 'a/1.json', text('file a/1.json'));
      expect(new TextDecoder().decode((await h.vault.get('enc1', 'a')).content)).toBe('file a');
      expect(new TextDecoder().decode((await h.vault.get('enc1', 'a/b')).content)).toBe('file a/b');
      expect((await h.vault.history('enc1', 'a')).length).toBe(1);
      expect((await h.vault.list('enc1')).map((m) => m.key)).toEqual(['a', 'a/1.json', 'a/b']);
    });

    it('refuses keys that escape or hide, and malformed input, with VaultInputError', async () => {
      const bad = [
        '',
        '/etc/passwd',
        '../x',
        'a/../b',
        'a//b',
        '.git/config',
        'a/.hidden',
        'a\\b',
        'a b',
        'a/',
        'x@1',
        'é',
      ];
      for (const key of bad) await expectCode(h.vault.put('enc1', key, text('x')), 'ANX_VAULT_INPUT');
      await expectCode(h.vault.get('enc1', '../x'), 'ANX_VAULT_INPUT');
      await expectCode(h.vault.put('../enc', 'a', text('x')), 'ANX_VAULT_INPUT');
      await expectCode(h.vault.put('enc1', 'a', text('x', { author: '' })), 'ANX_VAULT_INPUT');
      await expectCode(h.vault.put('enc1', 'a', text('x', { author: 'x <evil@x>' })), 'ANX_VAULT_INPUT');
      await expectCode(h.vault.put('enc1', 'a', text('x', { kind: 'bad kind' })), 'ANX_VAULT_INPUT');
      await expectCode(
        h.vault.put('enc1', 'a', { ...text('x'), content: 42 as unknown as string }),
        'ANX_VAULT_INPUT',
      );
      await expectCode(h.vault.get('enc1', 'a', 0), 'ANX_VAULT_INPUT');
      await expectCode(h.vault.list('enc1', '../'), 'ANX_VAULT_INPUT');
      expect(await h.vault.list('enc1')).toEqual([]);
    });

    it('gives concurrent puts of one key distinct consecutive versions', async () => {
      const refs = await Promise.all(
        Array.from({ length: 8 }, (_, i) => h.vault.put('enc1', 'race.md', text(`writer ${i}`))),
      );
      expect(refs.map((r) => r.version).sort((a, b) => a - b)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
      const hist = await h.vault.history('enc1', 'race.md');
      expect(hist.map((v) => v.version)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
      for (const r of refs) expect((await h.vault.resolve(r)).meta.hash).toBe(r.hash);
    });

    it('finds everything again after a restart', async () => {
      const ref = await h.vault.put('enc1', 'requirements/req.md', text('must log in'));
      await h.vault.put('enc1', 'requirements/req.md', text('must log in and out'));
      const again = await h.reopen();
      expect(new TextDecoder().decode((await again.resolve(ref)).content)).toBe('must log in');
      expect((await again.history('enc1', 'requirements/req.md')).length).toBe(2);
      const r3 = await again.put('enc1', 'requirements/req.md', text('v3'));
      expect(r3.version).toBe(3);
    });
  });
}
