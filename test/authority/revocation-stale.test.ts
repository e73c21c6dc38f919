// Fail-closed revocation: while a host's revocation feed is out of sync with the relay for longer than allowed, tokens
// with a link issued on another host are refused (ANX_REVOCATION_STALE, audited); tokens of its own DIDs stay checkable.
import { describe, expect, it } from 'vitest';
import { Host } from '../../runtime/host.ts';
import { waitFor } from '../helpers/daemon.ts';
import { tempDir } from '../helpers/tmp.ts';
import { twoLeafRelay } from './relay-fixture.ts';
import { closeHost, closeHosts, codeOf, identities, openHost } from './tokens-fixture.ts';

/** Short enough for a test; the default is 5 minutes. */
const MAX_STALENESS_MS = 1_500;

const relay = twoLeafRelay();

const join = (url: string) =>
  relay.join(url, { relay: { revocationMaxStalenessMs: MAX_STALENESS_MS }, synced: true });

describe('revocation list staleness', () => {
  it('refuses tokens issued on another host while the feed is out of sync, and accepts them again once it caught up', async () => {
    const a = await join(relay.leaf(0).url);
    const b = await join(relay.leaf(1).url);
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
    await relay.hub.stop();
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
    // Showing the token says its status cannot be told now, not that it is revoked.
    expect(b.host.authority.inspectToken(foreign)).toMatchObject({ valid_now: false, revoked: null });
    expect(b.host.authority.inspectToken(foreign).unverifiable).toContain('revocation list');
    expect(b.host.authority.inspectToken(local)).toMatchObject({ valid_now: true, unverifiable: null });

    await relay.hub.restart();
    await waitFor(
      () => check(foreign, remoteOwner) === 'ALLOWED',
      60_000,
      'acceptance after the hub is back',
    );

    // The same when the host's own leaf goes away.
    await relay.leaf(1).stop();
    await waitFor(() => check(foreign, remoteOwner) === 'ANX_REVOCATION_STALE', 30_000, 'the stale refusal');
    expect(check(local, localOwner)).toBe('ALLOWED');
    await relay.leaf(1).restart();
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

  it('judges staleness on the host clock, by who issued each link, and remembers the last sync across a restart', async () => {
    const here = await openHost();
    const there = await openHost({ clock: here.clock });
    try {
      const [owner, worker] = await identities(here.host, 2);
      const [stranger] = await identities(there.host, 1);
      const revocations = here.host.authority.revocations;
      let syncedAt = here.clock.now();
      revocations.setFreshness({
        syncedAt: () => syncedAt,
        maxStalenessMs: 1_000,
        isLocal: (did) => here.host.keystore.has(did),
      });
      const request = {
        actor: worker as string,
        owner: owner as string,
        resource: 'vault:enc1',
        action: 'vault.put',
      };
      const local = here.host.authority.tokens.issue({
        issuer: owner as string,
        audience: worker as string,
        resource: 'vault:enc1',
        actions: ['vault.put'],
      }).token;
      // Owned here, but one link was signed on the other host: the chain is not all local.
      const viaStranger = there.host.authority.tokens.delegate({
        parent: here.host.authority.tokens.issue({
          issuer: owner as string,
          audience: stranger as string,
          resource: 'vault:enc1',
          actions: ['vault.put'],
        }).token,
        audience: worker as string,
      }).token;
      const check = (token: string) =>
        codeOf(() => here.host.authority.tokens.check(token, request, { audit: false }));
      here.clock.advance(1_000);
      expect([check(local), check(viaStranger)]).toEqual(['ALLOWED', 'ALLOWED']);
      here.clock.advance(1);
      expect([check(local), check(viaStranger)]).toEqual(['ALLOWED', 'ANX_REVOCATION_STALE']);
      syncedAt = here.clock.now();
      expect(check(viaStranger)).toBe('ALLOWED');

      revocations.recordSyncedAt(syncedAt);
      await closeHost(here.host);
      const again = await openHost({ dir: here.dir, clock: here.clock });
      expect(again.host.authority.revocations.lastSyncedAt).toBe(syncedAt);
    } finally {
      await closeHosts();
    }
  });
});
