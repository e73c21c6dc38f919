// The Delivery Manifest: signed by the run's coordinator DID when the completion reaches it, stored in the vault, verifiable by anyone.
import type { Database, Key } from 'lmdb';
import type { DeliveryManifestContent } from '../machines/playbook/run.ts';
import { defaultSuite } from '../runtime/crypto/index.ts';
import { publicKeyOfDid } from '../runtime/identity/did.ts';
import type { Keystore } from '../runtime/identity/keystore.ts';
import type { ActorSystem } from '../runtime/kernel/actor-system.ts';
import type { ArtifactRef } from '../runtime/vault/types.ts';
import { ManifestNotFoundError } from './errors.ts';
import type { InboxRecord, InboxTap } from './inbox-tap.ts';
import { canonicalJson, type PlaybookRuns } from './playbook-run.ts';
import type { VaultService } from './vault-service.ts';

/** A manifest with its signature: Ed25519 by `signer` over the UTF-8 canonical JSON (sorted keys) of `manifest`. */
export interface SignedManifest {
  manifest: DeliveryManifestContent;
  signer: string;
  alg: 'Ed25519';
  /** base64url */
  signature: string;
}

/** What the host keeps per run: the signed manifest and where it lies in the vault. */
export interface ManifestRecord {
  signed: SignedManifest;
  ref: ArtifactRef;
}

/** The vault key a run's manifest is written under. */
export function manifestKey(runId: string): string {
  return `manifest/${runId}.json`;
}

/** True when the signature is the signer DID's over exactly this manifest. */
export function verifyManifest(signed: SignedManifest): boolean {
  try {
    const message = new TextEncoder().encode(canonicalJson(signed.manifest));
    const signature = new Uint8Array(Buffer.from(signed.signature, 'base64url'));
    return (
      signed.alg === 'Ed25519' && defaultSuite().verify(publicKeyOfDid(signed.signer), message, signature)
    );
  } catch {
    return false;
  }
}

/** Watches coordinators' inboxes for `run.completed` and writes each run's signed manifest once. */
export class Manifests {
  private readonly db: Database<unknown, Key>;
  private readonly watched = new Set<string>();
  private readonly writing = new Set<string>();
  private readonly listeners = new Set<(runId: string, record: ManifestRecord) => void>();

  constructor(
    private readonly system: ActorSystem,
    private readonly keystore: Keystore,
    private readonly tap: InboxTap,
    private readonly vault: VaultService,
    private readonly runs: PlaybookRuns,
  ) {
    this.db = system.store.root.openDB({ name: 'manifests', useRecords: false } as never);
  }

  /** Starts watching a coordinator DID (idempotent); only local identities can sign. */
  watch(did: string): void {
    if (this.watched.has(did) || !this.keystore.has(did)) return;
    this.watched.add(did);
    this.tap.watch(did, ['run.completed'], (d, r) => {
      void this.onCompleted(d, r).catch((err) => {
        void this.system.emitEvent({
          kind: 'error',
          actor: d,
          payload: { code: 'ANX_MANIFEST_FAILED', message: (err as Error).message, id: r.id },
        });
      });
    });
  }

  /** Hears every manifest written from now on. */
  onManifest(listener: (runId: string, record: ManifestRecord) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  get(runId: string): ManifestRecord {
    // Not a run id (longer than any, or no string): no manifest, and no LMDB lookup of it.
    const record = (this.runs.has(runId) ? this.db.get(runId) : undefined) as ManifestRecord | undefined;
    if (record === undefined) {
      const state = this.runs.has(runId) ? this.runs.status(runId).state : 'unknown';
      throw new ManifestNotFoundError(runId, state);
    }
    return record;
  }

  has(runId: string): boolean {
    return this.runs.has(runId) && this.db.doesExist(runId);
  }

  private async onCompleted(did: string, record: InboxRecord): Promise<void> {
    const manifest = record.body as DeliveryManifestContent;
    const runId = manifest?.run_id;
    if (typeof runId !== 'string' || this.has(runId) || this.writing.has(runId)) return;
    // Only a run of this host that names this DID as its coordinator gets a signature.
    if (!this.runs.has(runId) || this.runs.context(runId).context.coordinator !== did) return;
    if (manifest.enclave_id === null) return;
    this.writing.add(runId);
    try {
      const signature = this.keystore.sign(did, new TextEncoder().encode(canonicalJson(manifest)));
      const signed: SignedManifest = {
        manifest,
        signer: did,
        alg: 'Ed25519',
        signature: Buffer.from(signature).toString('base64url'),
      };
      const ref = await this.vault.put(
        manifest.enclave_id,
        manifestKey(runId),
        {
          kind: 'delivery-manifest',
          content: `${JSON.stringify(signed, null, 2)}\n`,
          summary: `delivery manifest of ${runId}: ${manifest.final.length} final artifact(s), signed by ${did}`,
        },
        did,
        { run_id: runId, deferCommit: true },
      );
      const entry: ManifestRecord = { signed, ref };
      this.system.commits.put(this.db, runId, entry);
      await this.system.emitEvent({
        kind: 'status',
        actor: did,
        run_id: runId,
        payload: { state: 'run.manifest', ref, signer: did },
      });
      for (const l of this.listeners) l(runId, entry);
    } finally {
      this.writing.delete(runId);
    }
  }
}
