// base58btc: published examples, round trips over random bytes, and rejection of foreign characters.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Base58Error, base58Decode, base58Encode } from '../../runtime/identity/base58.ts';

const utf8 = (text: string): Uint8Array => new TextEncoder().encode(text);
const hex = (text: string): Uint8Array => Uint8Array.from(Buffer.from(text, 'hex'));

describe('base58btc', () => {
  it('encodes the well-known examples', () => {
    expect(base58Encode(new Uint8Array(0))).toBe('');
    expect(base58Encode(Uint8Array.of(0))).toBe('1');
    expect(base58Encode(Uint8Array.of(0, 0, 1))).toBe('112');
    expect(base58Encode(utf8('hello world'))).toBe('StV1DL6CwTryKyV');
    expect(base58Encode(utf8('Hello World!'))).toBe('2NEpo7TZRRrLZSi2U');
    expect(base58Encode(hex('00eb15231dfceb60925886b67d065299925915aeb172c06647'))).toBe(
      '1NS17iag9jJgTHD1VXjvLCEnZuQ3rJDE9L',
    );
  });

  it('decodes the well-known examples', () => {
    expect(base58Decode('')).toEqual(new Uint8Array(0));
    expect(base58Decode('112')).toEqual(Uint8Array.of(0, 0, 1));
    expect(new TextDecoder().decode(base58Decode('StV1DL6CwTryKyV'))).toBe('hello world');
    expect(Buffer.from(base58Decode('1NS17iag9jJgTHD1VXjvLCEnZuQ3rJDE9L')).toString('hex')).toBe(
      '00eb15231dfceb60925886b67d065299925915aeb172c06647',
    );
  });

  it('round-trips random bytes, leading zeros included', () => {
    fc.assert(
      fc.property(fc.nat({ max: 4 }), fc.uint8Array({ maxLength: 80 }), (zeros, tail) => {
        const bytes = new Uint8Array(zeros + tail.length);
        bytes.set(tail, zeros);
        const text = base58Encode(bytes);
        expect(text).toMatch(/^[1-9A-HJ-NP-Za-km-z]*$/);
        expect(base58Decode(text)).toEqual(bytes);
      }),
      { numRuns: 200 },
    );
  });

  it('rejects characters outside the alphabet with a typed error naming the position', () => {
    for (const [text, position] of [
      ['0abc', 0],
      ['abcO', 3],
      ['abIc', 2],
      ['l', 0],
      ['ab c', 2],
      ['abc+', 3],
      ['ab\u00e9', 2],
      ['z6Mk\n', 4],
    ] as const) {
      let caught: unknown;
      try {
        base58Decode(text);
      } catch (err) {
        caught = err;
      }
      expect(caught).toBeInstanceOf(Base58Error);
      expect((caught as Base58Error).code).toBe('ANX_BASE58_INVALID');
      expect((caught as Base58Error).message).toContain(`at position ${position}`);
    }
  });

  it('rejects input of the wrong type', () => {
    expect(() => base58Decode(42 as unknown as string)).toThrow(Base58Error);
    expect(() => base58Encode('abc' as unknown as Uint8Array)).toThrow(Base58Error);
  });
});
