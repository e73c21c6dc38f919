// Shared set-up of authority tests over a real relay: a hub with two leaves, and in-process hosts joined to them.
import { afterAll, beforeAll } from 'vitest';
import { joinRelay, type RelayConnection } from '../../bridge/relay/join.ts';
import type { RelayOptions } from '../../bridge/relay/relay.ts';
import { Host } from '../../runtime/host.ts';
import { startHub, startLeaf, stopAllNats, type TestHub, type TestLeaf } from '../helpers/nats.ts';
import { cleanupTempDirs, tempDir } from '../helpers/tmp.ts';

export interface Joined {
  host: Host;
  conn: RelayConnection;
}

export interface TwoLeafRelay {
  /** The hub (started before the file's tests). */
  readonly hub: TestHub;
  /** Leaf 0 or 1. */
  leaf(index: 0 | 1): TestLeaf;
  /**
   * Joins a new host through `natsUrl` (closed after the file's tests); with `synced`, resolves once
   * its revocation feed has read the bucket.
   */
  join(
    natsUrl: string,
    options?: { relay?: Omit<RelayOptions, 'transport' | 'nc'>; synced?: boolean },
  ): Promise<Joined>;
  /** Hosts joined so far, in order. */
  readonly joined: readonly Joined[];
}

/**
 * Registers `beforeAll`/`afterAll` hooks that start a hub with two leaves and close every joined
 * host and nats-server afterwards. Call at the top of a test file.
 */
export function twoLeafRelay(): TwoLeafRelay {
  let hub: TestHub | undefined;
  const leaves: TestLeaf[] = [];
  const joined: Joined[] = [];
  beforeAll(async () => {
    hub = await startHub();
    leaves.push(await startLeaf(hub), await startLeaf(hub));
  }, 120_000);
  afterAll(async () => {
    for (const { host, conn } of joined.splice(0)) {
      await conn.close().catch(() => {});
      await host.close().catch(() => {});
    }
    await stopAllNats();
    cleanupTempDirs();
  });
  return {
    get hub() {
      if (hub === undefined) throw new Error('the hub starts in beforeAll');
      return hub;
    },
    leaf: (index) => leaves[index] as TestLeaf,
    joined,
    async join(natsUrl, { relay, synced } = {}) {
      const dataDir = tempDir('anx-relay-host-');
      const conn = await joinRelay({
        dataDir,
        natsUrl,
        heartbeatMs: 300,
        ...(relay === undefined ? {} : { relay }),
      });
      const host = await Host.open({ dataDir, router: conn.relay, noSync: true });
      conn.relay.bind(host);
      await conn.relay.start();
      const j = { host, conn };
      joined.push(j);
      if (synced === true && (await conn.relay.revocations?.waitSynced(30_000)) !== true)
        throw new Error('the revocation feed did not sync');
      return j;
    },
  };
}
