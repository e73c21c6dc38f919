// Writes test/vectors/session.json once; tests check it and never regenerate. Run: npx tsx test/session/generate-vectors.ts
import { writeFileSync } from 'node:fs';
import { nodeSuite } from '../../runtime/crypto/node.ts';
import { identityFromSeed } from '../../runtime/identity/keys.ts';
import {
  ACCEPT_PREFIX,
  acceptTranscript,
  answerHandshake,
  completeHandshake,
  HELLO_PREFIX,
  helloTranscript,
  KEYS_INFO,
  nextEpochKey,
  rekeyInfo,
  Session,
  startHandshake,
} from '../../runtime/session/index.ts';

const suite = nodeSuite;
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const fromHex = (h: string) => new Uint8Array(Buffer.from(h, 'hex'));
const T0 = 1767225600000;

const alice = identityFromSeed(
  fromHex('0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20'),
  suite,
);
const bob = identityFromSeed(
  fromHex('4142434445464748494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f60'),
  suite,
);
const sid = fromHex('a0a1a2a3a4a5a6a7a8a9aaabacadaeaf');
const aliceEphemeral = fromHex('1111111111111111111111111111111111111111111111111111111111111111');
const bobEphemeral = fromHex('2222222222222222222222222222222222222222222222222222222222222222');

const pending = startHandshake({
  suite,
  from: alice.did,
  to: bob.did,
  sign: (m) => suite.sign(alice.seed, m),
  now: T0,
  sid,
  ephemeralPrivate: aliceEphemeral.slice(),
});
const t1 = helloTranscript(pending.hello);
const answered = answerHandshake({
  suite,
  hello: pending.hello,
  sign: (m) => suite.sign(bob.seed, m),
  now: T0,
  windowMs: 300_000,
  ephemeralPrivate: bobEphemeral.slice(),
});
const t2 = acceptTranscript(suite, pending.hello, answered.accept.epk);
const shared = suite.x25519(aliceEphemeral, answered.accept.epk);
const initiatorKeys = completeHandshake(
  suite,
  { ...pending, ephemeralPrivate: aliceEphemeral.slice() },
  answered.accept,
);

const a = new Session(
  suite,
  { ...initiatorKeys, sendKey: initiatorKeys.sendKey.slice(), receiveKey: initiatorKeys.receiveKey.slice() },
  { rekeyMessages: 2 },
);
const b = new Session(suite, {
  ...answered.keys,
  sendKey: answered.keys.sendKey.slice(),
  receiveKey: answered.keys.receiveKey.slice(),
});
const plaintexts = ['hello bob', 'second', 'third, after rekeying'].map((s) => new TextEncoder().encode(s));
const framesI2R = plaintexts.map((p) => a.seal(p));
const frameR2I = b.seal(new TextEncoder().encode('ack'));

const vectors = {
  description:
    'Session-mode handshake and data frames (docs/protocol.md, "Session mode"). Byte strings are lowercase hex. Alice initiates, Bob responds; both at ts.',
  version: 1,
  ts: T0,
  identities: {
    alice: { seedHex: hex(alice.seed), did: alice.did },
    bob: { seedHex: hex(bob.seed), did: bob.did },
  },
  constants: {
    helloPrefixHex: hex(HELLO_PREFIX as Uint8Array),
    acceptPrefixHex: hex(ACCEPT_PREFIX as Uint8Array),
    keysInfoHex: hex(KEYS_INFO as Uint8Array),
    rekeyInfoEpoch1Hex: hex(rekeyInfo(1)),
  },
  handshake: {
    sidHex: hex(sid),
    initiatorEphemeralPrivateHex: hex(aliceEphemeral),
    initiatorEpkHex: hex(pending.hello.epk),
    helloTranscriptHex: hex(t1),
    helloSignatureHex: hex(pending.hello.sig),
    helloFrameHex: hex(pending.frame),
    responderEphemeralPrivateHex: hex(bobEphemeral),
    responderEpkHex: hex(answered.accept.epk),
    acceptTranscriptHex: hex(t2),
    acceptSignatureHex: hex(answered.accept.sig),
    acceptFrameHex: hex(answered.frame),
    sharedSecretHex: hex(shared),
    transcriptHashHex: hex(initiatorKeys.transcriptHash),
    keyInitiatorToResponderHex: hex(initiatorKeys.sendKey),
    keyResponderToInitiatorHex: hex(initiatorKeys.receiveKey),
    keyInitiatorToResponderEpoch1Hex: hex(nextEpochKey(suite, initiatorKeys.sendKey, 0)),
  },
  data: {
    rekeyMessages: 2,
    initiatorToResponder: plaintexts.map((p, i) => ({
      plaintextHex: hex(p),
      frameHex: hex(framesI2R[i] as Uint8Array),
    })),
    responderToInitiator: [{ plaintextHex: hex(new TextEncoder().encode('ack')), frameHex: hex(frameR2I) }],
  },
};
writeFileSync(new URL('../vectors/session.json', import.meta.url), `${JSON.stringify(vectors, null, 2)}\n`);
