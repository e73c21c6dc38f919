// Trust attestations over the relay: every host puts the attestations its DIDs sign into a JetStream KV bucket and watches the others' into its trust store.
import { jetstream } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import type { Attestation, TrustStore } from '../../runtime/authority/index.ts';
import { AttestationError, verifyAttestation } from '../../runtime/authority/index.ts';
import type { Clock } from '../../runtime/clock.ts';
import type { CryptoSuite } from '../../runtime/crypto/suite.ts';
import { AnxError } from '../../runtime/errors.ts';
import { JETSTREAM_DOMAIN } from './nats-server.ts';
import { ATTESTATION_BUCKET, didKey } from './subjects.ts';

type KV = Awaited<ReturnType<Kvm['create']>>;

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
  private kv: KV | undefined;
  private stopped = false;
  private readonly unsubscribe: () => void;

  constructor(
    private readonly nc: NatsConnection,
    private readonly trust: TrustStore,
    private readonly suite: CryptoSuite,
    private readonly clock: Clock,
    private readonly isLocal: (did: string) => boolean,
    private readonly onInvalid: (key: string, error: AnxError) => void,
  ) {
    this.unsubscribe = trust.onAttestation((att, origin) => {
      if (origin === 'local') void this.publish(att).catch(() => {});
    });
  }

  /** Opens the bucket and starts the watch; retries in the background while the hub is away. */
  start(): void {
    void this.run();
  }

  stop(): void {
    this.stopped = true;
    this.unsubscribe();
  }

  async publish(att: Attestation): Promise<void> {
    const kv = await this.open();
    await kv.put(attestationKey(att), new TextEncoder().encode(JSON.stringify(att)));
  }

  private async open(): Promise<KV> {
    this.kv ??= await new Kvm(jetstream(this.nc, { domain: JETSTREAM_DOMAIN, timeout: 5_000 })).create(
      ATTESTATION_BUCKET,
      { history: 1 },
    );
    return this.kv;
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      try {
        const kv = await this.open();
        for (const att of this.trust.attestations()) if (this.isLocal(att.iss)) await this.publish(att);
        for await (const entry of await kv.watch()) {
          if (this.stopped) break;
          if (entry.operation === 'PUT') this.take(entry.key, entry.value);
        }
      } catch {
        this.kv = undefined;
      }
      if (!this.stopped) await new Promise((r) => setTimeout(r, 1_000));
    }
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
