// Tasks, discussions and unread inboxes across processes: a daemon, its local API from this process, and the CLI as child processes.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { ApiError } from '../../bridge/api/client.ts';
import {
  type CliResult,
  type DaemonProcess,
  killHard,
  runCli,
  runCliJson,
  startDaemonProcess,
  waitFor,
} from '../helpers/daemon.ts';
import { cleanupTempDirs, tempDir } from '../helpers/tmp.ts';

let daemon: DaemonProcess;
let dataDir: string;
let alice: string;
let bob: string;
let carol: string;

const cli = (...args: string[]): Promise<CliResult> => runCli(dataDir, ...args);

const json = <T>(...args: string[]): Promise<T> => runCliJson<T>(dataDir, ...args);

beforeAll(async () => {
  dataDir = tempDir();
  daemon = await startDaemonProcess(dataDir);
  alice = (await daemon.api.post<{ did: string }>('/v1/identities', { name: 'alice' })).did;
  bob = (await daemon.api.post<{ did: string }>('/v1/identities', { name: 'bob' })).did;
  carol = (await daemon.api.post<{ did: string }>('/v1/identities', { name: 'carol' })).did;
}, 60_000);

afterAll(async () => {
  await killHard(daemon);
  cleanupTempDirs();
});

it('runs a task from proposal to done with the CLI, and refuses a forbidden step with exit code 5', async () => {
  const proposed = await json<{ task_id: string; state: string }>(
    'task',
    'propose',
    '--as',
    alice,
    '--title',
    'Review the login diff',
    '--candidate',
    bob,
  );
  expect(proposed.state).toBe('proposed');
  const id = proposed.task_id;
  const forbidden = await cli('task', 'claim', id, '--as', carol);
  expect(forbidden.code).toBe(5);
  expect(forbidden.stderr).toContain('is not among the task');
  expect((await json<{ state: string }>('task', 'claim', id, '--as', bob)).state).toBe('claimed');
  expect((await json<{ state: string }>('task', 'start', id, '--as', bob)).state).toBe('in_progress');
  const done = await json<{ state: string; result: string }>(
    'task',
    'done',
    id,
    '--as',
    bob,
    '--result',
    'approved',
  );
  expect(done).toMatchObject({ state: 'done', result: 'approved' });
  const shown = await cli('task', 'show', id);
  expect(shown.code).toBe(0);
  expect(shown.stdout).toContain(`task ${id}: done`);
  expect(shown.stdout).toMatch(/4\. .* task\.notify → done by/);
  const listed = await json<Array<{ task_id: string }>>('task', 'list', '--as', bob);
  expect(listed.map((t) => t.task_id)).toContain(id);
  const missing = await json<unknown>('task', 'show', 'task-nope').catch((e: Error) => e.message);
  expect(missing).toContain('exited 4');
}, 300_000);

it('takes task requests from another process through the local API, with typed HTTP errors', async () => {
  const api = daemon.api;
  const t = await api.post<{ task_id: string }>('/v1/tasks', { as: alice, title: 'from the API' });
  const [first, second] = await Promise.allSettled([
    api.post(`/v1/tasks/${t.task_id}/claim`, { as: bob }),
    api.post(`/v1/tasks/${t.task_id}/claim`, { as: carol }),
  ]);
  const outcomes = [first, second].map((r) => r?.status);
  expect(outcomes.sort()).toEqual(['fulfilled', 'rejected']);
  const lost = [first, second].find((r) => r?.status === 'rejected') as PromiseRejectedResult;
  expect(lost.reason).toBeInstanceOf(ApiError);
  expect((lost.reason as ApiError).status).toBe(409);
  expect((lost.reason as ApiError).code).toBe('ANX_TASK_CONFLICT');
  const bad = await api.post(`/v1/tasks/${t.task_id}/notify`, { as: bob, state: 'finished' }).catch((e) => e);
  expect(bad).toBeInstanceOf(ApiError);
  expect((bad as ApiError).status).toBe(400);
  const forged = await api
    .post(`/v1/tasks/${t.task_id}/statements`, { type: 'task.notify', statement: 'bm90IGEgc3RhdGVtZW50' })
    .catch((e) => e);
  expect((forged as ApiError).code).toBe('ANX_TASK_SIGNATURE_INVALID');
}, 60_000);

it('runs a discussion with the CLI: quoted reply, mention, unanimous ballots, and the unread inbox with mark-read', async () => {
  const api = daemon.api;
  const opened = await json<{ discussion_id: string }>(
    'discuss',
    'new',
    '--as',
    alice,
    '--topic',
    'Ship on Friday?',
    '--participant',
    `${bob},${carol}`,
    '--rule',
    'unanimous',
    '--deadline',
    '2h',
  );
  const id = opened.discussion_id;
  const path = `/v1/discussions/${id}`;
  const first = await api.post<{ posts_list: Array<{ id: string }> }>(`${path}/posts`, {
    as: alice,
    text: 'Ready? @bob please confirm',
  });
  const postId = first.posts_list[0]?.id as string;
  await json('discuss', 'reply', id, postId, '--as', bob, 'Yes, tests are green');
  const shown = await cli('discuss', 'show', id);
  expect(shown.stdout).toContain('  > ');
  expect(shown.stdout).toContain('Yes, tests are green');
  for (const who of [alice, bob]) await api.post(`${path}/votes`, { as: who, option: 'yes' });
  const last = await json<{ state: string; conclusion: { outcome: string; option: string } }>(
    'discuss',
    'vote',
    id,
    'yes',
    '--as',
    carol,
  );
  expect(last).toMatchObject({ state: 'concluded', conclusion: { outcome: 'decided', option: 'yes' } });
  const again = await api.post(`${path}/votes`, { as: carol, option: 'no' }).catch((e) => e);
  expect((again as ApiError).status).toBe(409);
  expect((again as ApiError).message).toContain('concluded');

  // Bob: opened + mention (alice's post) + concluded; the mention is flagged.
  const unreadPath = `/v1/inbox/${encodeURIComponent(bob)}/unread`;
  await waitFor(
    async () => (await api.get<{ messages: unknown[] }>(unreadPath)).messages.length >= 3,
    30_000,
    "bob's notices",
  );
  const unread = await json<{
    unread: number;
    mentions: number;
    messages: Array<{ seq: number; type: string; mention: boolean }>;
  }>('inbox', bob, '--unread');
  expect(unread.mentions).toBe(1);
  expect(unread.messages.filter((m) => m.mention).map((m) => m.type)).toEqual(['mention']);
  const mentionsOnly = await api.get<{ messages: Array<{ type: string }> }>(`${unreadPath}?mentions=1`);
  expect(mentionsOnly.messages.map((m) => m.type)).toEqual(['mention']);
  const firstSeq = unread.messages[0]?.seq as number;
  const partly = await json<{ marked: number; unread: number }>(
    'inbox',
    bob,
    '--mark-read',
    '--through',
    String(firstSeq),
  );
  expect(partly.marked).toBe(1);
  expect(partly.unread).toBe(unread.unread - 1);
  const all = await api.post<{ unread: number; mentions: number }>(
    `/v1/inbox/${encodeURIComponent(bob)}/read`,
    {},
  );
  expect(all).toMatchObject({ unread: 0, mentions: 0 });
  const text = await cli('inbox', bob, '--unread');
  expect(text.stdout).toContain('0 unread, 0 mentioning it');
}, 300_000);

it('counts a direct message that mentions a DID by name as a mention', async () => {
  await daemon.api.post('/v1/messages', { from: alice, to: carol, body: { text: 'hi @Carol, lunch?' } });
  await daemon.api.post('/v1/messages', {
    from: alice,
    to: carol,
    body: { text: 'also @caroline is not you' },
  });
  await waitFor(
    async () => {
      const u = await daemon.api.get<{ messages: Array<{ body: { text?: string } }> }>(
        `/v1/inbox/${encodeURIComponent(carol)}/unread`,
      );
      return u.messages.some((m) => m.body?.text?.includes('caroline') === true);
    },
    30_000,
    'the messages',
  );
  const u = await daemon.api.get<{ messages: Array<{ mention: boolean; body: { text?: string } }> }>(
    `/v1/inbox/${encodeURIComponent(carol)}/unread?mentions=1`,
  );
  expect(u.messages.map((m) => m.body.text)).toContain('hi @Carol, lunch?');
  expect(u.messages.map((m) => m.body.text)).not.toContain('also @caroline is not you');
}, 60_000);

it('explains bad CLI arguments', async () => {
  const r = await cli(
    'discuss',
    'new',
    '--as',
    alice,
    '--topic',
    'x',
    '--participant',
    bob,
    '--deadline',
    'soon',
  );
  expect(r.code).toBe(2);
  expect(r.stderr).toContain('--deadline expected 30m, 2h, 1d or an ISO date');
  const s = await cli('task', 'sync', 'task-x', '--as', alice);
  expect(s.code).toBe(2);
  expect(s.stderr).toContain('hint:');
  const help = await cli('task', '--help');
  expect(help.stdout).toContain('proposed → claimed → in_progress');
}, 60_000);
