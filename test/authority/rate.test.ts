// Receiver rate limits: token buckets on the card's qps and concurrency, ANX_RATE_LIMITED with a retry hint, audited and
// lowering the sender's trust, enforced on host.receive without losing the refused envelope.
import { afterEach, describe, expect, it } from 'vitest';
import { localCards } from '../../bridge/relay/local-cards.ts';
import { NEUTRAL_TRUST } from '../../runtime/authority/trust.ts';
import { createEnvelope, encodeEnvelope, signEnvelope } from '../../runtime/envelope/index.ts';
import { generateIdentity } from '../../runtime/identity/keys.ts';
import { cleanupTempDirs } from '../helpers/tmp.ts';
import { closeHost, closeHosts, codeOf, identities, openHost } from './tokens-fixture.ts';

afterEach(async () => {
  await closeHosts();
  cleanupTempDirs();
});

describe('rate limits', () => {
  it('holds a recipient to its qps budget, refilling over time, with a retry hint', async () => {
    const { host, clock } = await openHost();
    const limits = host.authority.rateLimits;
    const [bob] = (await identities(host, 1)) as [string];
    const sender = generateIdentity(host.suite).did;
    const card = { did: bob, qps: 2, concurrency: 0 };
    limits.take(sender, card).release();
    limits.take(sender, card).release();
    let err: unknown;
    try {
      limits.take(sender, card);
    } catch (e) {
      err = e;
    }
    expect(err).toMatchObject({ code: 'ANX_RATE_LIMITED', retryAfterMs: 500 });
    clock.advance(499);
    expect(codeOf(() => limits.take(sender, card))).toBe('ANX_RATE_LIMITED');
    clock.advance(1);
    expect(codeOf(() => limits.take(sender, card).release())).toBe('ALLOWED');
  });

  it('holds a recipient to its concurrency limit until permits are released', async () => {
    const { host } = await openHost();
    const limits = host.authority.rateLimits;
    const [bob] = (await identities(host, 1)) as [string];
    const sender = generateIdentity(host.suite).did;
    const card = { did: bob, qps: 0, concurrency: 2 };
    const one = limits.take(sender, card);
    const two = limits.take(sender, card);
    expect(codeOf(() => limits.take(sender, card))).toBe('ANX_RATE_LIMITED');
    one.release();
    one.release();
    const three = limits.take(sender, card);
    expect(codeOf(() => limits.take(sender, card))).toBe('ANX_RATE_LIMITED');
    two.release();
    three.release();
    expect(codeOf(() => limits.take(sender, card).release())).toBe('ALLOWED');
  });

  it("audits refusals and lowers the sender's trust once per second, not once per message", async () => {
    const { host, clock } = await openHost();
    const [bob] = (await identities(host, 1)) as [string];
    const sender = generateIdentity(host.suite).did;
    const card = { did: bob, qps: 1, concurrency: 0 };
    host.authority.rateLimits.take(sender, card);
    for (let i = 0; i < 50; i++)
      expect(codeOf(() => host.authority.rateLimits.take(sender, card))).toBe('ANX_RATE_LIMITED');
    const denials = host.authority.audit.list({ action: 'message.receive', decision: 'deny' });
    expect(denials).toHaveLength(1);
    expect(denials[0]).toMatchObject({ actor: sender, principal: bob, code: 'ANX_RATE_LIMITED' });
    const after = host.authority.trust.score(sender);
    expect(after.score).toBeLessThan(NEUTRAL_TRUST);
    expect(after.breakdown.events).toEqual([expect.objectContaining({ kind: 'rate_limited', count: 1 })]);
    clock.advance(1_000);
    host.authority.rateLimits.take(sender, card);
    expect(codeOf(() => host.authority.rateLimits.take(sender, card))).toBe('ANX_RATE_LIMITED');
    expect(host.authority.audit.list({ action: 'message.receive' })[1]?.details).toMatchObject({
      refusedBefore: 49,
    });
  });

  it('enforces the card a local identity published on received envelopes, and takes a refused one again later', async () => {
    const { host, clock, dir } = await openHost();
    const [bob] = (await identities(host, 1)) as [string];
    await localCards(host).publish({ did: bob, qps: 1, concurrency: 4 });
    const stranger = generateIdentity(host.suite);
    const envelope = (text: string) =>
      encodeEnvelope(
        signEnvelope(
          createEnvelope({ type: 'message', from: stranger.did, to: bob, body: { text } }, { clock }),
          stranger.seed,
          host.suite,
        ),
      );
    expect(await host.receive(envelope('one'))).toMatchObject({ duplicate: false });
    const second = envelope('two');
    const refused = await host.receive(second).then(
      () => 'ALLOWED',
      (e: { code?: string }) => e.code,
    );
    expect(refused).toBe('ANX_RATE_LIMITED');
    clock.advance(1_000);
    // The refused envelope was not remembered as seen: its retry goes through.
    expect(await host.receive(second)).toMatchObject({ duplicate: false });
    await host.system.quiesce();
    expect(host.inbox(bob).messages.map((m) => (m.body as { text: string }).text)).toEqual(['one', 'two']);
    // The limits are persisted with the host.
    await host.authority.audit.flush();
    await closeHost(host);
    const { host: again } = await openHost({ dir, clock });
    expect(again.authority.rateLimits.limitsOf(bob)).toEqual({ did: bob, qps: 1, concurrency: 4 });
  });

  it('rejects malformed limits with a typed error', async () => {
    const { host } = await openHost();
    expect(() => host.authority.rateLimits.setLimits({ did: 'x', qps: -1, concurrency: 0 })).toThrow(
      expect.objectContaining({ code: 'ANX_REQUEST_INVALID' }),
    );
  });
});
