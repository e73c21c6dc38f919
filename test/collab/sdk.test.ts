// The SDK's tasks, discussions and unread inbox, embedded and against a daemon process, with bad arguments refused at the edge.
import { afterAll, describe, expect, it } from 'vitest';
import { type AnxClient, connect, SdkArgumentError } from '../../bridge/sdk/index.ts';
import { Host } from '../../runtime/host.ts';
import { type DaemonProcess, killHard, startDaemonProcess, waitFor } from '../helpers/daemon.ts';
import { cleanupTempDirs, tempDir } from '../helpers/tmp.ts';

const cleanups: Array<() => Promise<void>> = [];

afterAll(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => {});
  cleanupTempDirs();
});

/** Runs the same flow in either mode: a task from proposal to done, a discussion, the unread inbox. */
async function flow(alice: AnxClient, bob: AnxClient): Promise<void> {
  const task = await alice.tasks.propose({ title: 'Write the release notes', candidates: [bob.did] });
  expect(task.state).toBe('proposed');
  await bob.tasks.claim(task.task_id);
  await bob.tasks.start(task.task_id);
  const done = await bob.tasks.done(task.task_id, { result: 'notes/v1.md' });
  expect(done).toMatchObject({ state: 'done', claimant: bob.did, result: 'notes/v1.md' });
  await expect(alice.tasks.claim(task.task_id)).rejects.toMatchObject({ code: 'ANX_TASK_CONFLICT' });
  expect((await bob.tasks.list()).map((t) => t.task_id)).toContain(task.task_id);

  const d = await alice.discussions.open({
    topic: 'Release on Monday?',
    participants: [bob.did],
    rule: 'unanimous',
  });
  const first = await alice.discussions.post(d.discussion_id, `Monday works for me, @${bob.did}?`);
  const postId = ('posts_list' in first ? first.posts_list?.[0]?.id : undefined) as string;
  await bob.discussions.reply(d.discussion_id, postId, 'Monday it is');
  await alice.discussions.vote(d.discussion_id, 'yes');
  const concluded = await bob.discussions.vote(d.discussion_id, 'yes');
  expect(concluded).toMatchObject({ state: 'concluded', conclusion: { outcome: 'decided', option: 'yes' } });
  const shown = await bob.discussions.get(d.discussion_id);
  expect(shown.posts_list?.[1]?.quote?.text).toContain('Monday works for me');

  // Every notice (opened, the mention, concluded) in before marking read.
  await waitFor(
    async () => {
      const u = await bob.unread();
      return u.mentions === 1 && u.messages.some((m) => m.type === 'discussion.concluded');
    },
    30_000,
    "bob's notices",
  );
  const mentions = await bob.unread({ mentionsOnly: true });
  expect(mentions.messages.map((m) => m.type)).toEqual(['mention']);
  const read = await bob.markRead();
  expect(read).toMatchObject({ unread: 0, mentions: 0 });
  expect((await bob.unread()).messages).toEqual([]);
}

describe('SDK tasks and discussions', () => {
  it('runs the flow embedded, two agents on one host', async () => {
    const host = await Host.open({ dataDir: tempDir(), noSync: true });
    cleanups.push(() => host.close());
    const alice = await connect({ mode: 'embedded', host, name: 'Alice' });
    const bob = await connect({ mode: 'embedded', host, name: 'Bob' });
    cleanups.push(
      () => alice.close(),
      () => bob.close(),
    );
    await flow(alice, bob);
  });

  it('refuses bad arguments with SdkArgumentError before anything is sent', async () => {
    const host = await Host.open({ dataDir: tempDir(), noSync: true });
    cleanups.push(() => host.close());
    const alice = await connect({ mode: 'embedded', host, name: 'Alice' });
    cleanups.push(() => alice.close());
    const bad: Array<() => Promise<unknown>> = [
      () => alice.tasks.propose({ title: '' }),
      () => alice.tasks.propose({ title: 'x', candidates: ['bob'] }),
      () => alice.tasks.claim(''),
      () => alice.tasks.done('task-1', { result: 42 as never }),
      () => alice.tasks.sync('task-1', []),
      () => alice.tasks.claim('task-1', { home: 'nobody' }),
      () => alice.discussions.open({ topic: 'x', participants: 'bob' as never }),
      () => alice.discussions.open({ topic: 'x', participants: [], deadline: 'tomorrow' as never }),
      () => alice.discussions.post('d-1', ''),
      () => alice.discussions.reply('d-1', '', 'text'),
      () => alice.discussions.vote('d-1', ''),
      () => alice.unread({ limit: 0 }),
      () => alice.markRead(-1),
    ];
    for (const call of bad) await expect(call()).rejects.toBeInstanceOf(SdkArgumentError);
    // Well-formed but refused by the runtime: typed errors with codes.
    await expect(alice.tasks.get('task-missing')).rejects.toMatchObject({ code: 'ANX_TASK_NOT_FOUND' });
    await expect(
      alice.discussions.open({ topic: 'x', participants: [], rule: 'loudest' as never }),
    ).rejects.toMatchObject({
      code: 'ANX_DISCUSSION_INVALID',
    });
  });

  it('runs the flow against a daemon in another process', async () => {
    const dataDir = tempDir();
    const daemon: DaemonProcess = await startDaemonProcess(dataDir, 60_000);
    cleanups.push(() => killHard(daemon));
    const alice = await connect({ dataDir, name: 'Alice' });
    const bob = await connect({ dataDir, name: 'Bob' });
    cleanups.push(
      () => alice.close(),
      () => bob.close(),
    );
    await flow(alice, bob);
  }, 180_000);
});
