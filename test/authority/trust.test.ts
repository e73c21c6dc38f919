// Trust: scores from events that decay toward neutral on the host clock, signed attestations weighted by their issuer's
// standing, a breakdown that adds up, persistence across restarts, and discovery filtered by it.
import { afterEach, describe, expect, it } from 'vitest';
import { localCards } from '../../bridge/relay/local-cards.ts';
import { toB64u } from '../../runtime/authority/canonical.ts';
import { type Attestation, attestationSigningInput, NEUTRAL_TRUST } from '../../runtime/authority/trust.ts';
import { generateIdentity } from '../../runtime/identity/keys.ts';
import { cleanupTempDirs } from '../helpers/tmp.ts';
import { closeHost, closeHosts, identities, openHost } from './tokens-fixture.ts';

afterEach(async () => {
  await closeHosts();
  cleanupTempDirs();
});

const DAY = 24 * 60 * 60_000;

describe('trust', () => {
  it('starts neutral, moves with events, and explains itself in a breakdown that adds up', async () => {
    const { host } = await openHost();
    const trust = host.authority.trust;
    const worker = generateIdentity(host.suite).did;
    expect(trust.score(worker)).toMatchObject({
      score: NEUTRAL_TRUST,
      breakdown: { events: [], attestations: [], evidence: 0 },
    });
    for (let i = 0; i < 5; i++) trust.record(worker, 'success');
    const good = trust.score(worker).score;
    expect(good).toBeGreaterThan(NEUTRAL_TRUST);
    trust.record(worker, 'failure');
    trust.record(worker, 'timeout');
    const s = trust.score(worker);
    expect(s.score).toBeLessThan(good);
    expect(s.breakdown.events.map((e) => [e.kind, e.count])).toEqual([
      ['success', 5],
      ['failure', 1],
      ['timeout', 1],
    ]);
    const sum = s.breakdown.events.reduce((t, e) => t + e.contribution, 0);
    expect(s.breakdown.evidence).toBeCloseTo(sum, 3);
    trust.record(worker, 'bad_signature');
    expect(trust.score(worker).score).toBeLessThan(NEUTRAL_TRUST);
    expect(() => trust.record(worker, 'praise' as never)).toThrow(
      expect.objectContaining({ code: 'ANX_REQUEST_INVALID' }),
    );
    expect(() => trust.record('bob', 'success')).toThrow(
      expect.objectContaining({ code: 'ANX_REQUEST_INVALID' }),
    );
  });

  it('decays toward neutral as the host clock moves: half the evidence per half-life', async () => {
    const { host, clock } = await openHost();
    const trust = host.authority.trust;
    const worker = generateIdentity(host.suite).did;
    trust.record(worker, 'failure', 4);
    const fresh = trust.score(worker);
    clock.advance(trust.halfLifeMs);
    const later = trust.score(worker);
    expect(later.breakdown.evidence).toBeCloseTo(fresh.breakdown.evidence / 2, 3);
    expect(later.score).toBeGreaterThan(fresh.score);
    expect(later.breakdown.events[0]?.count).toBe(4);
    clock.advance(20 * trust.halfLifeMs);
    expect(trust.score(worker).score).toBeCloseTo(NEUTRAL_TRUST, 3);
  });

  it('keeps scores and attestations across a restart', async () => {
    const { host, clock, dir } = await openHost();
    const [me] = await identities(host, 1);
    const worker = generateIdentity(host.suite).did;
    host.authority.trust.record(worker, 'success', 3);
    host.authority.trust.attest({ issuer: me as string, subject: worker, value: 80, note: 'reliable' });
    const before = host.authority.trust.score(worker);
    await host.authority.trust.flush();
    await closeHost(host);
    const { host: again } = await openHost({ dir, clock });
    expect(again.authority.trust.score(worker)).toEqual(before);
  });

  it("counts attestations by their issuer's standing: local identities fully, strangers not at all, trusted peers in part", async () => {
    const { host, clock } = await openHost();
    const trust = host.authority.trust;
    const [me] = (await identities(host, 1)) as [string];
    const subject = generateIdentity(host.suite).did;
    const stranger = generateIdentity(host.suite);
    const peer = generateIdentity(host.suite);
    const signedBy = (id: typeof stranger, value: number, ts = clock.now()): Attestation => {
      const unsigned = { v: 1 as const, iss: id.did, sub: subject, value, ts, exp: ts + 30 * DAY };
      return { ...unsigned, sig: toB64u(host.suite.sign(id.seed, attestationSigningInput(unsigned))) };
    };
    expect(trust.addAttestation(signedBy(stranger, 100))).toBe(true);
    expect(trust.score(subject).score).toBe(NEUTRAL_TRUST);
    expect(trust.score(subject).breakdown.attestations[0]).toMatchObject({
      iss: stranger.did,
      attesterWeight: 0,
      contribution: 0,
    });

    for (let i = 0; i < 10; i++) trust.record(peer.did, 'success');
    expect(trust.addAttestation(signedBy(peer, 100))).toBe(true);
    const fromPeer = trust.score(subject).score;
    expect(fromPeer).toBeGreaterThan(NEUTRAL_TRUST);

    trust.attest({ issuer: me, subject, value: 100 });
    expect(trust.score(subject).score).toBeGreaterThan(fromPeer);
    // A negative word from a local identity pulls it down.
    trust.attest({ issuer: me, subject, value: -100 });
    expect(trust.score(subject).score).toBeLessThan(fromPeer);

    // An older attestation by the same issuer does not replace a newer one.
    expect(trust.addAttestation(signedBy(peer, -100, clock.now() - 1_000))).toBe(false);
  });

  it('refuses attestations that are forged, self-made, out of range or expired', async () => {
    const { host, clock } = await openHost();
    const trust = host.authority.trust;
    const a = generateIdentity(host.suite);
    const b = generateIdentity(host.suite);
    const now = clock.now();
    const make = (over: Record<string, unknown>, signer = a) => {
      const unsigned = { v: 1, iss: a.did, sub: b.did, value: 50, ts: now, exp: now + DAY, ...over };
      return {
        ...unsigned,
        sig: toB64u(host.suite.sign(signer.seed, attestationSigningInput(unsigned as never))),
      };
    };
    const bad = [
      make({}, b),
      make({ sub: a.did }),
      make({ value: 101 }),
      make({ value: 1.5 }),
      make({ ts: now - 2 * DAY, exp: now - DAY }),
      make({ extra: true }),
      { ...make({}), sig: 'short' },
      null,
    ];
    for (const att of bad)
      expect(() => trust.addAttestation(att)).toThrow(
        expect.objectContaining({ code: 'ANX_ATTESTATION_INVALID' }),
      );
    expect(trust.attestationsAbout(b.did)).toEqual([]);
    expect(() => trust.attest({ issuer: a.did, subject: b.did, value: 10 })).toThrow(
      expect.objectContaining({ code: 'ANX_REQUEST_INVALID' }),
    );
  });

  it('lets discovery filter local agents by trust', async () => {
    const { host } = await openHost();
    const [judge, good, bad] = (await identities(host, 3)) as [string, string, string];
    for (let i = 0; i < 10; i++) host.authority.trust.record(good, 'success');
    host.authority.trust.record(bad, 'bad_signature');
    const found = localCards(host).discover({ minTrust: 0.6 });
    expect(found.map((c) => c.did)).toEqual([good]);
    expect(found[0]?.trust).toBeGreaterThan(0.6);
    const all = localCards(host).discover({});
    expect(all.find((c) => c.did === bad)?.trust).toBeLessThan(NEUTRAL_TRUST);
    expect(all.find((c) => c.did === judge)?.trust).toBe(NEUTRAL_TRUST);
  });
});
