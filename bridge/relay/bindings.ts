// Bindings over the relay: Owner→agent bindings and their unbindings, in a JetStream KV bucket every host watches into LMDB.
import type { NatsConnection } from '@nats-io/transport-node';
import type {
  BindingDistributor,
  Bindings,
  SignedBinding,
  SignedUnbinding,
} from '../../runtime/authority/binding.ts';
import { AnxError } from '../../runtime/errors.ts';
import { Bucket, removedEntry } from './kv-bucket.ts';

/** JetStream KV bucket of signed bindings (`b.<id>`) and unbindings (`u.<id>`). */
export const BINDING_BUCKET = 'anx_v1_bindings';

/**
 * Distributes the bindings this host's Owners sign, and their unbindings, and stores every valid one
 * another host put (signatures are verified on import; a forged entry is reported and ignored). After
 * a reconnect this host's own entries are put again, for those made while the hub was away. Expiry
 * needs no distribution: it is checked at every use.
 */
export class BindingFeed implements BindingDistributor {
  private readonly bucket: Bucket;
  private stopped = false;

  constructor(
    nc: NatsConnection,
    private readonly bindings: Bindings,
    private readonly isLocal: (did: string) => boolean,
    private readonly onInvalid: (key: string, error: AnxError) => void,
  ) {
    this.bucket = new Bucket(nc, BINDING_BUCKET, { history: 1 });
    bindings.distributor = this;
  }

  start(): void {
    void this.run();
  }

  stop(): void {
    this.stopped = true;
    if (this.bindings.distributor === this) this.bindings.distributor = undefined;
  }

  publish(kind: 'binding' | 'unbinding', value: SignedBinding | SignedUnbinding): void {
    void this.put(kind, value).catch(() => {});
  }

  private async put(kind: 'binding' | 'unbinding', value: SignedBinding | SignedUnbinding): Promise<void> {
    const key =
      kind === 'binding'
        ? `b.${(value as SignedBinding).id}`
        : `u.${(value as SignedUnbinding).statement.binding_id}`;
    await this.bucket.putJson(key, value);
  }

  private async run(): Promise<void> {
    await this.bucket.follow({
      stopped: () => this.stopped,
      // Entries of this host's Owners go out again after every (re)connect.
      begin: async () => {
        for (const view of this.bindings.list()) {
          if (!this.isLocal(view.statement.owner)) continue;
          await this.put('binding', view);
          const unbinding = this.bindings.unbinding(view.id);
          if (unbinding !== undefined) await this.put('unbinding', unbinding);
        }
      },
      onEntry: (entry) => this.take(entry.key, entry.value),
      // Bindings and unbindings are never withdrawn (an unbinding ends a binding): a removal changes
      // nothing here, and this host puts back the entries of its Owners.
      onRemoved: async (key, operation) => {
        const id = key.slice(2);
        const view = this.bindings.list().find((v) => v.id === id);
        const value = key.startsWith('b.')
          ? view
          : key.startsWith('u.')
            ? this.bindings.unbinding(id)
            : undefined;
        const restore = view !== undefined && value !== undefined && this.isLocal(view.statement.owner);
        if (restore) await this.put(key.startsWith('b.') ? 'binding' : 'unbinding', value).catch(() => {});
        this.onInvalid(key, removedEntry(this.bucket.name, key, operation, restore, value !== undefined));
      },
    });
  }

  private async take(key: string, value: Uint8Array): Promise<void> {
    try {
      const raw = JSON.parse(new TextDecoder().decode(value)) as unknown;
      if (key.startsWith('b.')) {
        const b = raw as SignedBinding;
        if (key !== `b.${b?.id}`)
          throw new AnxError('ANX_BINDING_INVALID', `entry ${key} does not name its binding`);
        await this.bindings.import(b);
      } else if (key.startsWith('u.')) {
        const u = raw as SignedUnbinding;
        if (key !== `u.${u?.statement?.binding_id}`)
          throw new AnxError('ANX_BINDING_INVALID', `entry ${key} does not name its binding`);
        // An unbinding may arrive before its binding (another key): it is applied once both are here.
        await this.bindings.importUnbinding(u);
      }
    } catch (err) {
      this.onInvalid(key, err instanceof AnxError ? err : new AnxError('ANX_BINDING_INVALID', String(err)));
    }
  }
}
