// Validation of artifact keys, Enclave ids and put input, and the content hashing every backend shares.
import { createHash } from 'node:crypto';
import { describeValue } from '../errors.ts';
import { VaultInputError, VaultIntegrityError, VaultRefMismatchError } from './errors.ts';
import type { ArtifactContent, ArtifactInput, ArtifactRef } from './types.ts';

/**
 * Artifact keys are relative, `/`-separated paths such as `design/spec.md`: 1–16 segments, at most 256
 * characters in all; each segment is `[A-Za-z0-9_]` followed by `[A-Za-z0-9._-]*`. A segment may not start
 * with a dot, which rules out `.`, `..`, `.git` and hidden files; there is no leading `/`, no `//`, no `\`.
 */
export const KEY_RULES =
  'a relative path of 1-16 "/"-separated segments of [A-Za-z0-9._-], none starting with "."';

const SEGMENT = /^[A-Za-z0-9_][A-Za-z0-9._-]*$/;
const ENCLAVE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;
const KIND = /^[A-Za-z0-9][A-Za-z0-9_.+/-]{0,63}$/;

/** Throws `VaultInputError` unless `key` follows {@link KEY_RULES}. */
export function checkKey(key: unknown): asserts key is string {
  if (typeof key !== 'string' || key.length === 0 || key.length > 256) {
    throw new VaultInputError(`key: expected ${KEY_RULES}, got ${describeValue(key)}`);
  }
  const segments = key.split('/');
  if (segments.length > 16 || !segments.every((s) => SEGMENT.test(s))) {
    throw new VaultInputError(`key: expected ${KEY_RULES}, got ${describeValue(key)}`);
  }
}

/** Throws `VaultInputError` unless `prefix` is empty or a key prefix (a key, possibly ending in `/`). */
export function checkPrefix(prefix: unknown): asserts prefix is string {
  if (prefix === '') return;
  if (typeof prefix !== 'string')
    throw new VaultInputError(`prefix: expected a string, got ${describeValue(prefix)}`);
  const trimmed = prefix.endsWith('/') ? prefix.slice(0, -1) : prefix;
  try {
    checkKey(trimmed);
  } catch {
    throw new VaultInputError(
      `prefix: expected the start of a key (${KEY_RULES}), got ${describeValue(prefix)}`,
    );
  }
}

/** Throws `VaultInputError` unless `id` is an Enclave id: `[A-Za-z0-9]` then up to 127 of `[A-Za-z0-9_.-]`. */
export function checkEnclaveId(id: unknown): asserts id is string {
  if (typeof id !== 'string' || !ENCLAVE.test(id)) {
    throw new VaultInputError(
      `enclave_id: expected [A-Za-z0-9] then up to 127 of [A-Za-z0-9_.-], got ${describeValue(id)}`,
    );
  }
}

/** Throws `VaultInputError` unless `version` is a positive integer. */
export function checkVersion(version: unknown): asserts version is number {
  if (typeof version !== 'number' || !Number.isSafeInteger(version) || version < 1) {
    throw new VaultInputError(`version: expected an integer of at least 1, got ${describeValue(version)}`);
  }
}

/** Checks put input and returns the content as bytes. */
export function checkInput(input: ArtifactInput, maxSize: number): Uint8Array {
  if (typeof input !== 'object' || input === null) {
    throw new VaultInputError(
      `artifact: expected { kind, content, author, summary }, got ${describeValue(input)}`,
    );
  }
  if (typeof input.kind !== 'string' || !KIND.test(input.kind)) {
    throw new VaultInputError(
      `kind: expected [A-Za-z0-9] then up to 63 of [A-Za-z0-9_.+/-], got ${describeValue(input.kind)}`,
    );
  }
  if (
    typeof input.author !== 'string' ||
    input.author.length === 0 ||
    input.author.length > 256 ||
    /[\s<>]/.test(input.author)
  ) {
    throw new VaultInputError(`author: expected a DID, got ${describeValue(input.author)}`);
  }
  if (typeof input.summary !== 'string' || input.summary.length > 4096) {
    throw new VaultInputError(
      `summary: expected a string of at most 4096 characters, got ${describeValue(input.summary)}`,
    );
  }
  const content =
    typeof input.content === 'string'
      ? new TextEncoder().encode(input.content)
      : input.content instanceof Uint8Array
        ? input.content
        : undefined;
  if (content === undefined) {
    throw new VaultInputError(
      `content: expected a Uint8Array or a string, got ${describeValue(input.content)}`,
    );
  }
  if (content.length > maxSize) {
    throw new VaultInputError(`content: expected at most ${maxSize} bytes, got ${content.length} bytes`);
  }
  return content;
}

/** Checks that `ref` has the shape of an ArtifactRef before any lookup. */
export function checkRef(ref: ArtifactRef): void {
  if (typeof ref !== 'object' || ref === null)
    throw new VaultInputError(`ref: expected an ArtifactRef, got ${describeValue(ref)}`);
  checkEnclaveId(ref.enclave_id);
  checkKey(ref.key);
  checkVersion(ref.version);
  if (typeof ref.hash !== 'string' || !/^[0-9a-f]{64}$/.test(ref.hash)) {
    throw new VaultInputError(`ref.hash: expected 64 lowercase hex digits, got ${describeValue(ref.hash)}`);
  }
}

/** sha256 of `bytes`, lowercase hex. */
export function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** Default largest artifact: 64 MiB. */
export const DEFAULT_MAX_SIZE = 64 * 1024 * 1024;

/** Throws `VaultRefMismatchError` unless the stored version is the one `ref` names. */
export function checkRefMatches(ref: ArtifactRef, stored: ArtifactContent): void {
  const where = `${ref.enclave_id}/${ref.key}@${ref.version}`;
  if (stored.meta.hash !== ref.hash)
    throw new VaultRefMismatchError('hash', stored.meta.hash, ref.hash, where);
  if (typeof ref.size === 'number' && stored.meta.size !== ref.size) {
    throw new VaultRefMismatchError('size', String(stored.meta.size), String(ref.size), where);
  }
}

/** Throws `VaultIntegrityError` when stored bytes do not hash to their recorded hash. */
export function checkIntegrity(stored: ArtifactContent): void {
  const got = sha256Hex(stored.content);
  if (got !== stored.meta.hash || stored.content.length !== stored.meta.size) {
    throw new VaultIntegrityError(
      `${stored.meta.enclave_id}/${stored.meta.key}@${stored.meta.version}`,
      stored.meta.hash,
      got,
    );
  }
}
