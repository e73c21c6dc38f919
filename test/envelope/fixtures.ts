// Shared fixtures of the envelope tests and the vector generator: fixed identities, clock and helpers.
import { ed25519SeedToX25519Private } from '../../runtime/crypto/convert.ts';
import { nobleSuite } from '../../runtime/crypto/noble.ts';
import { nodeSuite } from '../../runtime/crypto/node.ts';
import type { CryptoSuite } from '../../runtime/crypto/suite.ts';
import { type Identity, identityFromSeed } from '../../runtime/identity/keys.ts';

export const suites: readonly CryptoSuite[] = [nodeSuite, nobleSuite];

/** 2026-01-01T00:00:00Z: every fixed envelope is sent then, and fixed clocks read it. */
export const T0 = 1_767_225_600_000;

export const fixedClock = (now: number = T0) => ({ now: () => now });

export function seedOf(byte: number): Uint8Array {
  return Uint8Array.from({ length: 32 }, (_, i) => (byte + i) & 0xff);
}

export const alice: Identity = identityFromSeed(seedOf(0x01), nodeSuite);
export const bob: Identity = identityFromSeed(seedOf(0x41), nodeSuite);
export const carol: Identity = identityFromSeed(seedOf(0x81), nodeSuite);
export const bobX25519Private: Uint8Array = ed25519SeedToX25519Private(bob.seed);
export const carolX25519Private: Uint8Array = ed25519SeedToX25519Private(carol.seed);

export const hex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex');
export const fromHex = (text: string): Uint8Array => new Uint8Array(Buffer.from(text, 'hex'));

/** JSON form of a field value: bytes become `{ "hex": … }`, everything else stays. */
export function toJsonValue(value: unknown): unknown {
  if (value instanceof Uint8Array) return { hex: hex(value) };
  if (typeof value === 'object' && value !== null) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, toJsonValue(v)]));
  }
  return value;
}

/** Inverse of `toJsonValue`. */
export function fromJsonValue(value: unknown): unknown {
  if (typeof value === 'object' && value !== null) {
    const record = value as Record<string, unknown>;
    if (Object.keys(record).length === 1 && typeof record.hex === 'string') return fromHex(record.hex);
    return Object.fromEntries(Object.entries(record).map(([k, v]) => [k, fromJsonValue(v)]));
  }
  return value;
}
