// Shape and signature checks shared by the authority layer's signed statements (revocations, attestations).
import type { CryptoSuite } from '../crypto/suite.ts';
import { describeValue } from '../errors.ts';
import { isDid, publicKeyOfDid } from '../identity/did.ts';
import { canonicalize, fromB64u, utf8 } from './canonical.ts';

/** The bytes a statement's signature covers: `domain`, 0x00, canonical JSON of the statement without `sig`. */
export function statementSigningInput(domain: string, statement: Record<string, unknown>): Uint8Array {
  const { sig: _sig, ...unsigned } = statement;
  return utf8(`${domain}\0${canonicalize(unsigned)}`);
}

/**
 * Checks what every signed statement has: an object of only `fields`, `v` 1, a did:agentnexus
 * `iss`, integer `ts` and `exp`. Calls `fail` (which throws the caller's typed error) otherwise.
 */
export function checkStatementShape(
  raw: unknown,
  what: string,
  fields: readonly string[],
  fail: (message: string) => never,
): Record<string, unknown> {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) fail(`${what} expected an object`);
  const r = raw as Record<string, unknown>;
  for (const key of Object.keys(r)) if (!fields.includes(key)) fail(`${what} has an unknown field "${key}"`);
  if (r.v !== 1) fail(`${what} "v" expected 1, got ${describeValue(r.v)}`);
  if (!isDid(r.iss, 'agentnexus')) fail(`${what} "iss" expected a did:agentnexus DID`);
  for (const f of ['ts', 'exp']) {
    const n = r[f];
    if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0)
      fail(`${what} "${f}" expected ms since the epoch as an integer`);
  }
  return r;
}

/** Checks `sig` (64 bytes, base64url) against `iss` over the statement's signing input under `domain`. */
export function checkStatementSignature(
  r: Record<string, unknown>,
  what: string,
  domain: string,
  suite: CryptoSuite,
  fail: (message: string) => never,
): void {
  const sig = typeof r.sig === 'string' ? fromB64u(r.sig) : undefined;
  if (sig?.length !== 64) fail(`${what} "sig" expected 64 bytes in base64url`);
  if (!suite.verify(publicKeyOfDid(r.iss as string), statementSigningInput(domain, r), sig as Uint8Array))
    fail(`${what}'s signature does not verify against ${String(r.iss)}`);
}
