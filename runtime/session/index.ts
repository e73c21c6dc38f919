// Public entry of session mode: the handshake, the session cipher, frames and their errors.
export {
  SessionDecryptError,
  SessionError,
  SessionFrameError,
  SessionHandshakeError,
  SessionReorderError,
  SessionReplayError,
  SessionUnknownError,
} from './errors.ts';
export {
  type AcceptFrame,
  DATA_HEADER_BYTES,
  type DataFrame,
  decodeAccept,
  decodeData,
  decodeHello,
  FRAME_ACCEPT,
  FRAME_DATA,
  FRAME_HELLO,
  frameType,
  type HelloFrame,
  SID_BYTES,
  sidText,
} from './frame.ts';
export {
  ACCEPT_PREFIX,
  acceptTranscript,
  answerHandshake,
  completeHandshake,
  deriveSessionKeys,
  HELLO_PREFIX,
  helloTranscript,
  KEYS_INFO,
  type PendingHello,
  type SessionKeys,
  type Signer,
  startHandshake,
} from './handshake.ts';
export { frameNonce, nextEpochKey, rekeyInfo, Session, type SessionOptions } from './session.ts';
