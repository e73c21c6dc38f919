// Tasks and Discussions across two hosts: every envelope between them is signed on the wire and accepted by `host.receive`.
import { afterEach, describe, expect, it } from 'vitest';
import { createEnvelope, encodeEnvelope, envelopeSigningInput } from '../../runtime/envelope/index.ts';
import { isAnxError } from '../../runtime/errors.ts';
import { Host } from '../../runtime/host.ts';
import type { RemoteRouter } from '../../runtime/kernel/actor-system.ts';
import type { KernelEnvelope } from '../../runtime/kernel/message.ts';
import { cleanupTempDirs, tempDir } from '../helpers/tmp.ts';

const opened: Host[] = [];

afterEach(async () => {
  for (const h of opened.splice(0)) await h.close().catch(() => {});
  cleanupTempDirs();
});

/**
 * A loopback wire between hosts, standing in for the relay: an envelope for a DID of the other host is
 * signed by the sender's key, encoded, and handed to the other host's `receive` (which checks the
 * signature, the replay window and the id); the sender's outbox entry is acknowledged after that commit.
 */
class Wire implements RemoteRouter {
  peer: Host | undefined;
  self: Host | undefined;
  delivered = 0;

  route(env: KernelEnvelope, _bytes: Uint8Array, outboxKey: number): boolean {
    const { peer, self } = this;
    if (
      peer === undefined ||
      self === undefined ||
      !peer.keystore.has(env.to) ||
      !self.keystore.has(env.from)
    )
      return false;
    const wire = createEnvelope({
      id: env.id,
      ts: env.ts,
      type: env.type,
      from: env.from,
      to: env.to,
      body: env.body,
      ...(env.ctx === undefined ? {} : { ctx: env.ctx }),
    });
    wire.sig = self.keystore.sign(env.from, envelopeSigningInput(wire));
    void peer
      .receive(encodeEnvelope(wire))
      .then(() => {
        this.delivered++;
        return outboxKey > 0 ? self.system.acknowledge([outboxKey]) : undefined;
      })
      .catch(() => {});
    return true;
  }
}

async function pair() {
  const wireA = new Wire();
  const wireB = new Wire();
  const a = await Host.open({ dataDir: tempDir(), noSync: true, router: wireA });
  const b = await Host.open({ dataDir: tempDir(), noSync: true, router: wireB });
  opened.push(a, b);
  wireA.self = a;
  wireA.peer = b;
  wireB.self = b;
  wireB.peer = a;
  const alice = (await a.createIdentity({ name: 'alice' })).did;
  const bob = (await b.createIdentity({ name: 'bob' })).did;
  const carol = (await b.createIdentity({ name: 'carol' })).did;
  return { a, b, alice, bob, carol };
}

async function until(check: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 600; i++) {
    if (check()) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`timed out waiting for ${what}`);
}

describe('across two hosts', () => {
  it('proposes on one host, claims and finishes from the other, with notices both ways', async () => {
    const { a, b, alice, bob, carol } = await pair();
    const { task_id } = await a.teamwork.tasks.propose({
      as: alice,
      title: 'Cross-host review',
      candidates: [bob, carol],
    });
    // Bob's host learns of the task from the signed notice, and where it lives.
    // The inbox record is readable as soon as its transaction commits; the replica view is taken from it
    // in the commit's follow-ups, a moment later: wait for the view, then check the record too.
    await until(() => b.teamwork.collab.viewOf(task_id) !== undefined, 'the proposal notice');
    expect(b.inbox(bob).messages.some((m) => m.type === 'task.proposed')).toBe(true);
    expect(b.teamwork.tasks.get(task_id)).toMatchObject({
      replica: true,
      state: 'proposed',
      proposer: alice,
    });
    const forwarded = await b.teamwork.tasks.claim(task_id, bob);
    expect(forwarded).toMatchObject({ forwarded: true, home: alice });
    await until(() => a.teamwork.tasks.get(task_id).state === 'claimed', 'the claim on the home host');
    expect(a.teamwork.tasks.get(task_id).claimant).toBe(bob);
    // A competing claim from the same remote host loses and is told so.
    await b.teamwork.tasks.claim(task_id, carol);
    await until(() => b.inbox(carol).messages.some((m) => m.type === 'task.refused'), 'the refusal notice');
    const refused = b.inbox(carol).messages.find((m) => m.type === 'task.refused');
    expect(refused?.body).toMatchObject({ task_id, code: 'ANX_TASK_CONFLICT' });
    await b.teamwork.tasks.notify(task_id, bob, 'in_progress');
    await until(() => a.teamwork.tasks.get(task_id).state === 'in_progress', 'in progress');
    await b.teamwork.tasks.notify(task_id, bob, 'done', { result: 'looks good' });
    await until(() => a.teamwork.tasks.get(task_id).state === 'done', 'done');
    expect(a.teamwork.tasks.get(task_id)).toMatchObject({ claimant: bob, result: 'looks good', seq: 4 });
    await until(() => b.teamwork.tasks.get(task_id).state === 'done', "carol's host sees it done");
  });

  it('refuses a state notify forged on the wire: a statement signed by someone else, as a message from the claimant', async () => {
    const { a, b, alice, bob, carol } = await pair();
    const { task_id } = await a.teamwork.tasks.propose({ as: alice, title: 'x', candidates: [bob] });
    await until(() => b.teamwork.collab.homeOf(task_id) === alice, 'the notice');
    await b.teamwork.tasks.claim(task_id, bob);
    await until(() => a.teamwork.tasks.get(task_id).state === 'claimed', 'the claim');
    // Carol (on Bob's host) signs "in progress" in Bob's name and sends it from Bob's DID.
    const statement = createEnvelope({
      type: 'task.notify',
      from: bob,
      to: `task/${task_id}`,
      body: { task_id, state: 'done' },
    });
    statement.sig = b.keystore.sign(carol, envelopeSigningInput(statement));
    await b.send([
      {
        from: bob,
        to: alice,
        type: 'task.notify',
        body: { task_id, statement: Buffer.from(encodeEnvelope(statement)).toString('base64url') },
      },
    ]);
    await until(() => b.inbox(bob).messages.some((m) => m.type === 'task.refused'), 'the refusal notice');
    expect(b.inbox(bob).messages.find((m) => m.type === 'task.refused')?.body).toMatchObject({
      code: 'ANX_TASK_SIGNATURE_INVALID',
    });
    expect(a.teamwork.tasks.get(task_id)).toMatchObject({ state: 'claimed', seq: 2 });
    const errors = a.trace(`task/${task_id}`, { kinds: ['error'] });
    expect(errors.map((e) => (e.payload as { code: string }).code)).toEqual(['ANX_TASK_SIGNATURE_INVALID']);
  });

  it('runs a discussion with participants on the other host: posts, a mention, ballots, the conclusion notice', async () => {
    const { a, b, alice, bob, carol } = await pair();
    const { discussion_id } = await a.teamwork.discussions.open({
      as: alice,
      topic: 'Move the standup?',
      participants: [bob, carol],
      rule: 'majority',
    });
    await until(() => b.teamwork.collab.homeOf(discussion_id) === alice, 'the opening notice');
    await b.teamwork.discussions.post(discussion_id, bob, `Fine by me; @${carol} what do you think?`);
    await until(() => a.teamwork.discussions.get(discussion_id).posts === 1, 'the post');
    await until(() => b.inbox(carol).messages.some((m) => m.type === 'mention'), 'the mention');
    expect(b.identity(carol)).toMatchObject({ unread: 2 });
    await b.teamwork.discussions.vote(discussion_id, bob, 'yes');
    await b.teamwork.discussions.vote(discussion_id, carol, 'yes');
    await until(() => a.teamwork.discussions.get(discussion_id).state === 'concluded', 'the conclusion');
    expect(a.teamwork.discussions.get(discussion_id).conclusion).toMatchObject({
      outcome: 'decided',
      option: 'yes',
    });
    await until(
      () => b.inbox(carol).messages.some((m) => m.type === 'discussion.concluded'),
      'the conclusion notice',
    );
    await until(() => b.teamwork.discussions.get(discussion_id).state === 'concluded', 'the remote view');
    expect(b.teamwork.discussions.get(discussion_id)).toMatchObject({
      replica: true,
      posts: 1,
      ballots: { [bob]: 'yes' },
    });
    // A ballot after the end is refused, and the refusal reaches its sender.
    try {
      await b.teamwork.discussions.vote(discussion_id, bob, 'no');
    } catch (err) {
      expect(isAnxError(err)).toBe(true);
    }
    await until(() => b.inbox(bob).messages.some((m) => m.type === 'discussion.refused'), 'the refusal');
  });
});
