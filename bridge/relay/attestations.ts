// Trust attestations over the relay: every host puts the attestations its DIDs sign into a JetStream KV bucket and watches the others' into its trust store.
import type { NatsConnection } from '@nats-io/transport-node';
import type { Attestation, TrustStore } from '../../runtime/authority/index.ts';
import { AttestationError, verifyAttestation } from '../../runtime/authority/index.ts';
import type { Clock } from '../../runtime/clock.ts';
import type { CryptoSuite } from '../../runtime/crypto/suite.ts';
import { AnxError } from '../../runtime/errors.ts';
import { Bucket, removedEntry } from './kv-bucket.ts';
import { ATTESTATION_BUCKET, didKey } from './subjects.ts';

/** KV key of an attestation: `<subject multikey>.<issuer multikey>` (the newest per issuer and subject). */
export function attestationKey(att: Pick<Attestation, 'sub' | 'iss'>): string {
  return `${didKey(att.sub)}.${didKey(att.iss)}`;
}

/**
 * Shares the web of trust: attestations signed by this host's DIDs are put into `ATTESTATION_BUCKET`
 * as they are made (and again after every reconnect, for those made while the hub was away); the
 * watch verifies every other entry (shape, signature, key) and stores it in the trust store, where it
 * counts by how much this host trusts its issuer. Invalid entries are reported and ignored; expired
 * ones are skipped, and stop counting anyway once their `exp` passes.
 */
export class AttestationFeed {
  private readonly bucket: Bucket;
  private stopped = false;
  private readonly unsubscribe: () => void;

  constructor(
    nc: NatsConnection,
    private readonly trust: TrustStore,
    private readonly suite: CryptoSuite,
    private readonly clock: Clock,
    private readonly isLocal: (did: string) => boolean,
    private readonly onInvalid: (key: string, error: AnxError) => void,
  ) {
    this.bucket = new Bucket(nc, ATTESTATION_BUCKET, { history: 1 });
    this.unsubscribe = trust.onAttestation((att, origin) => {
      if (origin === 'local') void this.publish(att).catch(() => {});
    });
  }

  /** Opens the bucket and starts the watch; retries in the background while the hub is away. */
  start(): void {
    void this.bucket.follow({
      stopped: () => this.stopped,
      begin: async () => {
        for (const att of this.trust.attestations()) if (this.isLocal(att.iss)) await this.publish(att);
      },
      onEntry: (entry) => this.take(entry.key, entry.value),
      // An attestation stays in force until replaced or expired: a removal changes nothing here, and
      // this host puts back those its DIDs made.
      onRemoved: async (key, operation) => {
        const att = this.trust.attestations().find((a) => attestationKey(a) === key);
        const restore = att !== undefined && this.isLocal(att.iss);
        if (restore) await this.publish(att).catch(() => {});
        this.onInvalid(key, removedEntry(ATTESTATION_BUCKET, key, operation, restore, att !== undefined));
      },
    });
  }

  stop(): void {
    this.stopped = true;
    this.unsubscribe();
  }

  async publish(att: Attestation): Promise<void> {
    await this.bucket.putJson(attestationKey(att), att);
  }

  private take(key: string, value: Uint8Array): void {
    try {
      let raw: unknown;
      try {
        raw = JSON.parse(new TextDecoder().decode(value));
      } catch (cause) {
        throw new AttestationError('an attestation expected JSON', { cause });
      }
      const att = verifyAttestation(raw, this.suite);
      if (key !== attestationKey(att))
        throw new AttestationError(`an attestation was stored under a key (${key}) that does not name it`);
      // Expired ones count for nothing: skipped, not reported.
      if (att.exp <= this.clock.now()) return;
      this.trust.addAttestation(att);
    } catch (err) {
      this.onInvalid(
        key,
        err instanceof AnxError ? err : new AttestationError(String((err as Error)?.message ?? err)),
      );
    }
  }
}
