// Typed errors of the envelope codec and receive pipeline: one class per failure, each with a stable code.
import { AnxError } from '../errors.ts';

/** Where a refused envelope came from, when the header got far enough to tell (never body or keys). */
export interface EnvelopeErrorContext {
  /** The claimed sender, once `from` was read as a well-formed string. */
  from?: string;
  /** The message id, once `id` was read as a well-formed string. */
  id?: string;
}

interface EnvelopeErrorOptions extends EnvelopeErrorContext {
  cause?: unknown;
  hint?: string;
}

/**
 * Base of every envelope failure: catch `EnvelopeError` to handle them all, or a subclass for one.
 * `from` and `id` are set when the header was readable, so the kernel can attribute the event.
 */
export class EnvelopeError extends AnxError {
  readonly from: string | undefined;
  readonly id: string | undefined;

  constructor(code: string, message: string, options: EnvelopeErrorOptions = {}) {
    super(code, message, options);
    this.from = options.from;
    this.id = options.id;
  }
}

/** Bytes that are not one well-formed msgpack map: truncated, garbage, trailing data, not a map. */
export class EnvelopeDecodeError extends EnvelopeError {
  static readonly code = 'ANX_ENVELOPE_DECODE';
  constructor(message: string, options?: EnvelopeErrorOptions) {
    super(EnvelopeDecodeError.code, message, options);
  }
}

/** Input larger than the configured maximum; refused before any decoding work. */
export class EnvelopeTooLargeError extends EnvelopeError {
  static readonly code = 'ANX_ENVELOPE_TOO_LARGE';
  constructor(message: string, options?: EnvelopeErrorOptions) {
    super(EnvelopeTooLargeError.code, message, options);
  }
}

/** `v` is missing or names a version this implementation does not speak. */
export class EnvelopeVersionError extends EnvelopeError {
  static readonly code = 'ANX_ENVELOPE_VERSION';
  constructor(message: string, options?: EnvelopeErrorOptions) {
    super(EnvelopeVersionError.code, message, options);
  }
}

/** A field is missing, has the wrong type or shape, or is not part of the format. */
export class EnvelopeFieldError extends EnvelopeError {
  static readonly code = 'ANX_ENVELOPE_FIELD';
  /** Wire name of the offending field (`ctx.stage` for a ctx key). */
  readonly field: string;
  constructor(field: string, message: string, options?: EnvelopeErrorOptions) {
    super(EnvelopeFieldError.code, message, options);
    this.field = field;
  }
}

/** The signature is missing or does not verify against the key in `from`. */
export class EnvelopeSignatureError extends EnvelopeError {
  static readonly code = 'ANX_ENVELOPE_SIGNATURE';
  constructor(message: string, options?: EnvelopeErrorOptions) {
    super(EnvelopeSignatureError.code, message, options);
  }
}

/** `from` is not a DID a key can be read from, or (when signing) does not belong to the signing key. */
export class EnvelopeSenderKeyError extends EnvelopeError {
  static readonly code = 'ANX_ENVELOPE_SENDER_KEY';
  constructor(message: string, options?: EnvelopeErrorOptions) {
    super(EnvelopeSenderKeyError.code, message, options);
  }
}

/** `ts` lies outside the receiver's replay window. */
export class EnvelopeReplayWindowError extends EnvelopeError {
  static readonly code = 'ANX_ENVELOPE_REPLAY_WINDOW';
  constructor(message: string, options?: EnvelopeErrorOptions) {
    super(EnvelopeReplayWindowError.code, message, options);
  }
}

/** This sender's `id` was already accepted. */
export class EnvelopeDuplicateError extends EnvelopeError {
  static readonly code = 'ANX_ENVELOPE_DUPLICATE';
  constructor(message: string, options?: EnvelopeErrorOptions) {
    super(EnvelopeDuplicateError.code, message, options);
  }
}

/** A sealed body could not be opened: no key, wrong key, or tampered ciphertext, nonce or epk. */
export class EnvelopeDecryptError extends EnvelopeError {
  static readonly code = 'ANX_ENVELOPE_DECRYPT';
  constructor(message: string, options?: EnvelopeErrorOptions) {
    super(EnvelopeDecryptError.code, message, options);
  }
}

/** `exp` has passed. */
export class EnvelopeExpiredError extends EnvelopeError {
  static readonly code = 'ANX_ENVELOPE_EXPIRED';
  constructor(message: string, options?: EnvelopeErrorOptions) {
    super(EnvelopeExpiredError.code, message, options);
  }
}

/** Every code the envelope layer raises, for tables and exhaustive tests. */
export const ENVELOPE_ERROR_CODES = [
  EnvelopeDecodeError.code,
  EnvelopeTooLargeError.code,
  EnvelopeVersionError.code,
  EnvelopeFieldError.code,
  EnvelopeSignatureError.code,
  EnvelopeSenderKeyError.code,
  EnvelopeReplayWindowError.code,
  EnvelopeDuplicateError.code,
  EnvelopeDecryptError.code,
  EnvelopeExpiredError.code,
] as const;

/** One of `ENVELOPE_ERROR_CODES`. */
export type EnvelopeErrorCode = (typeof ENVELOPE_ERROR_CODES)[number];
