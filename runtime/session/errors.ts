// Typed refusals of session mode: handshake, replay, reorder, decryption and malformed frames.
import { AnxError } from '../errors.ts';

/** Base of session-mode errors; `code` says which failure. */
export class SessionError extends AnxError {}

/** A frame that is not a well-formed session frame (`ANX_SESSION_FRAME`). */
export class SessionFrameError extends SessionError {
  constructor(message: string) {
    super('ANX_SESSION_FRAME', message);
  }
}

/** A handshake message that does not verify or does not fit (`ANX_SESSION_HANDSHAKE`). */
export class SessionHandshakeError extends SessionError {
  constructor(message: string, options?: { cause?: unknown; hint?: string }) {
    super('ANX_SESSION_HANDSHAKE', message, options);
  }
}

/** A frame whose counter was already used: a replay (`ANX_SESSION_REPLAY`). */
export class SessionReplayError extends SessionError {
  constructor(counter: bigint, expected: bigint) {
    super(
      'ANX_SESSION_REPLAY',
      `session frame counter expected ${expected} or later, got ${counter}: a replayed frame`,
    );
  }
}

/** A frame that skips ahead of the next expected counter: reordered or after a loss (`ANX_SESSION_REORDER`). */
export class SessionReorderError extends SessionError {
  constructor(counter: bigint, expected: bigint) {
    super(
      'ANX_SESSION_REORDER',
      `session frame counter expected ${expected}, got ${counter}: a frame is missing or out of order`,
      { hint: 'the sender retransmits from the first unacknowledged message in a new session' },
    );
  }
}

/** A frame that does not authenticate under the session key (`ANX_SESSION_DECRYPT`). */
export class SessionDecryptError extends SessionError {
  constructor(message: string, cause?: unknown) {
    super('ANX_SESSION_DECRYPT', message, cause === undefined ? undefined : { cause });
  }
}

/** A data frame for a session this host does not know (`ANX_SESSION_UNKNOWN`). */
export class SessionUnknownError extends SessionError {
  constructor(sid: string) {
    super('ANX_SESSION_UNKNOWN', `session ${sid} expected to be established, got no such session`, {
      hint: 'the sender starts a new handshake',
    });
  }
}
