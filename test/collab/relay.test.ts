// The Action Layer across two hosts over a real relay (a JetStream hub and two leaves, one daemon on each):
// a task proposed on one host is claimed, started and finished from the other, through SDK clients.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { connect } from '../../bridge/sdk/index.ts';
import { type DaemonProcess, waitFor } from '../helpers/daemon.ts';
import { startRelayedDaemons } from '../helpers/nats.ts';
import { cleanupTempDirs } from '../helpers/tmp.ts';

let relayed: Awaited<ReturnType<typeof startRelayedDaemons>>;
let daemons: DaemonProcess[];
let dirs: [string, string];

beforeAll(async () => {
  relayed = await startRelayedDaemons('anx-collab');
  ({ daemons, dirs } = relayed);
}, 120_000);

afterAll(async () => {
  await relayed?.stop();
  cleanupTempDirs();
}, 60_000);

it('moves a task of one host through claim, start and done from another host, each step a signed statement', async () => {
  const [h1, h2] = daemons as [DaemonProcess, DaemonProcess];
  const alice = await connect({ dataDir: dirs[0], name: 'Alice' });
  const bob = await connect({ dataDir: dirs[1], name: 'Bob' });
  const mallory = await connect({ dataDir: dirs[1], name: 'Mallory' });
  try {
    const online = async (api: typeof h1.api, did: string) =>
      (await api.get<{ online: boolean }>(`/v1/presence/${encodeURIComponent(did)}`)).online;
    await waitFor(
      async () => (await online(h1.api, bob.did)) && (await online(h2.api, alice.did)),
      30_000,
      'both hosts see each other',
    );
    const task = await alice.tasks.propose({ title: 'Review the login diff', candidates: [bob.did] });
    expect(task).toMatchObject({ state: 'proposed', proposer: alice.did });

    // A stranger's claim from the other host is refused at the task's home and changes nothing.
    expect(await mallory.tasks.claim(task.task_id, { home: alice.did })).toMatchObject({ forwarded: true });
    const claim = await bob.tasks.claim(task.task_id, { home: alice.did });
    expect(claim).toMatchObject({ forwarded: true, home: alice.did });
    await waitFor(
      async () => (await alice.tasks.get(task.task_id)).state === 'claimed',
      30_000,
      'claimed at home',
    );
    expect((await alice.tasks.get(task.task_id)).claimant).toBe(bob.did);
    const refusedNotice = async () => {
      const { messages } = await mallory.inbox();
      return messages.find((m) => m.type === 'task.refused');
    };
    await waitFor(async () => (await refusedNotice()) !== undefined, 30_000, "mallory's refusal notice");
    expect((await refusedNotice())?.body).toMatchObject({
      task_id: task.task_id,
      code: 'ANX_FORBIDDEN_TASK',
    });

    await bob.tasks.start(task.task_id, { home: alice.did });
    await waitFor(async () => (await alice.tasks.get(task.task_id)).state !== 'claimed', 30_000, 'started');
    await bob.tasks.done(task.task_id, { home: alice.did, result: 'approved with two nits' });
    await waitFor(async () => (await alice.tasks.get(task.task_id)).state === 'done', 30_000, 'done at home');
    const home = await alice.tasks.get(task.task_id);
    expect(home).toMatchObject({ claimant: bob.did, result: 'approved with two nits' });
    expect(home.replica).toBeUndefined();

    // The other host learns the outcome from the home's signed notices.
    await waitFor(
      async () => (await bob.tasks.get(task.task_id).catch(() => undefined))?.state === 'done',
      30_000,
      'notice at the claimant host',
    );
    expect(await bob.tasks.get(task.task_id)).toMatchObject({ replica: true, claimant: bob.did });
  } finally {
    for (const c of [alice, bob, mallory]) await c.close();
  }
}, 120_000);
