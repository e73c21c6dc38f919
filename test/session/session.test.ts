// Session mode: handshake vectors with both crypto suites, mutual authentication, replay, reorder, tamper and rekeying.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { nobleSuite } from '../../runtime/crypto/noble.ts';
import { nodeSuite } from '../../runtime/crypto/node.ts';
import type { CryptoSuite } from '../../runtime/crypto/suite.ts';
import { generateIdentity, type Identity, identityFromSeed } from '../../runtime/identity/keys.ts';
import {
  answerHandshake,
  completeHandshake,
  decodeAccept,
  decodeData,
  decodeHello,
  helloTranscript,
  Session,
  SessionDecryptError,
  SessionError,
  SessionFrameError,
  SessionHandshakeError,
  type SessionOptions,
  SessionReorderError,
  SessionReplayError,
  startHandshake,
} from '../../runtime/session/index.ts';
import vectors from '../vectors/session.json' with { type: 'json' };

const fromHex = (h: string) => new Uint8Array(Buffer.from(h, 'hex'));
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const T0 = vectors.ts;

function pair(
  suite: CryptoSuite,
  a: Identity,
  b: Identity,
  options: SessionOptions = {},
): { initiator: Session; responder: Session } {
  const pending = startHandshake({
    suite,
    from: a.did,
    to: b.did,
    sign: (m) => suite.sign(a.seed, m),
    now: T0,
  });
  const answered = answerHandshake({
    suite,
    hello: decodeHello(pending.frame),
    sign: (m) => suite.sign(b.seed, m),
    now: T0,
    windowMs: 300_000,
  });
  const keys = completeHandshake(suite, pending, decodeAccept(answered.frame));
  return {
    initiator: new Session(suite, keys, options),
    responder: new Session(suite, answered.keys, options),
  };
}

describe.each([
  ['node', nodeSuite],
  ['noble', nobleSuite],
] as const)('session vectors with the %s suite', (_name, suite) => {
  const alice = identityFromSeed(fromHex(vectors.identities.alice.seedHex), suite);
  const bob = identityFromSeed(fromHex(vectors.identities.bob.seedHex), suite);
  const h = vectors.handshake;

  it('reproduces the hello, accept, transcript hash and both direction keys byte for byte', () => {
    const pending = startHandshake({
      suite,
      from: alice.did,
      to: bob.did,
      sign: (m) => suite.sign(alice.seed, m),
      now: T0,
      sid: fromHex(h.sidHex),
      ephemeralPrivate: fromHex(h.initiatorEphemeralPrivateHex),
    });
    expect(hex(helloTranscript(pending.hello))).toBe(h.helloTranscriptHex);
    expect(hex(pending.frame)).toBe(h.helloFrameHex);
    const answered = answerHandshake({
      suite,
      hello: decodeHello(fromHex(h.helloFrameHex)),
      sign: (m) => suite.sign(bob.seed, m),
      now: T0,
      windowMs: 300_000,
      ephemeralPrivate: fromHex(h.responderEphemeralPrivateHex),
    });
    expect(hex(answered.frame)).toBe(h.acceptFrameHex);
    const keys = completeHandshake(suite, pending, decodeAccept(fromHex(h.acceptFrameHex)));
    expect(hex(keys.transcriptHash)).toBe(h.transcriptHashHex);
    expect(hex(keys.sendKey)).toBe(h.keyInitiatorToResponderHex);
    expect(hex(keys.receiveKey)).toBe(h.keyResponderToInitiatorHex);
    expect(hex(answered.keys.receiveKey)).toBe(h.keyInitiatorToResponderHex);
  });

  it('opens the vector data frames in both directions, across a rekey', () => {
    const answered = answerHandshake({
      suite,
      hello: decodeHello(fromHex(h.helloFrameHex)),
      sign: (m) => suite.sign(bob.seed, m),
      now: T0,
      windowMs: 300_000,
      ephemeralPrivate: fromHex(h.responderEphemeralPrivateHex),
    });
    const responder = new Session(suite, answered.keys);
    for (const v of vectors.data.initiatorToResponder) {
      expect(hex(responder.open(fromHex(v.frameHex)))).toBe(v.plaintextHex);
    }
    expect(responder.epoch.receive).toBe(1);
    const sealed = responder.seal(fromHex(vectors.data.responderToInitiator[0]!.plaintextHex));
    expect(hex(sealed)).toBe(vectors.data.responderToInitiator[0]!.frameHex);
  });
});

describe('session mode', () => {
  const suite = nodeSuite;
  const alice = generateIdentity(suite);
  const bob = generateIdentity(suite);
  const mallory = generateIdentity(suite);

  it('carries messages both ways once both sides are authenticated', () => {
    const { initiator, responder } = pair(suite, alice, bob);
    for (let i = 0; i < 10; i++) {
      expect(
        new TextDecoder().decode(responder.open(initiator.seal(new TextEncoder().encode(`m${i}`)))),
      ).toBe(`m${i}`);
    }
    expect(new TextDecoder().decode(initiator.open(responder.seal(new TextEncoder().encode('ack'))))).toBe(
      'ack',
    );
    expect(initiator.peer).toBe(bob.did);
    expect(responder.peer).toBe(alice.did);
  });

  it('refuses a hello signed by someone other than its "from", and an accept not signed by the responder', () => {
    const forged = startHandshake({
      suite,
      from: alice.did,
      to: bob.did,
      sign: (m) => suite.sign(mallory.seed, m),
      now: T0,
    });
    expect(() =>
      answerHandshake({
        suite,
        hello: decodeHello(forged.frame),
        sign: (m) => suite.sign(bob.seed, m),
        now: T0,
        windowMs: 1000,
      }),
    ).toThrow(SessionHandshakeError);
    const pending = startHandshake({
      suite,
      from: alice.did,
      to: bob.did,
      sign: (m) => suite.sign(alice.seed, m),
      now: T0,
    });
    const impostor = answerHandshake({
      suite,
      hello: decodeHello(pending.frame),
      sign: (m) => suite.sign(mallory.seed, m),
      now: T0,
      windowMs: 1000,
    });
    expect(() => completeHandshake(suite, pending, decodeAccept(impostor.frame))).toThrow(
      SessionHandshakeError,
    );
  });

  it('refuses a stale hello (outside the window) and a hello whose fields were changed', () => {
    const pending = startHandshake({
      suite,
      from: alice.did,
      to: bob.did,
      sign: (m) => suite.sign(alice.seed, m),
      now: T0,
    });
    const sign = (m: Uint8Array) => suite.sign(bob.seed, m);
    expect(() =>
      answerHandshake({
        suite,
        hello: decodeHello(pending.frame),
        sign,
        now: T0 + 600_000,
        windowMs: 300_000,
      }),
    ).toThrow(/within 300000 ms/);
    const tampered = pending.frame.slice();
    tampered[20] = (tampered[20] as number) ^ 1;
    expect(() =>
      answerHandshake({ suite, hello: decodeHello(tampered), sign, now: T0, windowMs: 300_000 }),
    ).toThrow(SessionHandshakeError);
  });

  it('refuses a replayed frame and a reordered frame with typed errors, and keeps going afterwards', () => {
    const { initiator, responder } = pair(suite, alice, bob);
    const f0 = initiator.seal(Uint8Array.of(0));
    const f1 = initiator.seal(Uint8Array.of(1));
    const f2 = initiator.seal(Uint8Array.of(2));
    responder.open(f0);
    expect(() => responder.open(f0)).toThrow(SessionReplayError);
    expect(() => responder.open(f2)).toThrow(SessionReorderError);
    expect(responder.open(f1)).toEqual(Uint8Array.of(1));
    expect(responder.open(f2)).toEqual(Uint8Array.of(2));
    expect(() => responder.open(f1)).toThrow(SessionReplayError);
  });

  it('accepts gaps but never a replay in monotonic order (acknowledgements)', () => {
    const { initiator, responder } = pair(suite, alice, bob, { receiveOrder: 'monotonic' });
    const frames = [0, 1, 2, 3].map((i) => initiator.seal(Uint8Array.of(i)));
    responder.open(frames[0]!);
    expect(responder.open(frames[2]!)).toEqual(Uint8Array.of(2));
    expect(() => responder.open(frames[1]!)).toThrow(SessionReplayError);
    expect(responder.open(frames[3]!)).toEqual(Uint8Array.of(3));
  });

  it('refuses any flipped bit in a data frame without moving the receive counter', () => {
    const { initiator, responder } = pair(suite, alice, bob);
    const frame = initiator.seal(new TextEncoder().encode('payload'));
    fc.assert(
      fc.property(fc.integer({ min: 0, max: frame.length * 8 - 1 }), (bit) => {
        const bad = frame.slice();
        bad[bit >> 3] = (bad[bit >> 3] as number) ^ (1 << (bit & 7));
        expect(() => responder.open(bad)).toThrow(SessionError);
      }),
    );
    expect(new TextDecoder().decode(responder.open(frame))).toBe('payload');
  });

  it('refuses a frame sealed under another session key', () => {
    const one = pair(suite, alice, bob);
    const two = pair(suite, alice, bob);
    const frame = two.initiator.seal(Uint8Array.of(1));
    expect(() => one.responder.open(frame)).toThrow(SessionFrameError);
    // Same session id forced onto the other session's frame: the key still differs.
    const forged = frame.slice();
    forged.set(one.initiator.sid, 1);
    expect(() => one.responder.open(forged)).toThrow(SessionDecryptError);
  });

  it('rekeys after N messages and after N bytes; the receiver follows', () => {
    const byCount = pair(suite, alice, bob, { rekeyMessages: 3 });
    for (let i = 0; i < 10; i++) byCount.responder.open(byCount.initiator.seal(Uint8Array.of(i)));
    expect(byCount.initiator.epoch.send).toBe(3);
    expect(byCount.responder.epoch.receive).toBe(3);
    const byBytes = pair(suite, alice, bob, { rekeyBytes: 1024 });
    for (let i = 0; i < 5; i++) byBytes.responder.open(byBytes.initiator.seal(new Uint8Array(600)));
    expect(byBytes.initiator.epoch.send).toBe(2);
    expect(byBytes.responder.epoch.receive).toBe(2);
  });

  it('answers truncated and garbage frames with SessionFrameError', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
        for (const decode of [decodeHello, decodeAccept, decodeData]) {
          try {
            decode(bytes);
          } catch (err) {
            expect(err).toBeInstanceOf(SessionFrameError);
          }
        }
      }),
    );
    expect(() => decodeData(new Uint8Array(10))).toThrow(SessionFrameError);
  });
});
