// The session handshake: ephemeral X25519 keys signed by both DIDs' Ed25519 keys, HKDF-SHA256 into one key per direction.
import type { CryptoSuite } from '../crypto/suite.ts';
import { publicKeyOfDid } from '../identity/did.ts';
import { SessionHandshakeError } from './errors.ts';
import { type AcceptFrame, encodeAccept, encodeHello, type HelloFrame, SID_BYTES } from './frame.ts';

const ascii = (s: string) => new TextEncoder().encode(s);

/** Domain separation of the initiator's signature: ASCII `anx-session-hs1`, 0x00, version 1. */
export const HELLO_PREFIX: Readonly<Uint8Array> = ascii('anx-session-hs1\0\x01');
/** Domain separation of the responder's signature: ASCII `anx-session-hs2`, 0x00, version 1. */
export const ACCEPT_PREFIX: Readonly<Uint8Array> = ascii('anx-session-hs2\0\x01');
/** HKDF info of the two direction keys: ASCII `anx-session-keys`, 0x00, version 1. */
export const KEYS_INFO: Readonly<Uint8Array> = ascii('anx-session-keys\0\x01');

/** Signs with a DID's key without the key leaving its keystore. */
export type Signer = (message: Uint8Array) => Uint8Array;

/** Keys and facts of an established session, as one side holds them. */
export interface SessionKeys {
  sid: Uint8Array;
  role: 'initiator' | 'responder';
  /** The initiator's and responder's DIDs. */
  initiator: string;
  responder: string;
  /** Key of frames this side sends, and of frames it receives. */
  sendKey: Uint8Array;
  receiveKey: Uint8Array;
  /** SHA-256 of the whole transcript (both signed messages and both signatures). */
  transcriptHash: Uint8Array;
}

/** What the initiator keeps between its hello and the accept. */
export interface PendingHello {
  hello: HelloFrame;
  frame: Uint8Array;
  ephemeralPrivate: Uint8Array;
}

function str(s: string): Uint8Array {
  const b = ascii(s);
  const out = new Uint8Array(4 + b.length);
  new DataView(out.buffer).setUint32(0, b.length);
  out.set(b, 4);
  return out;
}

function concat(parts: Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

function u64(n: number): Uint8Array {
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigUint64(0, BigInt(n));
  return out;
}

/** T1 = HELLO_PREFIX || sid || str(initiator) || str(responder) || u64be(ts) || epk_i — what the initiator signs. */
export function helloTranscript(h: Pick<HelloFrame, 'sid' | 'from' | 'to' | 'ts' | 'epk'>): Uint8Array {
  return concat([HELLO_PREFIX as Uint8Array, h.sid, str(h.from), str(h.to), u64(h.ts), h.epk]);
}

/** T2 = ACCEPT_PREFIX || SHA-256(T1) || sig_i || epk_r — what the responder signs. */
export function acceptTranscript(suite: CryptoSuite, hello: HelloFrame, epkR: Uint8Array): Uint8Array {
  return concat([ACCEPT_PREFIX as Uint8Array, suite.sha256(helloTranscript(hello)), hello.sig, epkR]);
}

/**
 * The two direction keys: HKDF-SHA256(IKM = X25519 shared secret, salt = SHA-256(T2 || sig_r),
 * info = KEYS_INFO, L = 64); the first 32 bytes key initiator → responder, the last 32 the other way.
 */
export function deriveSessionKeys(
  suite: CryptoSuite,
  shared: Uint8Array,
  transcriptHash: Uint8Array,
): { i2r: Uint8Array; r2i: Uint8Array } {
  const okm = suite.hkdfSha256(shared, transcriptHash, KEYS_INFO as Uint8Array, 64);
  return { i2r: okm.slice(0, 32), r2i: okm.slice(32, 64) };
}

/**
 * Starts a handshake from `from` to `to`: a fresh session id and ephemeral X25519 key, signed by
 * `from`'s Ed25519 key.
 *
 * @example
 * ```ts
 * const pending = startHandshake({ suite, from: alice, to: bob, sign: (m) => keystore.sign(alice, m), now: Date.now() });
 * transport.sendToDid(bob, pending.frame, reply);
 * ```
 */
export function startHandshake(o: {
  suite: CryptoSuite;
  from: string;
  to: string;
  sign: Signer;
  now: number;
  /** Vectors only. */
  sid?: Uint8Array;
  ephemeralPrivate?: Uint8Array;
}): PendingHello {
  const ephemeralPrivate = o.ephemeralPrivate ?? o.suite.randomBytes(32);
  const sid = o.sid ?? o.suite.randomBytes(SID_BYTES);
  const partial = { sid, from: o.from, to: o.to, ts: o.now, epk: o.suite.x25519PublicKey(ephemeralPrivate) };
  publicKeyOfDid(o.to, 'to');
  const hello: HelloFrame = { ...partial, sig: o.sign(helloTranscript(partial)) };
  return { hello, frame: encodeHello(hello), ephemeralPrivate };
}

/**
 * The responder's side: verifies the hello (signature by its `from` DID, time window), answers with
 * its own signed ephemeral key and derives the session keys. Throws `SessionHandshakeError`.
 */
export function answerHandshake(o: {
  suite: CryptoSuite;
  hello: HelloFrame;
  sign: Signer;
  now: number;
  windowMs: number;
  /** Vectors only. */
  ephemeralPrivate?: Uint8Array;
}): { frame: Uint8Array; accept: AcceptFrame; keys: SessionKeys } {
  const { suite, hello } = o;
  if (Math.abs(o.now - hello.ts) > o.windowMs) {
    throw new SessionHandshakeError(
      `hello "ts" expected within ${o.windowMs} ms of now, got ${o.now - hello.ts} ms off`,
      { hint: 'check the initiator clock' },
    );
  }
  let initiatorKey: Uint8Array;
  try {
    initiatorKey = publicKeyOfDid(hello.from, 'from');
    publicKeyOfDid(hello.to, 'to');
  } catch (cause) {
    throw new SessionHandshakeError('hello expected canonical DIDs in "from" and "to"', { cause });
  }
  if (!suite.verify(initiatorKey, helloTranscript(hello), hello.sig))
    throw new SessionHandshakeError(`hello signature does not verify against ${hello.from}`);
  const ephemeralPrivate = o.ephemeralPrivate ?? suite.randomBytes(32);
  const epk = suite.x25519PublicKey(ephemeralPrivate);
  const t2 = acceptTranscript(suite, hello, epk);
  const sig = o.sign(t2);
  let shared: Uint8Array;
  try {
    shared = suite.x25519(ephemeralPrivate, hello.epk);
  } catch (cause) {
    throw new SessionHandshakeError('hello ephemeral key is not a usable X25519 key', { cause });
  } finally {
    if (o.ephemeralPrivate === undefined) ephemeralPrivate.fill(0);
  }
  const transcriptHash = suite.sha256(concat([t2, sig]));
  const { i2r, r2i } = deriveSessionKeys(suite, shared, transcriptHash);
  shared.fill(0);
  const accept: AcceptFrame = { sid: hello.sid, epk, sig };
  return {
    frame: encodeAccept(accept),
    accept,
    keys: {
      sid: hello.sid,
      role: 'responder',
      initiator: hello.from,
      responder: hello.to,
      sendKey: r2i,
      receiveKey: i2r,
      transcriptHash,
    },
  };
}

/** The initiator's side: verifies the responder's signature over the transcript and derives the keys. */
export function completeHandshake(
  suite: CryptoSuite,
  pending: PendingHello,
  accept: AcceptFrame,
): SessionKeys {
  const { hello } = pending;
  if (!equal(accept.sid, hello.sid))
    throw new SessionHandshakeError('accept expected the session id of the hello');
  const t2 = acceptTranscript(suite, hello, accept.epk);
  if (!suite.verify(publicKeyOfDid(hello.to, 'to'), t2, accept.sig))
    throw new SessionHandshakeError(`accept signature does not verify against ${hello.to}`);
  let shared: Uint8Array;
  try {
    shared = suite.x25519(pending.ephemeralPrivate, accept.epk);
  } catch (cause) {
    throw new SessionHandshakeError('accept ephemeral key is not a usable X25519 key', { cause });
  }
  const transcriptHash = suite.sha256(concat([t2, accept.sig]));
  const { i2r, r2i } = deriveSessionKeys(suite, shared, transcriptHash);
  shared.fill(0);
  pending.ephemeralPrivate.fill(0);
  return {
    sid: hello.sid,
    role: 'initiator',
    initiator: hello.from,
    responder: hello.to,
    sendKey: i2r,
    receiveKey: r2i,
    transcriptHash,
  };
}

function equal(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let d = 0;
  for (let i = 0; i < a.length; i++) d |= (a[i] as number) ^ (b[i] as number);
  return d === 0;
}
