// Discussions on a real host: quoted replies, vote rules, a durable deadline across a restart, mentions, archived conclusions.
import { afterEach, describe, expect, it } from 'vitest';
import { conclusionKey, discussionAddress } from '../../actors/discussions.ts';
import type { DiscussionContext } from '../../machines/discussion.ts';
import { evaluate } from '../../machines/discussion.ts';
import { ManualClock } from '../../runtime/clock.ts';
import { isAnxError } from '../../runtime/errors.ts';
import { Host } from '../../runtime/host.ts';
import { cleanupTempDirs, tempDir } from '../helpers/tmp.ts';

const hosts: Host[] = [];

afterEach(async () => {
  for (const h of hosts.splice(0)) await h.close().catch(() => {});
  cleanupTempDirs();
});

async function open(dataDir = tempDir(), clock?: ManualClock) {
  const host = await Host.open({ dataDir, noSync: true, ...(clock === undefined ? {} : { clock }) });
  hosts.push(host);
  return host;
}

async function people(host: Host) {
  const alice = (await host.createIdentity({ name: 'alice' })).did;
  const bob = (await host.createIdentity({ name: 'bob' })).did;
  const carol = (await host.createIdentity({ name: 'carol' })).did;
  return { alice, bob, carol };
}

async function refusal(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (err) {
    if (isAnxError(err)) return err.code;
    throw err;
  }
  throw new Error('expected a refusal, but the request was accepted');
}

async function until(check: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 400; i++) {
    if (check()) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`timed out waiting for ${what}`);
}

function concludedEvents(host: Host, id: string) {
  return host
    .trace(discussionAddress(id), { kinds: ['status'] })
    .filter((e) => (e.payload as { status: string }).status === 'discussion.concluded');
}

describe('discussion threads', () => {
  it('keeps posts with quoted replies, and refuses quotes of unknown posts and posts by outsiders', async () => {
    const host = await open();
    const { alice, bob, carol } = await people(host);
    const d = host.teamwork.discussions;
    const { discussion_id } = await d.open({ as: alice, topic: 'Which database?', participants: [bob] });
    const first = await d.post(discussion_id, alice, 'LMDB or SQLite?');
    const postId = ('posts_list' in first ? first.posts_list?.[0]?.id : undefined) as string;
    await d.post(discussion_id, bob, 'LMDB: one transaction per group commit.', { quote: postId });
    const shown = d.get(discussion_id);
    expect(shown.posts_list?.map((p) => [p.author, p.text, p.quote?.text ?? null])).toEqual([
      [alice, 'LMDB or SQLite?', null],
      [bob, 'LMDB: one transaction per group commit.', 'LMDB or SQLite?'],
    ]);
    expect(shown.posts_list?.every((p) => typeof p.statement === 'string')).toBe(true);
    expect(await refusal(d.post(discussion_id, bob, 'see above', { quote: 'no-such-post' }))).toBe(
      'ANX_DISCUSSION_INVALID',
    );
    expect(await refusal(d.post(discussion_id, carol, 'let me in'))).toBe('ANX_FORBIDDEN_DISCUSSION');
    expect(await refusal(d.post(discussion_id, bob, ''))).toBe('ANX_DISCUSSION_INVALID');
    expect(d.get(discussion_id).posts).toBe(2);
  });

  it('notifies participants of posts and mentioned DIDs (by @name or @DID) with a mention', async () => {
    const host = await open();
    const { alice, bob, carol } = await people(host);
    const d = host.teamwork.discussions;
    const { discussion_id } = await d.open({ as: alice, topic: 'Release', participants: [bob] });
    await d.post(discussion_id, alice, 'Ready to ship? @Carol please check the notes');
    await d.post(discussion_id, alice, `and @${bob} the changelog`);
    await host.teamwork.collab.flushed();
    await until(
      () => host.inbox(carol).messages.length === 1 && host.inbox(bob).messages.length === 3,
      'notices',
    );
    expect(host.inbox(bob).messages.map((m) => m.type)).toEqual([
      'discussion.opened',
      'discussion.posted',
      'mention',
    ]);
    const toCarol = host.inbox(carol);
    expect(toCarol.messages.map((m) => m.type)).toEqual(['mention']);
    expect(toCarol.messages[0]?.body).toMatchObject({ discussion_id, post: { author: alice } });
    expect(host.identity(carol)).toMatchObject({ unread: 1 });
    expect(host.identity(bob)).toMatchObject({ unread: 3 });
    // Alice wrote both posts: no notice to herself.
    expect(host.inbox(alice).messages).toHaveLength(0);
  });
});

describe('vote rules', () => {
  it('majority: concludes as soon as an option holds more than half of the participants', async () => {
    const host = await open();
    const { alice, bob, carol } = await people(host);
    const d = host.teamwork.discussions;
    const { discussion_id } = await d.open({ as: alice, topic: 'Ship?', participants: [bob, carol] });
    await d.vote(discussion_id, alice, 'yes');
    expect(d.get(discussion_id).state).toBe('open');
    const after = await d.vote(discussion_id, bob, 'yes');
    expect(after).toMatchObject({
      state: 'concluded',
      conclusion: { outcome: 'decided', option: 'yes', reason: 'votes', cast: 2, voters: 3 },
    });
    expect(await refusal(d.vote(discussion_id, carol, 'no'))).toBe('ANX_DISCUSSION_CONFLICT');
  });

  it('majority with a tie at close decides nothing', async () => {
    const host = await open();
    const { alice, bob, carol } = await people(host);
    const d = host.teamwork.discussions;
    const { discussion_id } = await d.open({
      as: alice,
      topic: 'A or B?',
      participants: [bob, carol],
      options: ['a', 'b', 'c'],
    });
    await d.vote(discussion_id, alice, 'a');
    await d.vote(discussion_id, bob, 'b');
    expect(await refusal(d.close(discussion_id, carol))).toBe('ANX_FORBIDDEN_DISCUSSION');
    const closed = await d.close(discussion_id, alice);
    expect(closed).toMatchObject({
      state: 'concluded',
      conclusion: { outcome: 'no_decision', reason: 'closed', tally: { a: 1, b: 1, c: 0 } },
    });
  });

  it('unanimous: one differing ballot ends it without a decision; all alike decides', async () => {
    const host = await open();
    const { alice, bob, carol } = await people(host);
    const d = host.teamwork.discussions;
    const split = await d.open({
      as: alice,
      topic: 'Rename?',
      participants: [bob, carol],
      rule: 'unanimous',
    });
    await d.vote(split.discussion_id, alice, 'yes');
    await d.vote(split.discussion_id, bob, 'yes');
    expect(d.get(split.discussion_id).state).toBe('open');
    expect(await d.vote(split.discussion_id, carol, 'no')).toMatchObject({
      conclusion: { outcome: 'no_decision', reason: 'votes' },
    });
    const agreed = await d.open({ as: alice, topic: 'Keep?', participants: [bob], rule: 'unanimous' });
    await d.vote(agreed.discussion_id, bob, 'no');
    expect(await d.vote(agreed.discussion_id, alice, 'no')).toMatchObject({
      conclusion: { outcome: 'decided', option: 'no' },
    });
  });

  it('leader-decides: the leader’s ballot decides, the others are advisory', async () => {
    const host = await open();
    const { alice, bob, carol } = await people(host);
    const d = host.teamwork.discussions;
    const { discussion_id } = await d.open({
      as: alice,
      topic: 'Framework?',
      participants: [bob, carol],
      rule: 'leader',
      leader: bob,
      options: ['hono', 'express'],
    });
    await d.vote(discussion_id, alice, 'express');
    await d.vote(discussion_id, carol, 'express');
    expect(d.get(discussion_id).state).toBe('open');
    expect(await d.vote(discussion_id, bob, 'hono')).toMatchObject({
      conclusion: { outcome: 'decided', option: 'hono', tally: { hono: 1, express: 2 } },
    });
  });

  it('refuses a second ballot, a replayed ballot and an option that is not offered', async () => {
    const host = await open();
    const { alice, bob } = await people(host);
    const d = host.teamwork.discussions;
    const { discussion_id } = await d.open({ as: alice, topic: 'x', participants: [bob], rule: 'unanimous' });
    expect(await refusal(d.vote(discussion_id, bob, 'maybe'))).toBe('ANX_DISCUSSION_INVALID');
    await d.vote(discussion_id, bob, 'yes');
    expect(await refusal(d.vote(discussion_id, bob, 'no'))).toBe('ANX_DISCUSSION_CONFLICT');
    const ballot = d.get(discussion_id).signed_ballots?.[bob]?.statement as string;
    expect(await refusal(d.submit(discussion_id, 'discussion.vote', ballot))).toBe('ANX_DISCUSSION_REPLAYED');
    expect(d.get(discussion_id).ballots).toEqual({ [bob]: 'yes' });
  });

  it('evaluates the rules as a pure function', () => {
    const base = {
      participants: ['a', 'b', 'c', 'd'],
      options: ['yes', 'no'],
      leader: 'a',
    } as unknown as DiscussionContext;
    const ballot = (option: string) => ({ option, ts: 0, id: option, statement: '' });
    const end = { reason: 'deadline' as const, at: 1 };
    const majority = { ...base, rule: 'majority' as const };
    expect(evaluate(majority, { a: ballot('yes'), b: ballot('yes') }, end, false)).toBeNull();
    // At the end, more than half of the ballots cast decides; a tie does not.
    expect(evaluate(majority, { a: ballot('yes'), b: ballot('yes') }, end, true)?.option).toBe('yes');
    expect(evaluate(majority, { a: ballot('yes'), b: ballot('no') }, end, true)?.outcome).toBe('no_decision');
    expect(evaluate(majority, {}, end, true)?.detail).toBe('nobody voted');
    expect(
      evaluate(majority, { a: ballot('yes'), b: ballot('yes'), c: ballot('no') }, end, true)?.option,
    ).toBe('yes');
    expect(
      evaluate(majority, { a: ballot('yes'), b: ballot('yes'), c: ballot('yes') }, end, false)?.option,
    ).toBe('yes');
    const leader = { ...base, rule: 'leader' as const };
    expect(evaluate(leader, { b: ballot('no'), c: ballot('no'), d: ballot('no') }, end, true)?.outcome).toBe(
      'no_decision',
    );
  });
});

describe('deadline and archive', () => {
  it('fires the deadline once, after a restart mid-discussion, and archives the conclusion to the Enclave', async () => {
    const dataDir = tempDir();
    const clock = new ManualClock(1_800_000_000_000);
    let host = await open(dataDir, clock);
    const { alice, bob, carol } = await people(host);
    const enclave = (await host.teamwork.enclaves.create({ owner: alice, id: 'enc-d' })).enclave_id;
    const deadline = clock.now() + 60 * 60_000;
    const { discussion_id } = await host.teamwork.discussions.open({
      as: alice,
      topic: 'Adopt the new review checklist?',
      participants: [bob, carol],
      deadline,
      enclave_id: enclave,
    });
    await host.teamwork.discussions.vote(discussion_id, bob, 'yes');
    await host.teamwork.discussions.post(discussion_id, carol, 'Still reading it.');
    clock.advance(30 * 60_000);
    await host.close();
    hosts.length = 0;

    host = await open(dataDir, clock);
    const d = host.teamwork.discussions;
    expect(d.get(discussion_id)).toMatchObject({ state: 'open', ballots: { [bob]: 'yes' }, posts: 1 });
    expect(host.status().actors.timers).toBeGreaterThanOrEqual(1);
    clock.advance(29 * 60_000);
    await host.system.quiesce();
    expect(d.get(discussion_id).state).toBe('open');
    clock.advance(2 * 60_000);
    await until(() => d.get(discussion_id).state !== 'open', 'the deadline');
    await host.system.quiesce();
    const concluded = d.get(discussion_id);
    expect(concluded.conclusion).toMatchObject({
      outcome: 'decided',
      option: 'yes',
      reason: 'deadline',
      at: deadline,
      cast: 1,
    });
    // Votes after the deadline are refused.
    expect(await refusal(d.vote(discussion_id, carol, 'no'))).toBe('ANX_DISCUSSION_CONFLICT');
    await until(() => d.get(discussion_id).state === 'archived', 'the archive');
    const archived = d.get(discussion_id);
    expect(archived.archive).toMatchObject({
      enclave_id: enclave,
      key: conclusionKey(discussion_id),
      version: 1,
    });
    const artifact = await host.teamwork.vault.get(enclave, conclusionKey(discussion_id), alice);
    expect(artifact.meta.author).toBe(alice);
    const doc = JSON.parse(Buffer.from(artifact.content).toString('utf8'));
    expect(doc).toMatchObject({
      discussion_id,
      conclusion: { option: 'yes' },
      ballots: [{ voter: bob, option: 'yes' }],
    });
    expect(typeof doc.ballots[0].statement).toBe('string');
    // Much later, and after another restart, nothing fires again.
    clock.advance(24 * 60 * 60_000);
    await host.system.quiesce();
    await host.close();
    hosts.length = 0;
    host = await open(dataDir, clock);
    clock.advance(60_000);
    await host.system.quiesce();
    expect(concludedEvents(host, discussion_id)).toHaveLength(1);
    expect(host.teamwork.discussions.get(discussion_id).state).toBe('archived');
    const history = await host.teamwork.vault.history(enclave, conclusionKey(discussion_id), alice);
    expect(history).toHaveLength(1);
  });

  it('leaves an error event and stays concluded when the vault refuses the archive', async () => {
    const host = await open();
    const { alice, bob } = await people(host);
    const enclave = (await host.teamwork.enclaves.create({ owner: alice, id: 'enc-closed' })).enclave_id;
    const d = host.teamwork.discussions;
    const { discussion_id } = await d.open({
      as: alice,
      topic: 'x',
      participants: [bob],
      enclave_id: enclave,
    });
    await host.teamwork.enclaves.archive(enclave, alice);
    await d.close(discussion_id, alice);
    const failed = () =>
      host
        .trace(discussionAddress(discussion_id), { kinds: ['error'] })
        .filter((e) => (e.payload as { code: string }).code === 'ANX_DISCUSSION_ARCHIVE_FAILED');
    await until(() => failed().length === 1, 'the archive failure');
    const [failure] = failed();
    expect((failure?.payload as { reason?: string } | undefined)?.reason).toContain('archived');
    expect(d.get(discussion_id)).toMatchObject({ state: 'concluded', archive: null });
  });

  it('refuses an Enclave the creator cannot write to, and a deadline in the past', async () => {
    const host = await open();
    const { alice, bob } = await people(host);
    const enclave = (await host.teamwork.enclaves.create({ owner: bob, id: 'enc-other' })).enclave_id;
    const d = host.teamwork.discussions;
    expect(await refusal(d.open({ as: alice, topic: 'x', participants: [bob], enclave_id: enclave }))).toBe(
      'ANX_FORBIDDEN_ENCLAVE',
    );
    expect(await refusal(d.open({ as: alice, topic: 'x', participants: [bob], deadline: 1 }))).toBe(
      'ANX_DISCUSSION_INVALID',
    );
    expect(
      await refusal(d.open({ as: alice, topic: 'x', participants: [bob], rule: 'loudest' as never })),
    ).toBe('ANX_DISCUSSION_INVALID');
    expect(
      await refusal(d.open({ as: alice, topic: 'x', participants: [bob], leader: 'did:agentnexus:zX' })),
    ).toBe('ANX_DISCUSSION_INVALID');
  });
});
