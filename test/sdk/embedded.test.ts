// The SDK in embedded mode: the kernel runs in the test's process, on its own data directory.
import { afterAll, expect, it } from 'vitest';
import { type AnxClient, connect, type Message } from '../../bridge/sdk/index.ts';
import { Host } from '../../runtime/host.ts';
import { waitFor } from '../helpers/daemon.ts';
import { cleanupTempDirs, tempDir } from '../helpers/tmp.ts';

afterAll(() => cleanupTempDirs());

const ROLES = ['pm', 'architect', 'developer', 'tester', 'reviewer'] as const;

async function take(iterator: AsyncIterator<Message>, n: number): Promise<Message[]> {
  const out: Message[] = [];
  while (out.length < n) {
    const next = await iterator.next();
    if (next.done) break;
    out.push(next.value);
  }
  return out;
}

it('exchanges messages between two agents on one embedded host, new mail arriving through messages()', async () => {
  const host = await Host.open({ dataDir: tempDir(), noSync: true });
  const alice = await connect({ mode: 'embedded', host, name: 'Alice' });
  const bob = await connect({ mode: 'embedded', host, name: 'Bob' });
  try {
    expect(alice.mode).toBe('embedded');
    expect(alice.did).not.toBe(bob.did);
    const bobMail = bob.messages();
    const sent = await alice.send(bob.did, { text: 'hello' }, { type: 'chat.hello' });
    const [first] = await take(bobMail, 1);
    expect(first).toMatchObject({
      id: sent.id,
      from: alice.did,
      type: 'chat.hello',
      body: { text: 'hello' },
    });
    await bob.send(alice.did, { text: 'hi' });
    await waitFor(async () => (await alice.inbox()).messages.length === 1, 10_000, "Alice's answer");
    const page = await alice.inbox();
    expect(page.messages[0]).toMatchObject({ from: bob.did, type: 'message', body: { text: 'hi' } });
  } finally {
    await alice.close();
    await bob.close();
    await host.close();
  }
});

it('reuses the identity of a name, and an existing one by DID, across reopenings of its own data directory', async () => {
  const dataDir = tempDir();
  const first = await connect({ mode: 'embedded', dataDir, name: 'Solo' });
  const did = first.did;
  await first.close();
  const byName = await connect('Solo', { mode: 'embedded', dataDir });
  expect(byName.did).toBe(did);
  await byName.close();
  const byDid = await connect({ mode: 'embedded', dataDir, did });
  expect(byDid.did).toBe(did);
  await byDid.close();
});

it('yields nothing twice: resending an id is a duplicate and the iterator resumes after a given seq', async () => {
  const host = await Host.open({ dataDir: tempDir(), noSync: true });
  const alice = await connect({ mode: 'embedded', host, name: 'Alice' });
  const bob = await connect({ mode: 'embedded', host, name: 'Bob' });
  try {
    const id = 'retry-0123456789ab';
    expect(await alice.send(bob.did, 'one', { id })).toEqual({ id, duplicate: false });
    expect(await alice.send(bob.did, 'one', { id })).toEqual({ id, duplicate: true });
    await alice.send(bob.did, 'two');
    await alice.send(bob.did, 'three');
    const all = await take(bob.messages({ afterSeq: 0 }), 3);
    expect(all.map((m) => m.body)).toEqual(['one', 'two', 'three']);
    const rest = await take(bob.messages({ afterSeq: all[0]!.seq }), 2);
    expect(rest.map((m) => m.body)).toEqual(['two', 'three']);
  } finally {
    await alice.close();
    await bob.close();
    await host.close();
  }
});

it('ends messages() when the client closes or the signal aborts', async () => {
  const host = await Host.open({ dataDir: tempDir(), noSync: true });
  const alice = await connect({ mode: 'embedded', host, name: 'Alice' });
  const controller = new AbortController();
  const aborted = alice.messages({ signal: controller.signal }).next();
  controller.abort();
  expect(await aborted).toEqual({ done: true, value: undefined });
  const waiting = alice.messages().next();
  await alice.close();
  expect(await waiting).toEqual({ done: true, value: undefined });
  // The shared host stays open for its other users.
  expect(host.identities()).toHaveLength(1);
  await host.close();
});

it('puts and gets vault artifacts as its identity, refused for a DID outside the Enclave', async () => {
  const host = await Host.open({ dataDir: tempDir(), noSync: true });
  const owner = await connect({ mode: 'embedded', host, name: 'Owner' });
  const stranger = await connect({ mode: 'embedded', host, name: 'Stranger' });
  try {
    await host.teamwork.enclaves.create({ owner: owner.did, id: 'notes' });
    const ref = await owner.vault.put('notes', 'plan.md', { content: '# plan', summary: 'the plan' });
    expect(ref).toMatchObject({ enclave_id: 'notes', key: 'plan.md', version: 1 });
    await owner.vault.put('notes', 'plan.md', { content: new TextEncoder().encode('# plan v2') });
    const latest = await owner.vault.get('notes', 'plan.md');
    expect(new TextDecoder().decode(latest.content)).toBe('# plan v2');
    expect(latest.meta.author).toBe(owner.did);
    const v1 = await owner.vault.get('notes', 'plan.md', { version: 1 });
    expect(new TextDecoder().decode(v1.content)).toBe('# plan');
    await expect(stranger.vault.get('notes', 'plan.md')).rejects.toMatchObject({
      code: 'ANX_FORBIDDEN_ENCLAVE',
    });
  } finally {
    await owner.close();
    await stranger.close();
    await host.close();
  }
});

it('runs a dev-team playbook with each role a worker.onStage handler, followed through runs.getStatus', async () => {
  const host = await Host.open({ dataDir: tempDir(), noSync: true });
  const owner = await connect({ mode: 'embedded', host, name: 'Owner' });
  const workers: AnxClient[] = [];
  try {
    await host.teamwork.enclaves.create({ owner: owner.did, id: 'team' });
    const assignments: Record<string, string> = {};
    for (const role of ROLES) {
      const worker = await connect({ mode: 'embedded', host, name: role });
      workers.push(worker);
      assignments[role] = worker.did;
      await host.teamwork.enclaves.setMember('team', owner.did, {
        did: worker.did,
        role,
        permissions: ['read', 'write'],
      });
      worker.worker.onStage(role, async (ctx) => {
        const inputs = await Promise.all(ctx.snapshot.inputs.map((r) => ctx.vault.text(r)));
        await ctx.progress({ kind: 'message', payload: { text: `${role} halfway` } });
        await ctx.deliver({ value: `${role} read ${inputs.length} input(s)\n`, summary: `${role} done` });
      });
    }
    const { run_id } = await host.teamwork.startRun({
      playbook: 'dev-team',
      objective: 'ship the login page',
      owner: owner.did,
      enclave: 'team',
      assignments,
    });
    await waitFor(async () => (await owner.runs.getStatus(run_id)).state === 'completed', 30_000, 'the run');
    const status = await owner.runs.getStatus(run_id);
    expect(status.stages.length).toBe(ROLES.length);
    // Each handler's progress is in the run's trace.
    const said = host.system.events
      .trace(run_id, { kinds: ['message'] })
      .map((e) => (e.payload as { text?: string }).text);
    for (const role of ROLES) expect(said).toContain(`${role} halfway`);
    await expect(owner.runs.getStatus('no-such-run')).rejects.toMatchObject({ code: 'ANX_RUN_NOT_FOUND' });
  } finally {
    for (const w of workers) await w.close();
    await owner.close();
    await host.close();
  }
});
