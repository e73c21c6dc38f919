// Two hosts over a real relay (a JetStream hub and two leaves): MCP servers and SDK clients discover each other's cards and talk.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { connect } from '../../bridge/sdk/index.ts';
import { type DaemonProcess, killHard, startDaemonProcess, waitFor } from '../helpers/daemon.ts';
import { startHub, startLeaf, stopAllNats } from '../helpers/nats.ts';
import { cleanupTempDirs, tempDir } from '../helpers/tmp.ts';
import { type Json, type McpProcess, ok, startMcp } from './harness.ts';

const env = { ANX_HEARTBEAT_MS: '400' };
const daemons: DaemonProcess[] = [];
const servers: McpProcess[] = [];
let dirs: [string, string];

beforeAll(async () => {
  const hub = await startHub();
  const [l1, l2] = [await startLeaf(hub), await startLeaf(hub)];
  dirs = [tempDir('anx-mcp-h1-'), tempDir('anx-mcp-h2-')];
  daemons.push(
    ...(await Promise.all([
      startDaemonProcess(dirs[0], 60_000, { args: ['--nats', l1.url], env }),
      startDaemonProcess(dirs[1], 60_000, { args: ['--nats', l2.url], env }),
    ])),
  );
}, 120_000);

afterAll(async () => {
  for (const s of servers) await s.close();
  for (const d of daemons) await killHard(d);
  await stopAllNats();
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
