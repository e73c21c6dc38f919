// Typed errors of the authority layer: tokens, revocation, freeze, rate limits, audit and trust.
import { AnxError } from '../errors.ts';

/** Codes a capability token check can fail with (see docs/capability-tokens.md). */
export type TokenErrorCode =
  | 'ANX_TOKEN_INVALID'
  | 'ANX_TOKEN_EXPIRED'
  | 'ANX_TOKEN_NOT_YET_VALID'
  | 'ANX_TOKEN_REVOKED'
  | 'ANX_TOKEN_WIDENED'
  | 'ANX_TOKEN_AUDIENCE'
  | 'ANX_TOKEN_SCOPE'
  | 'ANX_REVOCATION_UNAVAILABLE'
  | 'ANX_REVOCATION_STALE';

/** A capability token that does not grant the request; `code` says why. */
export class TokenError extends AnxError {
  declare readonly code: TokenErrorCode;
  constructor(code: TokenErrorCode, message: string, options?: { cause?: unknown; hint?: string }) {
    super(code, message, options);
  }
}

/** A revocation that is malformed or not signed by its issuer (`ANX_REVOCATION_INVALID`). */
export class RevocationError extends AnxError {
  constructor(message: string, options?: { cause?: unknown; hint?: string }) {
    super('ANX_REVOCATION_INVALID', message, options);
  }
}

/** The host is frozen (read-only): writes are refused until `thaw` (`ANX_FROZEN`). */
export class FrozenError extends AnxError {
  constructor(action: string, since: number) {
    super(
      'ANX_FROZEN',
      `the host is frozen (read-only since ${new Date(since).toISOString()}), so "${action}" is refused`,
      {
        hint: 'reads and status still work; the operator can run `anx-runtime thaw` to allow writes again',
      },
    );
  }
}

/** A receiver's qps budget or concurrency limit is used up (`ANX_RATE_LIMITED`). */
export class RateLimitedError extends AnxError {
  constructor(
    message: string,
    /** How long to wait before a retry can succeed (ms). */
    readonly retryAfterMs: number,
  ) {
    super('ANX_RATE_LIMITED', message, { hint: `retry after ${retryAfterMs} ms, or send less often` });
  }
}

/** A trust attestation that is malformed or does not verify (`ANX_ATTESTATION_INVALID`). */
export class AttestationError extends AnxError {
  constructor(message: string, options?: { cause?: unknown; hint?: string }) {
    super('ANX_ATTESTATION_INVALID', message, options);
  }
}

/** Bad input to an authority call: the caller's mistake (`ANX_REQUEST_INVALID`). */
export class AuthorityRequestError extends AnxError {
  constructor(message: string, hint?: string) {
    super('ANX_REQUEST_INVALID', message, hint === undefined ? undefined : { hint });
  }
}
