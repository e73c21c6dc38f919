// Public entry of the envelope layer: wire format v1, codec, signing, sealed mode and the receive pipeline.
export {
  DEFAULT_MAX_ENVELOPE_BYTES,
  type DecodeOptions,
  decodeBody,
  decodeEnvelope,
  decodeSealedContent,
  encodeBody,
  encodeEnvelope,
  encodeSealedContent,
  MAX_BODY_BYTES,
} from './codec.ts';
export { createEnvelope, type EnvelopeInit } from './create.ts';
export {
  BATCH_TYPE,
  CONTEXT_KEYS,
  type ContextKey,
  ENVELOPE_VERSION,
  type Envelope,
  type EnvelopeContext,
  newEnvelopeId,
  SEALED_ENC,
  SEALED_TYPE,
  type SealedContent,
} from './envelope.ts';
export {
  ENVELOPE_ERROR_CODES,
  EnvelopeDecodeError,
  EnvelopeDecryptError,
  EnvelopeDuplicateError,
  EnvelopeError,
  type EnvelopeErrorCode,
  type EnvelopeErrorContext,
  EnvelopeExpiredError,
  EnvelopeFieldError,
  EnvelopeReplayWindowError,
  EnvelopeSenderKeyError,
  EnvelopeSignatureError,
  EnvelopeTooLargeError,
  EnvelopeVersionError,
} from './errors.ts';
export {
  type AcceptedEnvelope,
  type AcceptOptions,
  acceptEnvelope,
  type EnvelopeErrorEvent,
  envelopeErrorEvent,
} from './receive.ts';
export {
  DEFAULT_REPLAY_WINDOW_MS,
  MemoryReplayGuard,
  type MemoryReplayGuardOptions,
  type ReplayGuard,
} from './replay.ts';
export {
  type OpenedEnvelope,
  type OpenOptions,
  openSealed,
  SEAL_INFO,
  type SealOptions,
  seal,
  sealKey,
} from './seal.ts';
export {
  AAD_PREFIX,
  envelopeAad,
  envelopeSigningInput,
  SIGNING_PREFIX,
  senderPublicKey,
  signEnvelope,
  verifyEnvelopeSignature,
} from './signing.ts';
export {
  FIELD_LIMITS,
  isActorAddress,
  isEnvelopeId,
  isWireDid,
  validateEnvelope,
  validateSealedContent,
  validateSessionEnvelope,
} from './validate.ts';
