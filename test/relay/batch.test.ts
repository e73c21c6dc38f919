// Session batch plaintexts: a msgpack array of bin, one item per envelope (docs/protocol.md, "Data frames").
import { pack, unpack } from 'msgpackr';
import { expect, it } from 'vitest';
import { packBatch, RelayFrameError, unpackBatch } from '../../bridge/relay/relay.ts';

const item = (n: number, fill: number) => new Uint8Array(n).fill(fill);

it('packs items of every bin size, in fixarray and array 16, as standard msgpack, and gives them back in order', () => {
  for (const count of [2, 15, 16, 128]) {
    const items = Array.from({ length: count }, (_, i) =>
      item([1, 255, 256, 65_535, 65_536][i % 5] as number, i),
    );
    const packed = packBatch(items);
    // The bytes a general msgpack encoder writes, and any msgpack decoder reads the same array of byte strings.
    expect(Buffer.from(packed).equals(Buffer.from(pack(items)))).toBe(true);
    expect((unpack(packed) as Uint8Array[]).map((b) => b.length)).toEqual(items.map((b) => b.length));
    expect(unpackBatch(packed).map((b) => Array.from(b.subarray(0, 1)))).toEqual(
      items.map((b) => Array.from(b.subarray(0, 1))),
    );
    expect(unpackBatch(packed).map((b) => b.length)).toEqual(items.map((b) => b.length));
  }
});

it('takes a plaintext that is not an array as one envelope', () => {
  const env = Uint8Array.of(0x81, 0xa1, 0x76, 0x01);
  expect(unpackBatch(env)).toEqual([env]);
});

it('refuses a malformed batch with a RelayFrameError naming the problem', () => {
  const packed = packBatch([item(10, 1), item(300, 2)]);
  expect(() => unpackBatch(packed.subarray(0, packed.length - 1))).toThrow(RelayFrameError);
  expect(() => unpackBatch(Uint8Array.of(...packed, 0))).toThrow(/nothing after them/);
  expect(() => unpackBatch(Uint8Array.of(0x92, 0xc4, 1, 7, 0x01))).toThrow(/item 1 expected msgpack bin/);
  expect(() => unpackBatch(Uint8Array.of(0x90))).toThrow(/one or more envelopes/);
  expect(() => unpackBatch(Uint8Array.of(0x91, 0xc6, 0xff, 0xff, 0xff, 0xff))).toThrow(/runs past the frame/);
});
