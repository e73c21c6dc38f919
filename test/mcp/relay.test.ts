// Two hosts over a real relay (a JetStream hub and two leaves): MCP servers and SDK clients discover each other's cards and talk.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { connect } from '../../bridge/sdk/index.ts';
import { waitFor } from '../helpers/daemon.ts';
import { startRelayedDaemons } from '../helpers/nats.ts';
import { cleanupTempDirs } from '../helpers/tmp.ts';
import { type Json, type McpProcess, ok, startMcp } from './harness.ts';

const servers: McpProcess[] = [];
let relayed: Awaited<ReturnType<typeof startRelayedDaemons>>;
let dirs: [string, string];

beforeAll(async () => {
  relayed = await startRelayedDaemons('anx-mcp');
  dirs = relayed.dirs;
}, 120_000);

afterAll(async () => {
  for (const s of servers) await s.close();
  await relayed?.stop();
  cleanupTempDirs();
}, 60_000);

it('finds an agent of another host by capability through the directory and exchanges messages with it', async () => {
  const [alice, carol] = await Promise.all([
    startMcp(dirs[0], ['--name', 'Alice', '--caps', 'Chat']),
    startMcp(dirs[1], ['--name', 'Carol', '--caps', 'code.review,Search']),
  ]);
  servers.push(alice, carol);
  const aliceDid = ok(await alice.call('whoami')).did as string;
  const carolDid = ok(await carol.call('whoami')).did as string;

  let found: Json;
  await waitFor(
    async () => {
      found = ok(await alice.call('discover', { capability: 'code.review', online: true })).agents;
      return found.length === 1;
    },
    30_000,
    "Carol's card at Alice's host",
  );
  expect(found[0]).toMatchObject({ did: carolDid, name: 'Carol', capabilities: ['code.review', 'Search'] });

  ok(await alice.call('send', { to: carolDid, text: 'review my diff?' }));
  await waitFor(
    async () => ok(await carol.call('inbox')).messages.some((m: Json) => m.from === aliceDid),
    30_000,
    "Alice's message at Carol's host",
  );
  ok(await carol.call('send', { to: aliceDid, body: { answer: 'yes' } }));
  await waitFor(
    async () => ok(await alice.call('inbox')).messages.some((m: Json) => m.body?.answer === 'yes'),
    30_000,
    "Carol's answer at Alice's host",
  );

  // The SDK on the other host sees both cards: its own host's and the directory's.
  const sdk = await connect({ dataDir: dirs[1], name: 'Observer' });
  try {
    await waitFor(
      async () => (await sdk.discover({ capability: 'Chat' })).some((c) => c.did === aliceDid),
      30_000,
      "Alice's card at Carol's host",
    );
    expect((await sdk.discover({ capability: 'Search' })).map((c) => c.did)).toEqual([carolDid]);
  } finally {
    await sdk.close();
  }
}, 180_000);
