// The envelope codec: round trips, each refusal with its code, and fuzzing that only typed errors come out.
import fc from 'fast-check';
import { Packr } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import { nodeSuite } from '../../runtime/crypto/node.ts';
import {
  createEnvelope,
  DEFAULT_MAX_ENVELOPE_BYTES,
  decodeBody,
  decodeEnvelope,
  EnvelopeDecodeError,
  EnvelopeError,
  EnvelopeFieldError,
  EnvelopeTooLargeError,
  EnvelopeVersionError,
  encodeBody,
  encodeEnvelope,
  envelopeSigningInput,
  MAX_BODY_BYTES,
  newEnvelopeId,
  signEnvelope,
  validateSessionEnvelope,
} from '../../runtime/envelope/index.ts';
import { encodedSize } from '../../runtime/value-checks.ts';
import { envelopeArb } from './arbitraries.ts';
import { alice, bob, carol, hex, T0 } from './fixtures.ts';

// A plain msgpack encoder for building hostile maps by hand.
const raw = new Packr({ useRecords: false, variableMapSize: true });

const base = signEnvelope(
  createEnvelope({
    id: newEnvelopeId(T0),
    ts: T0,
    type: 'task.propose',
    from: alice.did,
    to: bob.did,
    ctx: { run_id: 'run-1', stage: 'design' },
    body: { title: 'spec', n: 3, tags: ['a', 'b'] },
  }),
  alice.seed,
  nodeSuite,
);
const baseBytes = encodeEnvelope(base);
const wire = (): Record<string, unknown> => ({ ...base, ts: base.ts });

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    if (err instanceof EnvelopeError) return err.code;
    throw err;
  }
  return 'accepted';
}

describe('envelope codec', () => {
  it('round-trips a created envelope with every field and re-encodes to the same bytes', () => {
    const env = signEnvelope(
      createEnvelope({
        ts: T0,
        exp: T0 + 1000,
        type: 'vault.put',
        from: alice.did,
        to: 'enclave/abc',
        thread: newEnvelopeId(T0),
        reply: newEnvelopeId(T0),
        ctx: { stage: 'review', session_id: 's', run_id: 'r', enclave_id: 'abc', task_id: 't' },
        actor: carol.did,
        cap: new Uint8Array([1, 2, 3]),
        body: { key: 'design/spec.md', bytes: new Uint8Array([9, 9]) },
      }),
      alice.seed,
      nodeSuite,
    );
    const bytes = encodeEnvelope(env);
    const decoded = decodeEnvelope(bytes);
    expect(hex(encodeEnvelope(decoded))).toBe(hex(bytes));
    expect(hex(envelopeSigningInput(decoded))).toBe(hex(envelopeSigningInput(env)));
    const body = decodeBody(decoded.body) as { key: string; bytes: Uint8Array };
    expect(body.key).toBe('design/spec.md');
    expect(body.bytes).toBeInstanceOf(Uint8Array);
    expect(hex(body.bytes)).toBe('0909');
  });

  it('round-trips arbitrary valid envelopes byte for byte', () => {
    fc.assert(
      fc.property(envelopeArb, (env) => {
        const bytes = encodeEnvelope(env);
        const decoded = decodeEnvelope(bytes);
        expect(hex(encodeEnvelope(decoded))).toBe(hex(bytes));
        expect(hex(envelopeSigningInput(decoded))).toBe(hex(envelopeSigningInput(env)));
      }),
      { numRuns: 300 },
    );
  });

  it('writes ts as msgpack int 64 and still reads a float 64 holding an integer', () => {
    expect(hex(baseBytes)).toContain(`a27473d3${T0.toString(16).padStart(16, '0')}`);
    const asFloat = raw.pack(wire());
    expect(hex(asFloat)).toContain('a27473cb');
    expect(decodeEnvelope(asFloat).ts).toBe(T0);
  });

  it('makes sortable, unique ids of 26 Crockford base32 characters', () => {
    const a = newEnvelopeId(T0);
    const b = newEnvelopeId(T0 + 1);
    expect(a).toMatch(/^[0-9A-HJKMNP-TV-Z]{26}$/);
    expect(a < b).toBe(true);
    expect(new Set(Array.from({ length: 1000 }, () => newEnvelopeId(T0))).size).toBe(1000);
  });

  it('refuses input over the maximum before decoding it', () => {
    const err = (() => {
      try {
        decodeEnvelope(baseBytes, { maxBytes: baseBytes.length - 1 });
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(EnvelopeTooLargeError);
    expect(codeOf(() => decodeEnvelope(new Uint8Array(DEFAULT_MAX_ENVELOPE_BYTES + 1)))).toBe(
      'ANX_ENVELOPE_TOO_LARGE',
    );
    expect(codeOf(() => decodeEnvelope(baseBytes, { maxBytes: baseBytes.length }))).toBe('accepted');
  });

  it.each([
    ['empty input', new Uint8Array(0)],
    ['a truncated envelope', baseBytes.subarray(0, baseBytes.length - 10)],
    ['a map header with nothing after it', new Uint8Array([0x8f])],
    ['trailing bytes', Uint8Array.from([...baseBytes, 0x00])],
    ['a top-level array', raw.pack([1, 2])],
    ['a top-level string', raw.pack('envelope')],
    ['a top-level nil', new Uint8Array([0xc0])],
    ['the reserved byte 0xc1', new Uint8Array([0xc1])],
    ['a record extension at the top level', new Packr({ useRecords: true }).pack(wire())],
    [
      'a repeated key',
      (() => {
        const b = raw.pack({ ...wire() });
        const out = Uint8Array.from([...b, ...raw.pack('to'), ...raw.pack('enclave/x')]);
        out[0] = (out[0] as number) + 1;
        return out;
      })(),
    ],
  ])('refuses %s with ANX_ENVELOPE_DECODE', (_name, bytes) => {
    expect(codeOf(() => decodeEnvelope(bytes))).toBe('ANX_ENVELOPE_DECODE');
  });

  it('refuses non-bytes input with a typed error', () => {
    expect(codeOf(() => decodeEnvelope('hello' as unknown as Uint8Array))).toBe('ANX_ENVELOPE_DECODE');
    expect(codeOf(() => decodeEnvelope(null as unknown as Uint8Array))).toBe('ANX_ENVELOPE_DECODE');
  });

  it.each([
    ['v 2', { v: 2 }],
    ['v 0', { v: 0 }],
    ['v "1"', { v: '1' }],
    ['no v', { v: undefined }],
  ])('refuses %s with ANX_ENVELOPE_VERSION', (_name, patch) => {
    const fields: Record<string, unknown> = { ...wire(), ...patch };
    if (patch.v === undefined) delete fields.v;
    expect(() => decodeEnvelope(raw.pack(fields))).toThrow(EnvelopeVersionError);
  });

  const fieldCases: [string, string, unknown][] = [
    ['id', 'id', 42],
    ['id', 'id', 'short'],
    ['id', 'id', 'has space in it 0123456'],
    ['type', 'type', ''],
    ['type', 'type', 'bad type'],
    ['from', 'from', 7],
    ['to', 'to', 42],
    ['to', 'to', 'bob'],
    ['to', 'to', 'did:agentnexus:zNotAKey'],
    ['to', 'to', `did:key:${alice.did.slice('did:agentnexus:'.length)}`],
    ['ts', 'ts', String(T0)],
    ['ts', 'ts', -1],
    ['ts', 'ts', 1.5],
    ['ts', 'ts', 2 ** 60],
    ['exp', 'exp', 'tomorrow'],
    ['thread', 'thread', 5],
    ['reply', 'reply', new Uint8Array(20)],
    ['ctx', 'ctx', 'run-1'],
    ['ctx', 'ctx', {}],
    ['ctx', 'ctx.colour', { colour: 'blue' }],
    ['ctx', 'ctx.run_id', { run_id: 7 }],
    ['ctx', 'ctx.run_id', { run_id: '' }],
    ['actor', 'actor', 'carol'],
    ['cap', 'cap', 12],
    ['cap', 'cap', ''],
    ['cap', 'cap', new Uint8Array(0)],
    ['enc', 'enc', 'rot13'],
    ['epk', 'epk', new Uint8Array(32)],
    ['nonce', 'nonce', new Uint8Array(12)],
    ['body', 'body', 'plain text'],
    ['body', 'body', { a: 1 }],
    ['body', 'body', null],
    ['sig', 'sig', new Uint8Array(63)],
    ['sig', 'sig', 'signature'],
    ['unknown', 'x', 1],
    ['unknown', '__proto_', 1],
  ];
  it.each(fieldCases)(
    'refuses a bad %s (%s = %o) with ANX_ENVELOPE_FIELD naming the field',
    (_what, field, value) => {
      const fields: Record<string, unknown> = wire();
      fields[field.split('.')[0] as string] = value;
      let err: unknown;
      try {
        decodeEnvelope(raw.pack(fields));
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(EnvelopeFieldError);
      expect((err as EnvelopeFieldError).field).toBe(field);
      expect((err as EnvelopeFieldError).message).toContain(`"${field}" expected`);
    },
  );

  it('says what was expected and what came', () => {
    try {
      decodeEnvelope(raw.pack({ ...wire(), to: 42 }));
      expect.unreachable();
    } catch (err) {
      expect((err as Error).message).toBe('"to" expected a DID or actor address, got 42');
      expect((err as EnvelopeFieldError).id).toBe(base.id);
      expect((err as EnvelopeFieldError).from).toBe(alice.did);
    }
  });

  it('never quotes body or binary content in a field error', () => {
    const err = (() => {
      try {
        decodeEnvelope(raw.pack({ ...wire(), body: 'TOP-SECRET-PAYLOAD' }));
      } catch (e) {
        return e as Error;
      }
    })();
    expect(err?.message).not.toContain('TOP-SECRET');
  });

  it('refuses header values of msgpack extension types', () => {
    const withDate = new Packr({ useRecords: false }).pack({ ...wire(), ts: new Date(T0) });
    expect(codeOf(() => decodeEnvelope(withDate))).toBe('ANX_ENVELOPE_FIELD');
    const withUndefined = new Packr({ useRecords: false }).pack({ ...wire(), exp: undefined });
    expect(codeOf(() => decodeEnvelope(withUndefined))).toBe('ANX_ENVELOPE_FIELD');
  });

  it('encodes undefined in a body as nil and refuses undecodable body bytes with a typed error', () => {
    expect(decodeBody(encodeBody({ a: undefined }))).toEqual({ a: null });
    expect(decodeBody(encodeBody(undefined))).toBe(null);
    expect(() => decodeBody(new Uint8Array([0x92, 0x01]))).toThrow(EnvelopeDecodeError);
    expect(() => decodeBody(new Uint8Array(0))).toThrow(EnvelopeDecodeError);
  });
});

describe('envelope decoder under hostile input', () => {
  const onlyTyped = (bytes: Uint8Array, maxBytes?: number) => {
    try {
      decodeEnvelope(bytes, { maxBytes });
    } catch (err) {
      if (!(err instanceof EnvelopeError)) throw err;
    }
  };

  it('answers random bytes only with typed errors', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 2048 }), (bytes) => onlyTyped(bytes)),
      { numRuns: 3000 },
    );
  });

  it('answers random bytes behind a map header only with typed errors', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0x80, max: 0x8f }), fc.uint8Array({ maxLength: 512 }), (head, rest) =>
        onlyTyped(Uint8Array.from([head, ...rest])),
      ),
      { numRuns: 3000 },
    );
  });

  it('refuses every truncation of a valid envelope with ANX_ENVELOPE_DECODE', () => {
    for (let n = 0; n < baseBytes.length; n++) {
      expect(codeOf(() => decodeEnvelope(baseBytes.subarray(0, n)))).toBe('ANX_ENVELOPE_DECODE');
    }
  });

  it('answers bit flips of a valid envelope with a typed error or a valid envelope', () => {
    fc.assert(
      fc.property(fc.nat(baseBytes.length * 8 - 1), fc.nat(baseBytes.length * 8 - 1), (a, b) => {
        const bytes = baseBytes.slice();
        bytes[a >> 3] = (bytes[a >> 3] as number) ^ (1 << (a & 7));
        bytes[b >> 3] = (bytes[b >> 3] as number) ^ (1 << (b & 7));
        onlyTyped(bytes);
      }),
      { numRuns: 5000 },
    );
  });

  it('answers arbitrary envelopes with spliced random bytes only with typed errors', () => {
    fc.assert(
      fc.property(envelopeArb, fc.nat(), fc.uint8Array({ minLength: 1, maxLength: 16 }), (env, at, junk) => {
        const bytes = encodeEnvelope(env);
        const pos = at % bytes.length;
        onlyTyped(Uint8Array.from([...bytes.subarray(0, pos), ...junk, ...bytes.subarray(pos)]));
      }),
      { numRuns: 1000 },
    );
  });

  it('answers every field replaced by any msgpack value only with typed errors', () => {
    const keys = [
      'v',
      'id',
      'type',
      'from',
      'to',
      'ts',
      'exp',
      'ctx',
      'actor',
      'cap',
      'body',
      'sig',
      'enc',
      'epk',
      'nonce',
    ];
    fc.assert(
      fc.property(
        fc.constantFrom(...keys),
        fc.anything({ withTypedArray: true, withDate: true, withMap: true, withSet: true, withBigInt: true }),
        (key, value) => {
          const fields: Record<string, unknown> = wire();
          fields[key] = value;
          let bytes: Uint8Array;
          try {
            bytes = new Packr({ useRecords: false, moreTypes: true }).pack(fields);
          } catch {
            return; // a value msgpackr itself cannot encode
          }
          onlyTyped(bytes);
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('answers oversized input with ANX_ENVELOPE_TOO_LARGE whatever it holds', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 65, maxLength: 300 }), (bytes) => {
        expect(codeOf(() => decodeEnvelope(bytes, { maxBytes: 64 }))).toBe('ANX_ENVELOPE_TOO_LARGE');
      }),
    );
  });

  it('survives deeply nested input with a typed error', () => {
    const deep = new Uint8Array(200_000).fill(0x91);
    deep.set([0x81, 0xa1, 0x61], 0);
    onlyTyped(deep);
    expect(codeOf(() => decodeEnvelope(deep))).toBe('ANX_ENVELOPE_DECODE');
  });
});

describe('envelope body encoding', () => {
  it('knows the encoded size of a body without encoding it (what a host checks against MAX_BODY_BYTES)', () => {
    const value = fc.letrec((tie) => ({
      leaf: fc.oneof(
        fc.string({ unit: 'binary', maxLength: 300 }),
        fc.integer({ min: -(2 ** 40), max: 2 ** 40 }),
        fc.constantFrom(-33, -32, 127, 128, 255, 256, 65_535, 65_536, 2 ** 32 - 1, 2 ** 32, -(2 ** 31) - 1),
        fc.double({ noNaN: false }),
        fc.boolean(),
        fc.constant(null),
        fc.uint8Array({ maxLength: 300 }),
      ),
      node: fc.oneof(
        { depthSize: 'small' },
        tie('leaf'),
        fc.array(tie('node'), { maxLength: 20 }),
        fc.dictionary(fc.string({ maxLength: 40 }), tie('node'), { maxKeys: 20 }),
      ),
    })).node;
    // Header widths at their edges, outside the random trees (which stay small).
    for (const n of [31, 32, 255, 256, 65_535, 65_536]) {
      for (const v of ['x'.repeat(n), 'é'.repeat(n), new Uint8Array(n), Array.from({ length: n }, () => 0)])
        expect(encodedSize(v)).toBe(encodeBody(v).length);
    }
    fc.assert(
      fc.property(value, (v) => {
        expect(encodedSize(v)).toBe(encodeBody(v).length);
      }),
      { numRuns: 300 },
    );
    expect(MAX_BODY_BYTES).toBeLessThan(DEFAULT_MAX_ENVELOPE_BYTES);
  });

  it('refuses a body msgpack cannot carry with ANX_ENVELOPE_FIELD', () => {
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    expect(() => encodeBody(cyclic)).toThrow(EnvelopeFieldError);
    expect(() => encodeBody(2n ** 70n)).toThrow(EnvelopeFieldError);
    expect(() => createEnvelope({ type: 'x', from: alice.did, to: bob.did, body: { n: 2n ** 70n } })).toThrow(
      EnvelopeFieldError,
    );
  });

  it('says "nothing" for a missing field', () => {
    const fields: Record<string, unknown> = { ...base };
    delete fields.body;
    expect(() => decodeEnvelope(raw.pack(fields))).toThrow(
      '"body" expected bytes (msgpack bin), got nothing',
    );
  });
});

describe('reserved sealed type', () => {
  it('refuses the sealed outer type on a plain envelope', () => {
    expect(() => decodeEnvelope(raw.pack({ ...base, type: 'anx.sealed' }))).toThrow(EnvelopeFieldError);
  });

  it("refuses the kernel's batch event as a message type", () => {
    expect(() => decodeEnvelope(raw.pack({ ...base, type: 'anx.batch' }))).toThrow(
      '"type" expected a message type other than "anx.batch" (the kernel\'s own event), got "anx.batch"',
    );
  });
});

describe('session envelopes (kernel form inside a relay session)', () => {
  const session = {
    v: 1,
    id: newEnvelopeId(T0),
    type: 'message',
    from: alice.did,
    to: bob.did,
    ts: T0,
    body: { text: 'hi' },
  };

  it('takes a well-formed one, with every optional header field', () => {
    expect(() => validateSessionEnvelope({ ...session })).not.toThrow();
    expect(() =>
      validateSessionEnvelope({
        ...session,
        exp: T0 + 1000,
        thread: newEnvelopeId(T0),
        reply: newEnvelopeId(T0),
        ctx: { run_id: 'run-1', task_id: 'run-1/s1/1' },
        actor: carol.did,
        cap: 'token-ref',
      }),
    ).not.toThrow();
  });

  it.each([
    ['id', { id: 'not an id' }],
    ['type', { type: 'x'.repeat(200) }],
    ['type', { type: 'anx.batch' }],
    ['ts', { ts: 1.5 }],
    ['exp', { exp: '2026' }],
    ['thread', { thread: 7 }],
    ['reply', { reply: 'short' }],
    ['ctx.run_id', { ctx: { run_id: { nested: true } } }],
    ['ctx.who', { ctx: { who: 'x' } }],
    ['actor', { actor: 'mallory' }],
    ['cap', { cap: { token: 1 } }],
  ])('refuses a bad "%s" with the field named', (field, extra) => {
    try {
      validateSessionEnvelope({ ...session, ...extra });
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(EnvelopeFieldError);
      expect((err as EnvelopeFieldError).field).toBe(field);
    }
  });

  it('throws nothing but EnvelopeFieldError on arbitrary header values', () => {
    const value = fc.oneof(
      fc.string(),
      fc.integer(),
      fc.double(),
      fc.boolean(),
      fc.constant(null),
      fc.object(),
    );
    fc.assert(
      fc.property(
        fc.record(
          {
            id: value,
            type: value,
            ts: value,
            exp: value,
            thread: value,
            reply: value,
            ctx: value,
            actor: value,
            cap: value,
          },
          { requiredKeys: [] },
        ),
        (fields) => {
          try {
            validateSessionEnvelope({ ...session, ...fields });
          } catch (err) {
            expect(err).toBeInstanceOf(EnvelopeFieldError);
          }
        },
      ),
      { numRuns: 500 },
    );
  });
});
