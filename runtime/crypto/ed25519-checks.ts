// Strict RFC 8032 checks on Ed25519 point encodings that OpenSSL leaves out: shared by the node suite and the verify pool.

const P = (1n << 255n) - 19n;

/** 32-byte little-endian encoding of a y-coordinate below 2^255. */
function encode(y: bigint): Uint8Array {
  const out = new Uint8Array(32);
  for (let i = 0; i < 32; i++) out[i] = Number((y >> BigInt(8 * i)) & 0xffn);
  return out;
}

// y-coordinates of the eight small-order Ed25519 points: 1 (identity), p-1 (order 2),
// 0 (order 4) and the two of order 8. Every encoding of such a point has one of them.
const SMALL_ORDER = [
  0n,
  1n,
  P - 1n,
  0x7a03ac9277fdc74ec6cc392cfa53202a0f67100d760b3cba4fd84d3d706a17c7n,
  0x05fc536d880238b13933c6d305acdfd5f098eff289f4c345b027b2c28f95e826n,
].map(encode);
// The non-canonical spellings (y + p) of those below 2^255: y = 0 and y = 1.
const SMALL_ORDER_NON_CANONICAL = [P, P + 1n].map(encode);

/** True when `encoding` (sign bit ignored) spells `y`. */
function spells(encoding: Uint8Array, y: Uint8Array): boolean {
  if (((encoding[31] as number) & 0x7f) !== y[31]) return false;
  for (let i = 0; i < 31; i++) if (encoding[i] !== y[i]) return false;
  return true;
}

/** y ≥ p: the top byte (sign bit cleared) is 0x7f, the 30 middle bytes 0xff, the lowest ≥ 0xed. */
function nonCanonical(encoding: Uint8Array): boolean {
  if (((encoding[31] as number) & 0x7f) !== 0x7f || (encoding[0] as number) < 0xed) return false;
  for (let i = 1; i < 31; i++) if (encoding[i] !== 0xff) return false;
  return true;
}

/**
 * Strict RFC 8032 rules that OpenSSL does not apply to public keys: refuse non-canonical
 * encodings (y ≥ p) and small-order points, as the noble suite does, so both answer alike and
 * no signature verifies under a key that almost anything verifies under.
 */
export function acceptableEd25519Public(publicKey: Uint8Array): boolean {
  return !nonCanonical(publicKey) && !SMALL_ORDER.some((y) => spells(publicKey, y));
}

/** True when a 32-byte encoding (canonical or not) names a point of small order. */
export function smallOrderEncoding(encoding: Uint8Array): boolean {
  return (
    SMALL_ORDER.some((y) => spells(encoding, y)) || SMALL_ORDER_NON_CANONICAL.some((y) => spells(encoding, y))
  );
}
