// The Action Layer on a real host: signed task transitions, refusals of forged and replayed ones, double claims, restart.
import { afterEach, describe, expect, it } from 'vitest';
import { signStatement } from '../../actors/collab.ts';
import { taskAddress } from '../../actors/tasks.ts';
import { createEnvelope, encodeEnvelope, envelopeSigningInput } from '../../runtime/envelope/index.ts';
import { isAnxError } from '../../runtime/errors.ts';
import type { EventV1 } from '../../runtime/events/event.ts';
import { Host } from '../../runtime/host.ts';
import { cleanupTempDirs, tempDir } from '../helpers/tmp.ts';

const hosts: Host[] = [];

afterEach(async () => {
  for (const h of hosts.splice(0)) await h.close().catch(() => {});
  cleanupTempDirs();
});

async function open(dataDir = tempDir()) {
  const host = await Host.open({ dataDir, noSync: true });
  hosts.push(host);
  return host;
}

async function team(host: Host) {
  const alice = (await host.createIdentity({ name: 'alice' })).did;
  const bob = (await host.createIdentity({ name: 'bob' })).did;
  const carol = (await host.createIdentity({ name: 'carol' })).did;
  return { alice, bob, carol };
}

/** The typed error a promise rejects with. */
/** An Enclave of `owner` holding `design/spec.md`, and the ref of that artifact. */
async function enclaveWithSpec(host: Host, owner: string, id: string) {
  const enclave = (await host.teamwork.enclaves.create({ owner, id })).enclave_id;
  const ref = await host.teamwork.vault.put(
    enclave,
    'design/spec.md',
    { kind: 'text', content: 'spec', summary: 'spec' },
    owner,
  );
  return { enclave, ref };
}

async function refusal(promise: Promise<unknown>): Promise<{ code: string; message: string }> {
  try {
    await promise;
  } catch (err) {
    if (isAnxError(err)) return { code: err.code, message: err.message };
    throw err;
  }
  throw new Error('expected a refusal, but the request was accepted');
}

function errorsOf(host: Host, taskId: string): EventV1[] {
  return host.trace(taskAddress(taskId), { kinds: ['error'] });
}

/** Polls (bounded) until `check` holds. */
async function until(check: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 400; i++) {
    if (check()) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`timed out waiting for ${what}`);
}

describe('tasks', () => {
  it('moves a task from proposed to done through statements signed by the allowed DIDs', async () => {
    const host = await open();
    const { alice, bob } = await team(host);
    const tasks = host.teamwork.tasks;
    const proposed = await tasks.propose({ as: alice, title: 'Review the login diff', candidates: [bob] });
    expect(proposed.state).toBe('proposed');
    expect(proposed.proposer).toBe(alice);
    await tasks.claim(proposed.task_id, bob);
    await tasks.notify(proposed.task_id, bob, 'in_progress');
    const done = await tasks.notify(proposed.task_id, bob, 'done', { result: 'approved' });
    expect(done).toMatchObject({ state: 'done', claimant: bob, result: 'approved', seq: 4 });
    const shown = tasks.get(proposed.task_id);
    expect(shown.log?.map((e) => [e.type, e.signer, e.state])).toEqual([
      ['task.propose', alice, 'proposed'],
      ['task.claim', bob, 'claimed'],
      ['task.notify', bob, 'in_progress'],
      ['task.notify', bob, 'done'],
    ]);
    // Every log entry carries its signed statement.
    expect(shown.log?.every((e) => e.statement.length > 100)).toBe(true);
    const statuses = host
      .trace(proposed.task_id, { kinds: ['status'] })
      .map((e) => (e.payload as { status: string }).status);
    expect(statuses).toEqual(['task.proposed', 'task.claimed', 'task.in_progress', 'task.done']);
  });

  it('refuses a claim by a DID that is not a candidate, and a done from someone other than the claimant', async () => {
    const host = await open();
    const { alice, bob, carol } = await team(host);
    const tasks = host.teamwork.tasks;
    const { task_id } = await tasks.propose({ as: alice, title: 'x', candidates: [bob] });
    expect((await refusal(tasks.claim(task_id, carol))).code).toBe('ANX_FORBIDDEN_TASK');
    await tasks.claim(task_id, bob);
    await tasks.notify(task_id, bob, 'in_progress');
    expect((await refusal(tasks.notify(task_id, carol, 'done'))).code).toBe('ANX_FORBIDDEN_TASK');
    expect((await refusal(tasks.notify(task_id, alice, 'done'))).code).toBe('ANX_FORBIDDEN_TASK');
    // Impossible transition: done cannot go back to in_progress, nor a proposed task be done.
    expect(tasks.get(task_id).state).toBe('in_progress');
    expect(errorsOf(host, task_id).map((e) => (e.payload as { code: string }).code)).toEqual([
      'ANX_FORBIDDEN_TASK',
      'ANX_FORBIDDEN_TASK',
      'ANX_FORBIDDEN_TASK',
    ]);
  });

  it('refuses impossible transitions with ANX_TASK_CONFLICT and changes nothing', async () => {
    const host = await open();
    const { alice, bob } = await team(host);
    const tasks = host.teamwork.tasks;
    const { task_id } = await tasks.propose({ as: alice, title: 'x' });
    expect((await refusal(tasks.notify(task_id, bob, 'done'))).code).toBe('ANX_TASK_CONFLICT');
    await tasks.claim(task_id, bob);
    expect((await refusal(tasks.notify(task_id, bob, 'done'))).code).toBe('ANX_TASK_CONFLICT');
    await tasks.notify(task_id, alice, 'cancelled', { reason: 'no longer needed' });
    expect((await refusal(tasks.notify(task_id, bob, 'in_progress'))).code).toBe('ANX_TASK_CONFLICT');
    const after = tasks.get(task_id);
    expect(after).toMatchObject({ state: 'cancelled', reason: 'no longer needed', seq: 3 });
  });

  it('lets exactly one of two concurrent claims win, and the loser learns who won', async () => {
    const host = await open();
    const { alice, bob, carol } = await team(host);
    const tasks = host.teamwork.tasks;
    const { task_id } = await tasks.propose({ as: alice, title: 'race' });
    const results = await Promise.allSettled([tasks.claim(task_id, bob), tasks.claim(task_id, carol)]);
    const won = results.filter((r) => r.status === 'fulfilled');
    const lost = results.filter((r) => r.status === 'rejected') as PromiseRejectedResult[];
    expect(won).toHaveLength(1);
    expect(lost).toHaveLength(1);
    const reason = lost[0]?.reason as { code: string; message: string };
    expect(reason.code).toBe('ANX_TASK_CONFLICT');
    const winner = tasks.get(task_id).claimant;
    expect([bob, carol]).toContain(winner);
    expect(reason.message).toContain(winner as string);
  });

  it('refuses a forged state notify (bad signature, statement of another signer, wrong task) with an error event', async () => {
    const host = await open();
    const { alice, bob, carol } = await team(host);
    const tasks = host.teamwork.tasks;
    const { task_id } = await tasks.propose({ as: alice, title: 'x', candidates: [bob] });
    await tasks.claim(task_id, bob);
    const address = taskAddress(task_id);
    // Carol signs a statement but claims it comes from Bob: the signature does not verify against Bob's key.
    const env = createEnvelope(
      { type: 'task.notify', from: bob, to: address, body: { task_id, state: 'in_progress' } },
      { clock: host.clock },
    );
    env.sig = host.keystore.sign(carol, envelopeSigningInput(env));
    const forged = Buffer.from(encodeEnvelope(env)).toString('base64url');
    expect((await refusal(tasks.submit(task_id, 'task.notify', forged))).code).toBe(
      'ANX_TASK_SIGNATURE_INVALID',
    );
    // A bit flipped in a genuine statement.
    const genuine = signStatement(host.keystore, host.clock, bob, 'task.notify', address, {
      task_id,
      state: 'in_progress',
    });
    const bytes = Buffer.from(genuine, 'base64url');
    bytes[bytes.length - 1] = (bytes[bytes.length - 1] as number) ^ 1;
    expect((await refusal(tasks.submit(task_id, 'task.notify', bytes.toString('base64url')))).code).toBe(
      'ANX_TASK_SIGNATURE_INVALID',
    );
    // Bob's genuine statement for another task is not valid here.
    const other = await tasks.propose({ as: alice, title: 'y' });
    const elsewhere = signStatement(
      host.keystore,
      host.clock,
      bob,
      'task.notify',
      taskAddress(other.task_id),
      {
        task_id: other.task_id,
        state: 'in_progress',
      },
    );
    expect((await refusal(tasks.submit(task_id, 'task.notify', elsewhere))).code).toBe(
      'ANX_TASK_SIGNATURE_INVALID',
    );
    // Signed as a claim but sent as a notify.
    const asClaim = signStatement(host.keystore, host.clock, bob, 'task.claim', address, { task_id });
    expect((await refusal(tasks.submit(task_id, 'task.notify', asClaim))).code).toBe(
      'ANX_TASK_SIGNATURE_INVALID',
    );
    // Carol's own genuine statement: verified, but she is not the claimant.
    const carols = signStatement(host.keystore, host.clock, carol, 'task.notify', address, {
      task_id,
      state: 'in_progress',
    });
    expect((await refusal(tasks.submit(task_id, 'task.notify', carols))).code).toBe('ANX_FORBIDDEN_TASK');
    expect(tasks.get(task_id)).toMatchObject({ state: 'claimed', seq: 2 });
    expect(errorsOf(host, task_id).map((e) => (e.payload as { code: string }).code)).toEqual([
      'ANX_TASK_SIGNATURE_INVALID',
      'ANX_TASK_SIGNATURE_INVALID',
      'ANX_TASK_SIGNATURE_INVALID',
      'ANX_TASK_SIGNATURE_INVALID',
      'ANX_FORBIDDEN_TASK',
    ]);
    // Undecodable bytes are refused before they reach the task.
    expect((await refusal(tasks.submit(task_id, 'task.notify', 'AAAA'))).code).toBe(
      'ANX_TASK_SIGNATURE_INVALID',
    );
    // The genuine one still applies, once: sent again it is a replay.
    await tasks.submit(task_id, 'task.notify', genuine);
    expect(tasks.get(task_id).state).toBe('in_progress');
    const replay = await refusal(tasks.submit(task_id, 'task.notify', genuine));
    expect(replay.code).toBe('ANX_TASK_REPLAYED');
    expect(tasks.get(task_id).seq).toBe(3);
  });

  it('refuses statements sent as plain messages without a signature', async () => {
    const host = await open();
    const { alice, bob } = await team(host);
    const { task_id } = await host.teamwork.tasks.propose({ as: alice, title: 'x' });
    await host.send([{ from: bob, to: taskAddress(task_id), type: 'task.claim', body: { task_id } }]);
    await until(() => errorsOf(host, task_id).length === 1, 'the refusal');
    const [refused] = errorsOf(host, task_id);
    expect((refused?.payload as { code: string } | undefined)?.code).toBe('ANX_TASK_SIGNATURE_INVALID');
    expect(host.teamwork.tasks.get(task_id).state).toBe('proposed');
  });

  it('attaches resources by a resource sync from the proposer or the claimant only', async () => {
    const host = await open();
    const { alice, bob, carol } = await team(host);
    const tasks = host.teamwork.tasks;
    const { enclave, ref } = await enclaveWithSpec(host, alice, 'enc-sync');
    const { task_id } = await tasks.propose({ as: alice, title: 'x', enclave_id: enclave });
    await tasks.sync(task_id, alice, [{ kind: 'artifact', ref }]);
    await tasks.claim(task_id, bob);
    await tasks.sync(task_id, bob, [{ kind: 'vault', enclave_id: enclave, key: 'impl/diff.patch' }]);
    expect(
      (await refusal(tasks.sync(task_id, carol, [{ kind: 'url', url: 'https://example.org' }]))).code,
    ).toBe('ANX_FORBIDDEN_TASK');
    expect((await refusal(tasks.sync(task_id, bob, [{ kind: 'nope' } as never]))).code).toBe(
      'ANX_TASK_INVALID',
    );
    const shown = tasks.get(task_id);
    expect(shown.state).toBe('claimed');
    expect(shown.resources.map((r) => [r.kind, r.by])).toEqual([
      ['artifact', alice],
      ['vault', bob],
    ]);
  });

  it('attaches artifacts named by key from the proposal on, and proposes nothing when one cannot be read', async () => {
    const host = await open();
    const { alice } = await team(host);
    const tasks = host.teamwork.tasks;
    const { enclave, ref } = await enclaveWithSpec(host, alice, 'enc-propose');
    const missing = await refusal(
      tasks.propose({
        as: alice,
        title: 'x',
        id: 'task-missing-artifact',
        resources: [{ kind: 'artifact', enclave_id: enclave, key: 'no/such.md' }],
      }),
    );
    expect(missing.code).toBe('ANX_VAULT_NOT_FOUND');
    expect(tasks.list().map((t) => t.task_id)).not.toContain('task-missing-artifact');
    const task = await tasks.propose({
      as: alice,
      title: 'x',
      id: 'task-missing-artifact',
      resources: [{ kind: 'artifact', enclave_id: enclave, key: 'design/spec.md' }],
    });
    expect(task.resources).toEqual([expect.objectContaining({ kind: 'artifact', ref, by: alice })]);
  });

  it('keeps tasks across a restart: state, log and the refusal of a replayed statement', async () => {
    const dataDir = tempDir();
    let host = await open(dataDir);
    const { alice, bob } = await team(host);
    const { task_id } = await host.teamwork.tasks.propose({ as: alice, title: 'durable' });
    await host.teamwork.tasks.claim(task_id, bob);
    const claimStatement = host.teamwork.tasks.get(task_id).log?.[1]?.statement as string;
    await host.close();
    hosts.length = 0;
    host = await open(dataDir);
    const tasks = host.teamwork.tasks;
    expect(tasks.get(task_id)).toMatchObject({ state: 'claimed', claimant: bob, seq: 2 });
    expect((await refusal(tasks.submit(task_id, 'task.claim', claimStatement))).code).toBe(
      'ANX_TASK_REPLAYED',
    );
    await tasks.notify(task_id, bob, 'in_progress');
    expect(tasks.list({ did: bob }).map((t) => [t.task_id, t.state])).toEqual([[task_id, 'in_progress']]);
  });

  it('notifies the proposer and candidates in their inboxes', async () => {
    const host = await open();
    const { alice, bob, carol } = await team(host);
    const tasks = host.teamwork.tasks;
    const { task_id } = await tasks.propose({ as: alice, title: 'notify me', candidates: [bob, carol] });
    await tasks.claim(task_id, bob);
    await host.teamwork.collab.flushed();
    await until(() => host.inbox(alice).messages.some((m) => m.type === 'task.state'), 'the claim notice');
    const toCarol = host.inbox(carol).messages.map((m) => m.type);
    expect(toCarol).toEqual(['task.proposed', 'task.state']);
    const notice = host.inbox(alice).messages.find((m) => m.type === 'task.state');
    expect(notice?.from).toBe(alice);
    expect(notice?.body).toMatchObject({
      task_id,
      change: 'task.claim',
      by: bob,
      task: { state: 'claimed' },
    });
    // Bob, who made the change, hears that it was applied (a claim from another host learns it won).
    await until(() => host.inbox(bob).messages.length === 2, "bob's confirmation");
    expect(host.inbox(bob).messages.map((m) => m.type)).toEqual(['task.proposed', 'task.state']);
  });

  it('sends notices again after a crash without delivering any twice', async () => {
    const dataDir = tempDir();
    let host = await open(dataDir);
    const { alice, bob } = await team(host);
    const { task_id } = await host.teamwork.tasks.propose({ as: alice, title: 'once', candidates: [bob] });
    await host.teamwork.tasks.claim(task_id, bob);
    await host.teamwork.collab.flushed();
    await until(() => host.inbox(alice).messages.length === 1, 'the claim notice');
    await until(() => host.inbox(bob).messages.length === 2, "bob's confirmation");
    await host.close();
    hosts.length = 0;
    host = await open(dataDir);
    // As if the host had died before recording how far its notices went: all are sent again.
    host.system.commits.put(host.store.meta, 'collab.notify.seq', 0);
    await host.system.commits.flush();
    await host.teamwork.collab.flushed();
    await host.system.quiesce();
    expect(host.inbox(alice).messages.map((m) => m.type)).toEqual(['task.state']);
    expect(host.inbox(bob).messages.map((m) => m.type)).toEqual(['task.proposed', 'task.state']);
  });

  it('checks proposals at the edge with typed errors', async () => {
    const host = await open();
    const { alice } = await team(host);
    const tasks = host.teamwork.tasks;
    expect((await refusal(tasks.propose({ as: alice, title: '' }))).code).toBe('ANX_TASK_INVALID');
    expect((await refusal(tasks.propose({ as: 'did:agentnexus:zNope', title: 'x' }))).code).toBe(
      'ANX_TASK_INVALID',
    );
    expect((await refusal(tasks.propose({ as: alice, title: 'x', id: '../x' }))).code).toBe(
      'ANX_TASK_INVALID',
    );
    // A retried proposal with the same id answers with the task; another proposal under that id is refused.
    const once = await tasks.propose({ as: alice, title: 'idempotent', id: 'task-retry' });
    expect(await tasks.propose({ as: alice, title: 'idempotent', id: 'task-retry' })).toEqual(once);
    expect((await refusal(tasks.propose({ as: alice, title: 'other', id: 'task-retry' }))).code).toBe(
      'ANX_ID_CONFLICT',
    );
    expect((await refusal(tasks.propose({ as: alice, title: 'x', enclave_id: 'missing' }))).code).toBe(
      'ANX_ENCLAVE_NOT_FOUND',
    );
    expect(() => tasks.get('task-unknown')).toThrow(/no task "task-unknown"/);
  });
});
