// Type-checked usage examples of the envelope API, mirrored in its TSDoc; compiled by the typecheck, never run by the runtime.
import { ed25519SeedToX25519Private } from '../crypto/convert.ts';
import type { CryptoSuite } from '../crypto/suite.ts';
import type { Identity } from '../identity/keys.ts';
import {
  acceptEnvelope,
  createEnvelope,
  encodeEnvelope,
  envelopeErrorEvent,
  MemoryReplayGuard,
  seal,
  signEnvelope,
} from './index.ts';

/** Alice signs a message to an enclave; the bytes go to the relay. */
export function sendSigned(alice: Identity, suite: CryptoSuite): Uint8Array {
  const env = createEnvelope({
    type: 'task.propose',
    from: alice.did,
    to: 'enclave/abc',
    ctx: { run_id: 'run-1', stage: 'design' },
    body: { title: 'Write the spec' },
  });
  return encodeEnvelope(signEnvelope(env, alice.seed, suite));
}

/** Alice seals a vote that only Bob can read. */
export function sendSealed(alice: Identity, bob: Identity, suite: CryptoSuite): Uint8Array {
  const env = createEnvelope({
    type: 'discussion.vote',
    from: alice.did,
    to: bob.did,
    body: { vote: 'approve' },
  });
  return encodeEnvelope(seal(env, { senderSeed: alice.seed, recipientDid: bob.did, suite }));
}

/** Bob's host receives bytes: an accepted body, or an error event and nothing else. */
export function receive(
  bob: Identity,
  suite: CryptoSuite,
  bytes: Uint8Array,
  guard = new MemoryReplayGuard(),
): { body: unknown } | { event: ReturnType<typeof envelopeErrorEvent> } {
  try {
    const accepted = acceptEnvelope(bytes, {
      suite,
      guard,
      recipientX25519Private: ed25519SeedToX25519Private(bob.seed),
    });
    return { body: accepted.body };
  } catch (err) {
    return { event: envelopeErrorEvent(err, bytes.length, Date.now()) };
  }
}
