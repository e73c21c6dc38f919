// The host keystore over a real LMDB: seeds sealed at rest, host key file safety, nothing secret in output.
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { type Database, open, type RootDatabase } from 'lmdb';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ed25519SeedToX25519Private, nobleSuite, nodeSuite } from '../../runtime/crypto/index.ts';
import { isAnxError } from '../../runtime/errors.ts';
import { parseDid, toDidKey } from '../../runtime/identity/did.ts';
import { keyAgreementKeyOfDid } from '../../runtime/identity/did-document.ts';
import { identityFromSeed } from '../../runtime/identity/keys.ts';
import {
  HostKeyError,
  KeyExistsError,
  KeyNotFoundError,
  Keystore,
  KeystoreError,
  KeystoreLockedError,
} from '../../runtime/identity/keystore.ts';

const toHex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex');
const utf8 = (text: string): Uint8Array => new TextEncoder().encode(text);

/** Every spelling of the seed that could leak into text or stored bytes. */
function secretSpellings(seed: Uint8Array): string[] {
  const buf = Buffer.from(seed);
  return [
    buf.toString('hex'),
    buf.toString('base64'),
    buf.toString('base64url'),
    Array.from(seed.subarray(0, 6)).join(','),
    Array.from(seed.subarray(0, 6)).join(', '),
  ];
}

/** The error `fn` throws (the test fails if it throws nothing). */
function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  throw new Error('expected a throw, got none');
}

let dir: string;
let root: RootDatabase;
let db: Database;
let hostKey: Uint8Array;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'anx-'));
  root = open({ path: join(dir, 'data') });
  db = root.openDB({ name: 'keystore' });
  hostKey = Keystore.loadOrCreateHostKey(join(dir, 'host.key'));
});

afterEach(async () => {
  await root.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('Keystore', () => {
  it('creates keys and lists, gets and checks their public records', async () => {
    let clock = 1_700_000_000_000;
    const keys = new Keystore(db, hostKey, { now: () => clock++ });
    const alice = await keys.create({ name: 'alice' });
    const anon = await keys.create();
    expect(alice).toEqual({ did: alice.did, name: 'alice', createdAt: 1_700_000_000_000 });
    expect(anon.name).toBeNull();
    expect(parseDid(alice.did).method).toBe('agentnexus');
    expect(keys.has(alice.did)).toBe(true);
    expect(keys.get(alice.did)).toEqual(alice);
    expect(keys.list().sort((a, b) => a.createdAt - b.createdAt)).toEqual([alice, anon]);
    const stranger = identityFromSeed(new Uint8Array(32).fill(1)).did;
    expect(keys.has(stranger)).toBe(false);
    expect(keys.get(stranger)).toBeUndefined();
  });

  it('signs with the stored key so the DID verifies it, in both suites', async () => {
    const keys = new Keystore(db, hostKey);
    const { did } = await keys.create();
    const msg = utf8('envelope signing input');
    const sig = keys.sign(did, msg);
    const publicKey = parseDid(did).publicKey;
    expect(nodeSuite.verify(publicKey, msg, sig)).toBe(true);
    expect(nobleSuite.verify(publicKey, msg, sig)).toBe(true);
    // Second call comes from the in-memory cache and must give the same deterministic signature.
    expect(toHex(keys.sign(did, msg))).toBe(toHex(sig));
  });

  it('imports a seed and uses it for signing and key agreement', async () => {
    const seed = new Uint8Array(32).fill(42);
    const identity = identityFromSeed(seed);
    const keys = new Keystore(db, hostKey, { suite: nobleSuite });
    const record = await keys.import(seed, 'imported');
    expect(record.did).toBe(identity.did);
    expect(toHex(keys.sign(record.did, utf8('m')))).toBe(toHex(nodeSuite.sign(seed, utf8('m'))));
    expect(toHex(keys.x25519Private(record.did))).toBe(toHex(ed25519SeedToX25519Private(seed)));
    const peerSeed = new Uint8Array(32).fill(43);
    const peer = identityFromSeed(peerSeed);
    const mine = keys.x25519(record.did, keyAgreementKeyOfDid(peer.did));
    const theirs = nodeSuite.x25519(ed25519SeedToX25519Private(peerSeed), keyAgreementKeyOfDid(record.did));
    expect(toHex(mine)).toBe(toHex(theirs));
  });

  it('refuses to import a DID it already holds, and bad input', async () => {
    const keys = new Keystore(db, hostKey);
    const seed = new Uint8Array(32).fill(44);
    await keys.import(seed);
    await expect(keys.import(seed)).rejects.toBeInstanceOf(KeyExistsError);
    await expect(keys.import(new Uint8Array(31))).rejects.toBeInstanceOf(KeystoreError);
    await expect(keys.create({ name: '' })).rejects.toThrow(/"name" expected/);
    await expect(keys.create({ name: 7 as unknown as string })).rejects.toBeInstanceOf(KeystoreError);
  });

  it('keeps seeds encrypted at rest: the raw LMDB value holds no form of the seed', async () => {
    const seed = new Uint8Array(32).fill(0).map((_, i) => (i * 37 + 11) & 0xff);
    const keys = new Keystore(db, hostKey);
    const { did } = await keys.import(seed, 'secretive');
    const raw = db.getBinary(did);
    expect(raw).toBeDefined();
    const rawBuf = Buffer.from(raw as Uint8Array);
    expect(rawBuf.indexOf(Buffer.from(seed))).toBe(-1);
    const rawText = rawBuf.toString('latin1');
    for (const spelling of secretSpellings(seed)) expect(rawText).not.toContain(spelling);
    // Nor any file of the environment.
    await root.flushed;
    for (const name of readdirSync(join(dir, 'data'))) {
      const fileText = readFileSync(join(dir, 'data', name)).toString('latin1');
      expect(fileText.includes(Buffer.from(seed).toString('latin1'))).toBe(false);
      for (const spelling of secretSpellings(seed).slice(0, 3)) expect(fileText).not.toContain(spelling);
    }
  });

  it('binds each sealed seed to its DID: a value moved under another DID does not open', async () => {
    const keys = new Keystore(db, hostKey);
    const a = await keys.create();
    const b = await keys.create();
    await db.put(b.did, db.get(a.did));
    const fresh = new Keystore(db, hostKey);
    expect(() => fresh.sign(b.did, utf8('x'))).toThrow(KeystoreLockedError);
    expect(toHex(fresh.sign(a.did, utf8('x')))).toBe(toHex(keys.sign(a.did, utf8('x'))));
  });

  it('fails with a typed error under the wrong host key', async () => {
    const keys = new Keystore(db, hostKey);
    const { did } = await keys.create();
    const wrong = new Keystore(db, new Uint8Array(32).fill(0xaa));
    const caught = thrown(() => wrong.sign(did, utf8('x')));
    expect(caught).toBeInstanceOf(KeystoreLockedError);
    expect(isAnxError(caught, 'ANX_KEYSTORE_LOCKED')).toBe(true);
    expect(() => wrong.x25519Private(did)).toThrow(KeystoreLockedError);
    // Public records stay readable without the host key's help.
    expect(wrong.get(did)?.did).toBe(did);
  });

  it('reports a corrupt entry with a typed error', async () => {
    const keys = new Keystore(db, hostKey);
    const { did } = await keys.create();
    await db.put(did, { v: 1, name: null });
    expect(() => keys.get(did)).toThrow(KeystoreError);
    const err = thrown(() => new Keystore(db, hostKey).sign(did, utf8('x')));
    expect(isAnxError(err, 'ANX_KEYSTORE_CORRUPT')).toBe(true);
  });

  it('accepts the did:key form of a held DID everywhere', async () => {
    const keys = new Keystore(db, hostKey);
    const record = await keys.create({ name: 'both' });
    const didKey = toDidKey(record.did);
    expect(keys.has(didKey)).toBe(true);
    expect(keys.get(didKey)).toEqual(record);
    expect(toHex(keys.sign(didKey, utf8('m')))).toBe(toHex(keys.sign(record.did, utf8('m'))));
    expect(await keys.delete(didKey)).toBe(true);
    expect(() => keys.sign(record.did, utf8('m'))).toThrow(KeyNotFoundError);
    expect(keys.has(record.did)).toBe(false);
  });

  it('throws KeyNotFoundError for a DID it does not hold', () => {
    const keys = new Keystore(db, hostKey);
    const did = identityFromSeed(new Uint8Array(32).fill(5)).did;
    expect(() => keys.sign(did, utf8('x'))).toThrow(KeyNotFoundError);
    expect(() => keys.x25519Private(did)).toThrow(KeyNotFoundError);
    expect(() => keys.sign(42 as unknown as string, utf8('x'))).toThrow(KeyNotFoundError);
    expect(keys.has(42 as unknown as string)).toBe(false);
    expect(keys.get('bob')).toBeUndefined();
  });

  it('deletes keys, including their cached seeds', async () => {
    const keys = new Keystore(db, hostKey);
    const { did } = await keys.create();
    keys.sign(did, utf8('warm the cache'));
    expect(keys.has(did)).toBe(true);
    expect(await keys.delete(did)).toBe(true);
    expect(keys.has(did)).toBe(false);
    expect(() => keys.sign(did, utf8('x'))).toThrow(KeyNotFoundError);
    expect(await keys.delete(did)).toBe(false);
    expect(keys.list()).toEqual([]);
  });

  it('survives reopening the environment with the same host key file', async () => {
    const keys = new Keystore(db, hostKey);
    const { did } = await keys.create({ name: 'persistent' });
    const sig = keys.sign(did, utf8('before'));
    await root.close();
    root = open({ path: join(dir, 'data') });
    db = root.openDB({ name: 'keystore' });
    const again = new Keystore(db, Keystore.loadOrCreateHostKey(join(dir, 'host.key')));
    expect(again.get(did)?.name).toBe('persistent');
    expect(toHex(again.sign(did, utf8('before')))).toBe(toHex(sig));
  });

  it('evicts from a small seed cache without losing keys', async () => {
    const keys = new Keystore(db, hostKey, { cacheSize: 2 });
    const dids = [];
    for (let i = 0; i < 5; i++) dids.push((await keys.create()).did);
    for (let round = 0; round < 2; round++) {
      for (const did of dids) {
        expect(nodeSuite.verify(parseDid(did).publicKey, utf8('m'), keys.sign(did, utf8('m')))).toBe(true);
      }
    }
  });

  it('shows nothing secret in records, JSON, util.inspect or errors', async () => {
    const seed = new Uint8Array(32).map((_, i) => 200 - i);
    const keys = new Keystore(db, hostKey);
    const record = await keys.import(seed, 'quiet');
    keys.sign(record.did, utf8('warm'));
    expect(Object.keys(record).sort()).toEqual(['createdAt', 'did', 'name']);
    const texts = [
      JSON.stringify(record),
      JSON.stringify(keys.list()),
      JSON.stringify(keys),
      inspect(record, { depth: 10, showHidden: true }),
      inspect(keys, { depth: 10, showHidden: true }),
      inspect(keys.list(), { depth: 10 }),
    ];
    for (const err of [
      thrown(() => new Keystore(db, new Uint8Array(32)).sign(record.did, utf8('x'))),
      thrown(() => keys.sign(identityFromSeed(new Uint8Array(32).fill(8)).did, utf8('x'))),
    ]) {
      texts.push(String(err), JSON.stringify(err), inspect(err, { depth: 10 }));
    }
    for (const text of texts) {
      for (const spelling of [...secretSpellings(seed), ...secretSpellings(hostKey)]) {
        expect(text).not.toContain(spelling);
      }
    }
  });
});

describe('host key file', () => {
  it('is created with mode 0600 and read back unchanged', () => {
    const file = join(dir, 'nested', 'dir', 'host.key');
    const key = Keystore.loadOrCreateHostKey(file);
    expect(key.length).toBe(32);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(toHex(Keystore.loadOrCreateHostKey(file))).toBe(toHex(key));
    expect(toHex(readFileSync(file))).toBe(toHex(key));
  });

  it('is refused when group or others may read it, with a chmod 600 hint', () => {
    const file = join(dir, 'host.key');
    for (const mode of [0o644, 0o640, 0o604, 0o660]) {
      chmodSync(file, mode);
      const caught = thrown(() => Keystore.loadOrCreateHostKey(file));
      expect(caught).toBeInstanceOf(HostKeyError);
      expect((caught as HostKeyError).code).toBe('ANX_HOST_KEY_INSECURE');
      expect((caught as HostKeyError).hint).toBe(`chmod 600 ${file}`);
      expect((caught as HostKeyError).message).toContain('0600');
    }
    chmodSync(file, 0o600);
    expect(Keystore.loadOrCreateHostKey(file).length).toBe(32);
  });

  it('is refused when it does not hold exactly 32 bytes', () => {
    const file = join(dir, 'short.key');
    writeFileSync(file, new Uint8Array(16), { mode: 0o600 });
    expect(() => Keystore.loadOrCreateHostKey(file)).toThrow(HostKeyError);
    expect(() => Keystore.loadOrCreateHostKey(dir)).toThrow(/regular file/);
  });

  it('must be 32 bytes when handed to the constructor', () => {
    expect(() => new Keystore(db, new Uint8Array(16))).toThrow(HostKeyError);
  });
});
