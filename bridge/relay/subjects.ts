// The relay's NATS subject scheme under `anx.v1.` (documented in docs/protocol.md, "Relay subjects").

import { describeValue } from '../../runtime/errors.ts';
import { parseDid } from '../../runtime/identity/did.ts';

export const SUBJECT_ROOT = 'anx.v1';

/** A DID's inbox: `anx.v1.inbox.<multikey>` (the multikey is base58, safe in a subject token). */
export function inboxSubject(did: string): string {
  return `${SUBJECT_ROOT}.inbox.${parseDid(did, 'did').multikey}`;
}

/** A host's control address (handshake answers, acknowledgements): `anx.v1.host.<hostId>`. */
export function hostSubject(hostId: string): string {
  if (!/^[A-Za-z0-9_-]{1,64}$/.test(hostId))
    throw new Error(`host id expected [A-Za-z0-9_-]{1,64}, got ${describeValue(hostId)}`);
  return `${SUBJECT_ROOT}.host.${hostId}`;
}

/** Heartbeats of one host: `anx.v1.presence.hb.<hostId>`; watchers subscribe `anx.v1.presence.hb.*`. */
export function presenceSubject(hostId: string): string {
  return `${SUBJECT_ROOT}.presence.hb.${hostId}`;
}

export const PRESENCE_WILDCARD = `${SUBJECT_ROOT}.presence.hb.*`;

/** A new watcher asks every host to announce itself now instead of at its next interval. */
export const PRESENCE_QUERY = `${SUBJECT_ROOT}.presence.query`;

/**
 * Offline mail from `from` to `to`, stored sealed in the JetStream stream `MAIL_STREAM`. The sender is
 * in the subject (it is in the clear header anyway) so the stream can cap what one sender stores for
 * one recipient.
 */
export function mailSubject(to: string, from: string): string {
  return `${SUBJECT_ROOT}.mail.${parseDid(to, 'to').multikey}.${parseDid(from, 'from').multikey}`;
}

/** Every sender's mail for `did`: the filter of its consumer. */
export function mailFilter(did: string): string {
  return `${SUBJECT_ROOT}.mail.${parseDid(did, 'did').multikey}.>`;
}

export const MAIL_STREAM = 'ANX_V1_MAIL';
export const MAIL_SUBJECTS = `${SUBJECT_ROOT}.mail.>`;

/** JetStream KV bucket of signed agent cards, keyed by multikey. */
export const DIRECTORY_BUCKET = 'anx_v1_directory';

/** JetStream KV bucket of signed capability-token revocations, keyed `<link id>.<issuer multikey>`. */
export const REVOCATION_BUCKET = 'anx_v1_revocations';

/** JetStream KV bucket of signed trust attestations, keyed `<subject multikey>.<issuer multikey>`. */
export const ATTESTATION_BUCKET = 'anx_v1_attestations';

/** JetStream KV bucket of signed push-webhook registrations, keyed by multikey. */
export const WEBHOOK_BUCKET = 'anx_v1_webhooks';

/** The KV key and durable consumer name of a DID: its multikey. */
export function didKey(did: string): string {
  return parseDid(did, 'did').multikey;
}
