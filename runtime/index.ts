// Public entry of the runtime kernel: explicit named exports only; adding a name here is a decision.
export { type Clock, ManualClock, systemClock } from './clock.ts';
export {
  type CryptoSuite,
  createNobleSuite,
  createNodeSuite,
  defaultSuite,
  nobleSuite,
  nodeSuite,
} from './crypto/index.ts';
export {
  acceptEnvelope,
  createEnvelope,
  decodeEnvelope,
  type Envelope,
  EnvelopeError,
  encodeEnvelope,
  openSealed,
  seal,
  signEnvelope,
  verifyEnvelopeSignature,
} from './envelope/index.ts';
export { AnxError, isAnxError } from './errors.ts';
export { EVENT_KINDS, type EventKind, type EventV1 } from './events/event.ts';
export type { TraceFilter } from './events/log.ts';
export { Host, type HostOptions, type SendRequest } from './host.ts';
export { type Did, DidError, didFromPublicKey, isDid, parseDid, toDidKey } from './identity/did.ts';
export { type DidDocument, didDocument } from './identity/did-document.ts';
export { generateIdentity, type Identity, identityFromSeed } from './identity/keys.ts';
export { type KeyRecord, Keystore } from './identity/keystore.ts';
export {
  type ActorInfo,
  ActorSystem,
  type ActorSystemOptions,
  type MachineDefinition,
  type RemoteRouter,
} from './kernel/actor-system.ts';
export type { AppendEffect, EventEffect, KernelEffect, SendEffect } from './kernel/effects.ts';
export {
  ActorExistsError,
  ActorFailedError,
  MachineVersionError,
  UnknownActorError,
  UnknownMachineError,
} from './kernel/errors.ts';
export type { EnvelopeContext, KernelEnvelope } from './kernel/message.ts';
export { openStore, type Store } from './store/store.ts';
export { VERSION } from './version.ts';
