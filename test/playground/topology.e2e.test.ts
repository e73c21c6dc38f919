// The topology tab over a real relay: two daemons on two leaves of one hub see each other's host, agents, roles and presence.
import { readFileSync } from 'node:fs';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type DaemonProcess, waitFor } from '../helpers/daemon.ts';
import { startRelayedDaemons } from '../helpers/nats.ts';
import { cleanupTempDirs } from '../helpers/tmp.ts';
import { ARTIFACTS, launchChromium, openPlayground } from './browser.ts';

let relayed: Awaited<ReturnType<typeof startRelayedDaemons>>;
let daemons: DaemonProcess[];
let browser: Browser;
let dirs: [string, string];

beforeAll(async () => {
  browser = await launchChromium();
  relayed = await startRelayedDaemons('anx-topo');
  ({ daemons, dirs } = relayed);
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await relayed?.stop();
  cleanupTempDirs();
}, 60_000);

it('shows both hosts and the other host’s agent with its roles, presence and trust', async () => {
  const [h1, h2] = daemons as [DaemonProcess, DaemonProcess];
  const alice = (await h1.api.post<{ did: string }>('/v1/identities', { name: 'alice' })).did;
  const carol = (await h2.api.post<{ did: string }>('/v1/identities', { name: 'carol' })).did;
  await h2.api.post('/v1/cards', {
    did: carol,
    name: 'carol',
    roles: ['reviewer'],
    capabilities: ['code.review'],
  });
  await waitFor(
    async () => {
      const { cards } = await h1.api.get<{ cards: Array<{ did: string; online: boolean }> }>('/v1/discover');
      return cards.some((c) => c.did === carol && c.online);
    },
    60_000,
    "carol's card and presence at the first host",
  );
  const token = readFileSync(`${dirs[0]}/api.token`, 'utf8').trim();
  const page = await openPlayground(browser, h1.api.baseUrl, token);
  await page.click('button[data-tab="topology"]');
  await page.waitForSelector('#topology-hosts');
  await waitFor(
    async () => (await page.$$eval('#topology-hosts tr', (rows) => rows.length - 1)) === 2,
    30_000,
    'two hosts in the topology',
  );
  const hosts = await page.$$eval('#topology-hosts tr', (rows) =>
    rows.slice(1).map((r) => r.textContent ?? ''),
  );
  expect(hosts.filter((h) => h.includes('(this host)'))).toHaveLength(1);
  // Each host names the leaf it is connected through; the leaves table lists both, one host each.
  const leaves = await page.$$eval('#topology-leaves tr', (trs) =>
    trs.slice(1).map((tr) => Array.from(tr.querySelectorAll('td')).map((td) => td.textContent ?? '')),
  );
  expect(leaves).toHaveLength(2);
  expect(leaves.map((l) => l[1])).toEqual(['1', '1']);
  expect(leaves.filter((l) => l[0]?.includes('(this host’s)'))).toHaveLength(1);
  expect(new Set(leaves.map((l) => l[0]?.replace(' (this host’s)', ''))).size).toBe(2);
  const rows = await page.$$eval('#topology-agents tr', (trs) =>
    trs.slice(1).map((tr) => Array.from(tr.querySelectorAll('td')).map((td) => td.textContent ?? '')),
  );
  const carolRow = rows.find((r) => r[0] === 'carol');
  expect(carolRow).toBeDefined();
  expect(carolRow?.slice(2)).toEqual(['remote', 'online', 'reviewer', '0.50']);
  const aliceRow = rows.find((r) => r[0] === 'alice');
  expect(aliceRow?.slice(2, 4)).toEqual(['this host', 'online']);
  expect(alice).not.toBe(carol);
  await page.screenshot({ path: `${ARTIFACTS}topology-relay.png` });
  await page.close();
});
