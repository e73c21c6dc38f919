// Fail-closed revocation: while a host's revocation feed is out of sync with the relay for longer than allowed, tokens
// with a link issued on another host are refused (ANX_REVOCATION_STALE, audited); tokens of its own DIDs stay checkable.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { joinRelay, type RelayConnection } from '../../bridge/relay/join.ts';
import { Host } from '../../runtime/host.ts';
import { waitFor } from '../helpers/daemon.ts';
import { startHub, startLeaf, stopAllNats, type TestHub, type TestLeaf } from '../helpers/nats.ts';
import { cleanupTempDirs, tempDir } from '../helpers/tmp.ts';
import { codeOf } from './tokens-fixture.ts';

interface Joined {
  host: Host;
  conn: RelayConnection;
}

/** Short enough for a test; the default is 5 minutes. */
const MAX_STALENESS_MS = 1_500;

let hub: TestHub;
let leaves: TestLeaf[];
const joined: Joined[] = [];

async function join(natsUrl: string): Promise<Joined> {
  const dataDir = tempDir('anx-stale-');
  const conn = await joinRelay({
    dataDir,
    natsUrl,
    heartbeatMs: 300,
    relay: { revocationMaxStalenessMs: MAX_STALENESS_MS },
  });
  const host = await Host.open({ dataDir, router: conn.relay, noSync: true });
  conn.relay.bind(host);
  await conn.relay.start();
  const j = { host, conn };
  joined.push(j);
  expect(await conn.relay.revocations?.waitSynced(30_000)).toBe(true);
  return j;
}

beforeAll(async () => {
  hub = await startHub();
  leaves = [await startLeaf(hub), await startLeaf(hub)];
}, 120_000);

afterAll(async () => {
  for (const { host, conn } of joined.splice(0)) {
    await conn.close().catch(() => {});
    await host.close().catch(() => {});
  }
  await stopAllNats();
  cleanupTempDirs();
});

describe('revocation list staleness', () => {
  it('refuses tokens issued on another host while the feed is out of sync, and accepts them again once it caught up', async () => {
    const a = await join((leaves[0] as TestLeaf).url);
    const b = await join((leaves[1] as TestLeaf).url);
    const remoteOwner = (await a.host.createIdentity({ name: 'remote-owner' })).did;
    const worker = (await b.host.createIdentity({ name: 'worker' })).did;
    const localOwner = (await b.host.createIdentity({ name: 'local-owner' })).did;
    const grant = (issuer: Host, owner: string) =>
      issuer.authority.tokens.issue({
        issuer: owner,
        audience: worker,
        resource: 'vault:enc1',
        actions: ['vault.put'],
      }).token;
    const foreign = grant(a.host, remoteOwner);
    const local = grant(b.host, localOwner);
    const check = (token: string, owner: string, audit = false) =>
      codeOf(() =>
        b.host.authority.tokens.check(
          token,
          { actor: worker, owner, resource: 'vault:enc1/x', action: 'vault.put' },
          { audit },
        ),
      );
    expect(check(foreign, remoteOwner)).toBe('ALLOWED');

    // The hub goes away: B's leaf stays up, but the bucket no longer answers.
    await hub.stop();
    await waitFor(() => check(foreign, remoteOwner) === 'ANX_REVOCATION_STALE', 30_000, 'the stale refusal');
    // Its own DIDs' tokens are still checked against the local list, which is complete for them.
    expect(check(local, localOwner)).toBe('ALLOWED');
    let refusal: unknown;
    try {
      b.host.authority.tokens.check(foreign, {
        actor: worker,
        owner: remoteOwner,
        resource: 'vault:enc1/x',
        action: 'vault.put',
      });
    } catch (err) {
      refusal = err;
    }
    expect(refusal).toMatchObject({ code: 'ANX_REVOCATION_STALE' });
    expect((refusal as Error).message).toContain(remoteOwner);
    expect((refusal as { hint?: string }).hint).toContain('relay');
    expect(b.host.authority.audit.list({ action: 'token.check', decision: 'deny' })).toMatchObject([
      { code: 'ANX_REVOCATION_STALE', actor: worker, principal: remoteOwner },
    ]);

    await hub.restart();
    await waitFor(
      () => check(foreign, remoteOwner) === 'ALLOWED',
      60_000,
      'acceptance after the hub is back',
    );

    // The same when the host's own leaf goes away.
    await (leaves[1] as TestLeaf).stop();
    await waitFor(() => check(foreign, remoteOwner) === 'ANX_REVOCATION_STALE', 30_000, 'the stale refusal');
    expect(check(local, localOwner)).toBe('ALLOWED');
    await (leaves[1] as TestLeaf).restart();
    await waitFor(
      () => check(foreign, remoteOwner) === 'ALLOWED',
      60_000,
      'acceptance after the leaf is back',
    );
  }, 240_000);

  it('applies no staleness rule on a host without a relay', async () => {
    const host = await Host.open({ dataDir: tempDir('anx-alone-'), noSync: true });
    try {
      const owner = (await host.createIdentity({ name: 'owner' })).did;
      const worker = (await host.createIdentity({ name: 'worker' })).did;
      const { token } = host.authority.tokens.issue({
        issuer: owner,
        audience: worker,
        resource: 'vault:enc1',
        actions: ['vault.put'],
      });
      expect(
        codeOf(() =>
          host.authority.tokens.check(token, {
            actor: worker,
            owner,
            resource: 'vault:enc1',
            action: 'vault.put',
          }),
        ),
      ).toBe('ALLOWED');
    } finally {
      await host.close();
    }
  });
});
