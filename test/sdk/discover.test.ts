// SDK discovery and agent cards: connect(name, { caps }) publishes a signed card, discover() filters cards, in both modes.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyCard } from '../../bridge/relay/cards.ts';
import { connect, SdkArgumentError } from '../../bridge/sdk/index.ts';
import { askReviewer } from '../../bridge/sdk/sdk.examples.ts';
import { Host } from '../../runtime/host.ts';
import { type DaemonProcess, killHard, startDaemonProcess, waitFor } from '../helpers/daemon.ts';
import { cleanupTempDirs, tempDir } from '../helpers/tmp.ts';

afterAll(() => cleanupTempDirs());

describe('embedded', () => {
  let host: Host;
  beforeAll(async () => {
    host = await Host.open({ dataDir: tempDir() });
  });
  afterAll(async () => host.close());

  it('publishes caps in a signed card and finds agents by capability, role and name', async () => {
    const dev = await connect('Developer', { mode: 'embedded', host, caps: ['developer', 'code'] });
    const rev = await connect('Reviewer', {
      mode: 'embedded',
      host,
      caps: ['code.review'],
      card: { roles: ['reviewer'], tags: ['ts'], qps: 5 },
    });
    const quiet = await connect('Quiet', { mode: 'embedded', host });

    const coders = await dev.discover({ capability: 'code' });
    expect(coders.map((c) => c.did)).toEqual([dev.did]);
    expect(coders[0]).toMatchObject({ name: 'Developer', capabilities: ['developer', 'code'], online: true });

    const reviewers = await quiet.discover({ role: 'reviewer', tag: 'ts', minTrust: 0.5, online: true });
    expect(reviewers).toHaveLength(1);
    expect(reviewers[0]).toMatchObject({ did: rev.did, qps: 5, capabilities: ['code.review'], trust: 0.5 });

    // Everyone on the host is listed, a card-less identity with its name alone.
    const all = await quiet.discover();
    expect(all.map((c) => c.did).sort()).toEqual([dev.did, rev.did, quiet.did].sort());
    expect(all.find((c) => c.did === quiet.did)).toMatchObject({ name: 'Quiet', capabilities: [] });
    expect(await quiet.discover({ minTrust: 0.9 })).toEqual([]);

    // The stored card is signed by the identity's own key.
    const stored = host.store.root.openDB({ name: 'cards', useRecords: false } as never).get(dev.did);
    expect(verifyCard(stored, host.suite).capabilities).toEqual(['developer', 'code']);
    for (const c of [dev, rev, quiet]) await c.close();
  });

  it('keeps the name when a card is published by DID, and replaces the card when caps change', async () => {
    const first = await connect('Keeper', { mode: 'embedded', host, caps: ['a'] });
    const again = await connect({ mode: 'embedded', host, did: first.did, caps: ['b', 'c'] });
    const [card] = (await again.discover({ capability: 'b' })).filter((c) => c.did === first.did);
    expect(card).toMatchObject({ name: 'Keeper', capabilities: ['b', 'c'] });
    expect(await again.discover({ capability: 'a' })).toEqual([]);
    await first.close();
    await again.close();
  });

  it('refuses bad caps, card fields and filters with the argument named', async () => {
    const bad: Array<[() => Promise<unknown>, string]> = [
      [() => connect('X', { mode: 'embedded', host, caps: 'code' as never }), '"caps" expected a list'],
      [() => connect('X', { mode: 'embedded', host, caps: ['has space'] }), '"caps[0]" expected a name'],
      [() => connect('X', { mode: 'embedded', host, caps: [7 as never] }), '"caps[0]"'],
      [
        () => connect('X', { mode: 'embedded', host, card: { qps: -1 } }),
        '"card.qps" expected a non-negative',
      ],
      [() => connect('X', { mode: 'embedded', host, card: { colour: 'red' } as never }), '"card.colour"'],
      [
        () => connect('X', { mode: 'embedded', host, caps: ['a'], card: { capabilities: ['b'] } }),
        '"card.capabilities" expected nothing when "caps"',
      ],
    ];
    for (const [call, message] of bad) {
      const err = await call().then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err, message).toBeInstanceOf(SdkArgumentError);
      expect((err as Error).message).toContain(message);
    }
    const client = await connect('Asker', { mode: 'embedded', host });
    const filters: Array<[unknown, string]> = [
      ['code', '"query" expected an object'],
      [{ capability: '' }, '"capability" expected a name'],
      [{ minTrust: 2 }, '"minTrust" expected a number from 0 to 1'],
      [{ online: 'yes' }, '"online" expected true or false'],
      [{ caps: 'x' }, '"caps" expected nothing (known filters'],
    ];
    for (const [query, message] of filters) {
      await expect(client.discover(query as never)).rejects.toThrow(message);
    }
    await expect(client.publishCard({ tags: ['ok', 'not ok'] })).rejects.toThrow('"card.tags[1]"');
    await client.close();
  });
});

describe('daemon', () => {
  let daemon: DaemonProcess;
  let dataDir: string;
  beforeAll(async () => {
    dataDir = tempDir();
    daemon = await startDaemonProcess(dataDir);
  }, 60_000);
  afterAll(async () => killHard(daemon));

  it('lists local cards through the daemon without a relay, and the discover CLI route agrees', async () => {
    const chat = await connect('MyAssistant', { dataDir, caps: ['Chat', 'Search'] });
    const other = await connect('Other', { dataDir });
    const found = await other.discover({ capability: 'Search' });
    expect(found.map((c) => c.did)).toEqual([chat.did]);
    expect(found[0]).toMatchObject({ name: 'MyAssistant', online: true, trust: 0.5 });
    const { cards } = await daemon.api.get<{ cards: Array<{ did: string }> }>('/v1/discover?capability=Chat');
    expect(cards.map((c) => c.did)).toEqual([chat.did]);
    await expect(other.discover({ capability: 'nobody' })).resolves.toEqual([]);
    await chat.close();
    await other.close();
  });

  it('runs the discovery example: a developer finds the reviewer by capability and asks it', async () => {
    const reviewerDid = await askReviewer(dataDir);
    const reviewer = await connect('Reviewer', { dataDir });
    try {
      expect(reviewerDid).toBe(reviewer.did);
      await waitFor(async () => (await reviewer.inbox()).messages.length === 1, 30_000, 'the request');
      expect((await reviewer.inbox()).messages[0]?.body).toEqual({ text: 'please review impl/diff.patch' });
    } finally {
      await reviewer.close();
    }
  });

  it('refuses a card for a DID this host holds no key for', async () => {
    const err = await daemon.api
      .post('/v1/cards', { did: 'did:agentnexus:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK' })
      .catch((e: unknown) => e);
    expect((err as { code?: string }).code).toBe('ANX_NOT_LOCAL_IDENTITY');
  });
});
