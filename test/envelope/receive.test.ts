// The receive pipeline: every refusal has its code and event, replays and stale mail are refused, hostile bytes stay typed.
import fc from 'fast-check';
import { Packr } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import type { CryptoSuite } from '../../runtime/crypto/suite.ts';
import {
  type AcceptOptions,
  acceptEnvelope,
  createEnvelope,
  ENVELOPE_ERROR_CODES,
  type Envelope,
  EnvelopeError,
  type EnvelopeInit,
  encodeEnvelope,
  envelopeErrorEvent,
  envelopeSigningInput,
  MemoryReplayGuard,
  type ReplayGuard,
  seal,
  signEnvelope,
} from '../../runtime/envelope/index.ts';
import { AnxError } from '../../runtime/errors.ts';
import { envelopeArb } from './arbitraries.ts';
import { alice, bob, bobX25519Private, carol, fixedClock, suites, T0 } from './fixtures.ts';

const SECRET = 'TOP-SECRET-BODY-TEXT';

describe.each(suites.map((s) => [s.name, s] as [string, CryptoSuite]))(
  'acceptEnvelope (%s suite)',
  (_n, suite) => {
    const make = (init: Partial<EnvelopeInit> = {}): Envelope =>
      createEnvelope({ ts: T0, type: 'note', from: alice.did, to: bob.did, body: { text: SECRET }, ...init });
    const signed = (init: Partial<EnvelopeInit> = {}): Uint8Array =>
      encodeEnvelope(signEnvelope(make(init), alice.seed, suite));
    const options = (extra: Partial<AcceptOptions> = {}): AcceptOptions => ({
      suite,
      guard: new MemoryReplayGuard({ clock: fixedClock() }),
      clock: fixedClock(),
      recipientX25519Private: bobX25519Private,
      ...extra,
    });
    const codeOf = (bytes: Uint8Array, extra: Partial<AcceptOptions> = {}): string => {
      try {
        acceptEnvelope(bytes, options(extra));
        return 'accepted';
      } catch (err) {
        if (err instanceof EnvelopeError) return err.code;
        throw err;
      }
    };

    it('accepts a signed envelope and returns its decoded body', () => {
      const result = acceptEnvelope(signed(), options());
      expect(result.sealed).toBe(false);
      expect(result.body).toEqual({ text: SECRET });
      expect(result.envelope.from).toBe(alice.did);
    });

    it('accepts a sealed envelope and returns the opened body', () => {
      const bytes = encodeEnvelope(seal(make(), { senderSeed: alice.seed, recipientDid: bob.did, suite }));
      const result = acceptEnvelope(bytes, options());
      expect(result.sealed).toBe(true);
      expect(result.body).toEqual({ text: SECRET });
    });

    it('finds the opening key by the recipient address when given a lookup', () => {
      const bytes = encodeEnvelope(seal(make(), { senderSeed: alice.seed, recipientDid: bob.did, suite }));
      const seenTo: string[] = [];
      const lookup = (to: string) => {
        seenTo.push(to);
        return to === bob.did ? bobX25519Private : undefined;
      };
      expect(acceptEnvelope(bytes, options({ recipientX25519Private: lookup })).sealed).toBe(true);
      expect(seenTo).toEqual([bob.did]);
      const forCarol = encodeEnvelope(
        seal(make({ to: carol.did }), { senderSeed: alice.seed, recipientDid: carol.did, suite }),
      );
      expect(codeOf(forCarol, { recipientX25519Private: lookup })).toBe('ANX_ENVELOPE_DECRYPT');
      expect(codeOf(bytes, { recipientX25519Private: undefined })).toBe('ANX_ENVELOPE_DECRYPT');
    });

    it('refuses a replayed id from the same sender, but not the same id from another sender', () => {
      const guard = new MemoryReplayGuard({ clock: fixedClock() });
      const id = '01KDX00000000000000000AAAA';
      const bytes = signed({ id });
      acceptEnvelope(bytes, options({ guard }));
      expect(codeOf(bytes, { guard })).toBe('ANX_ENVELOPE_DUPLICATE');
      const fromCarol = encodeEnvelope(signEnvelope(make({ id, from: carol.did }), carol.seed, suite));
      expect(codeOf(fromCarol, { guard })).toBe('accepted');
    });

    it('remembers an id only once the envelope is fully accepted', () => {
      const guard = new MemoryReplayGuard({ clock: fixedClock() });
      const sealedBytes = encodeEnvelope(
        seal(make(), { senderSeed: alice.seed, recipientDid: bob.did, suite }),
      );
      expect(codeOf(sealedBytes, { guard, recipientX25519Private: undefined })).toBe('ANX_ENVELOPE_DECRYPT');
      expect(guard.size).toBe(0);
      expect(codeOf(sealedBytes, { guard })).toBe('accepted');
      expect(guard.size).toBe(1);
    });

    it('accepts ts at the edges of the window and refuses one millisecond beyond', () => {
      const window = 300_000;
      expect(codeOf(signed({ ts: T0 - window }))).toBe('accepted');
      expect(codeOf(signed({ ts: T0 + window }))).toBe('accepted');
      expect(codeOf(signed({ ts: T0 - window - 1 }))).toBe('ANX_ENVELOPE_REPLAY_WINDOW');
      expect(codeOf(signed({ ts: T0 + window + 1 }))).toBe('ANX_ENVELOPE_REPLAY_WINDOW');
      expect(codeOf(signed({ ts: T0 - 5000 }), { windowMs: 1000 })).toBe('ANX_ENVELOPE_REPLAY_WINDOW');
    });

    it('honours exp: accepted until it passes, refused after', () => {
      expect(codeOf(signed({ exp: T0 }))).toBe('accepted');
      expect(codeOf(signed({ exp: T0 - 1 }))).toBe('ANX_ENVELOPE_EXPIRED');
      expect(codeOf(signed({ exp: T0 + 1 }), { clock: fixedClock(T0 + 2) })).toBe('ANX_ENVELOPE_EXPIRED');
    });

    it('answers every failure with its own code', () => {
      const unsigned = encodeEnvelope(make());
      const otherFrom = encodeEnvelope({
        ...make({ from: carol.did }),
        sig: signEnvelope(make(), alice.seed, suite).sig,
      });
      const notDid = (() => {
        const e = { ...make(), from: 'alice' };
        return encodeEnvelope({ ...e, sig: suite.sign(alice.seed, envelopeSigningInput(e)) });
      })();
      const raw = new Packr({ useRecords: false });
      const seen: Record<string, string> = {
        ANX_ENVELOPE_DECODE: codeOf(new Uint8Array([0x81, 0xa1])),
        ANX_ENVELOPE_TOO_LARGE: codeOf(signed(), { maxBytes: 10 }),
        ANX_ENVELOPE_VERSION: codeOf(raw.pack({ ...make(), v: 9 })),
        ANX_ENVELOPE_FIELD: codeOf(raw.pack({ ...make(), to: 42 })),
        ANX_ENVELOPE_SIGNATURE: codeOf(otherFrom),
        ANX_ENVELOPE_SENDER_KEY: codeOf(notDid),
        ANX_ENVELOPE_REPLAY_WINDOW: codeOf(signed({ ts: T0 - 3_600_000 })),
        ANX_ENVELOPE_DUPLICATE: (() => {
          const guard = new MemoryReplayGuard({ clock: fixedClock() });
          const bytes = signed();
          acceptEnvelope(bytes, options({ guard }));
          return codeOf(bytes, { guard });
        })(),
        ANX_ENVELOPE_DECRYPT: codeOf(
          encodeEnvelope(seal(make(), { senderSeed: alice.seed, recipientDid: carol.did, suite })),
        ),
        ANX_ENVELOPE_EXPIRED: codeOf(signed({ exp: T0 - 10 })),
      };
      for (const code of ENVELOPE_ERROR_CODES) expect(seen[code]).toBe(code);
      expect(codeOf(unsigned)).toBe('ANX_ENVELOPE_SIGNATURE');
    });

    it('checks time and duplicates before paying for a signature check', () => {
      let verifies = 0;
      const counting: CryptoSuite = {
        ...suite,
        verify: (...args) => {
          verifies++;
          return suite.verify(...args);
        },
      };
      const guard = new MemoryReplayGuard({ clock: fixedClock() });
      const bytes = signed();
      acceptEnvelope(bytes, options({ guard, suite: counting }));
      expect(verifies).toBe(1);
      for (let i = 0; i < 10; i++) codeOf(bytes, { guard, suite: counting });
      codeOf(signed({ ts: T0 - 3_600_000 }), { suite: counting });
      expect(verifies).toBe(1);
    });

    it('answers any bytes only with EnvelopeError, whatever the guard already holds', () => {
      const guard = new MemoryReplayGuard({ clock: fixedClock() });
      const valid = signed();
      fc.assert(
        fc.property(
          fc.oneof(
            fc.uint8Array({ maxLength: 600 }),
            fc.tuple(fc.nat(valid.length - 1), fc.nat(7)).map(([at, bit]) => {
              const b = valid.slice();
              b[at] = (b[at] as number) ^ (1 << bit);
              return b;
            }),
            fc.nat(valid.length).map((n) => valid.subarray(0, n)),
            envelopeArb.map((e) => encodeEnvelope(signEnvelope(e, alice.seed, suite))),
          ),
          (bytes) => {
            try {
              acceptEnvelope(bytes, options({ guard }));
            } catch (err) {
              expect(err).toBeInstanceOf(EnvelopeError);
            }
          },
        ),
        { numRuns: 400 },
      );
    });

    it('lets failures of the guard itself pass through untouched', () => {
      const broken: ReplayGuard = {
        seen: () => {
          throw new Error('store offline');
        },
        remember: () => {},
      };
      expect(() => acceptEnvelope(signed(), options({ guard: broken }))).toThrow('store offline');
    });
  },
);

describe('envelopeErrorEvent', () => {
  it('carries code, message, size, sender and id, and never body content', () => {
    const env = signEnvelope(
      createEnvelope({ ts: T0 - 3_600_000, type: 'note', from: alice.did, to: bob.did, body: SECRET }),
      alice.seed,
      suites[0] as CryptoSuite,
    );
    const bytes = encodeEnvelope(env);
    let event: ReturnType<typeof envelopeErrorEvent> | undefined;
    try {
      acceptEnvelope(bytes, {
        suite: suites[0] as CryptoSuite,
        guard: new MemoryReplayGuard(),
        clock: fixedClock(),
      });
    } catch (err) {
      event = envelopeErrorEvent(err, bytes.length, T0);
    }
    expect(event).toEqual({
      kind: 'error',
      ts: T0,
      payload: {
        code: 'ANX_ENVELOPE_REPLAY_WINDOW',
        message: expect.stringContaining('"ts" expected within 300000 ms'),
        bytes: bytes.length,
        from: alice.did,
        id: env.id,
      },
    });
    expect(JSON.stringify(event)).not.toContain(SECRET);
  });

  it('leaves out sender and id when the bytes did not get that far', () => {
    let event: ReturnType<typeof envelopeErrorEvent> | undefined;
    try {
      acceptEnvelope(new Uint8Array([1, 2, 3]), {
        suite: suites[0] as CryptoSuite,
        guard: new MemoryReplayGuard(),
      });
    } catch (err) {
      event = envelopeErrorEvent(err, 3, T0);
    }
    expect(event?.payload).toEqual({ code: 'ANX_ENVELOPE_DECODE', message: expect.any(String), bytes: 3 });
  });

  it('never includes body or signature bytes for any refusal of fuzzed input', () => {
    const suite = suites[0] as CryptoSuite;
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), fc.nat(), (junk, flipAt) => {
        const env = signEnvelope(
          createEnvelope({ ts: T0, type: 'note', from: alice.did, to: bob.did, body: { s: SECRET, junk } }),
          alice.seed,
          suite,
        );
        const bytes = encodeEnvelope(env).slice();
        const at = flipAt % bytes.length;
        bytes[at] = (bytes[at] as number) ^ 0x20;
        try {
          acceptEnvelope(bytes, { suite, guard: new MemoryReplayGuard(), clock: fixedClock() });
        } catch (err) {
          const text = JSON.stringify(envelopeErrorEvent(err, bytes.length, T0));
          expect(text).not.toContain(SECRET);
          expect(text).not.toContain(SECRET.toLowerCase());
        }
      }),
      { numRuns: 300 },
    );
  });

  it('reports a foreign error with a generic code and message', () => {
    const event = envelopeErrorEvent(new Error(`leak ${SECRET}`), 10, T0);
    expect(event.payload).toEqual({
      code: 'ANX_ENVELOPE_INTERNAL',
      message: 'unexpected failure while receiving an envelope',
      bytes: 10,
    });
    expect(envelopeErrorEvent(new AnxError('ANX_OTHER', 'other'), 1, T0).payload.code).toBe('ANX_OTHER');
  });
});
