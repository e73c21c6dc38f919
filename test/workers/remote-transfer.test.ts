// Artifacts larger than one relay frame between a remote worker and its run's host, over a real relay (a hub, two
// leaves, a daemon on each, both with a 4 MiB limit), plus a worker host in this process that signs its own chunks;
// and pruning of a remote task on the worker's host once it is over.
import { createHash, randomBytes } from 'node:crypto';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { signStatement } from '../../actors/collab.ts';
import {
  chunkOf,
  headOf,
  REMOTE_CHUNK_BYTES,
  sha256Hex,
  type TransferHead,
} from '../../actors/remote-transfer.ts';
import type { StageTask } from '../../actors/worker-runtime.ts';
import { joinRelay, type RelayConnection } from '../../bridge/relay/join.ts';
import { connect } from '../../bridge/sdk/index.ts';
import { Host } from '../../runtime/host.ts';
import { type DaemonProcess, waitFor } from '../helpers/daemon.ts';
import { startRelayedDaemons } from '../helpers/nats.ts';
import { cleanupTempDirs, tempDir } from '../helpers/tmp.ts';
import { codeOf, createEnclave, natsOf, online, restartHard, seeEachOther } from './relayed.ts';

const LIMIT = 4 * 1024 * 1024;
const DAEMON_ENV = { ANX_HEARTBEAT_MS: '400', ANX_REMOTE_ARTIFACT_MAX_BYTES: String(LIMIT) };

let relayed: Awaited<ReturnType<typeof startRelayedDaemons>>;
let home: DaemonProcess;
let away: DaemonProcess;
let dirs: [string, string];
const inProcess: Array<{ host: Host; conn: RelayConnection }> = [];

beforeAll(async () => {
  relayed = await startRelayedDaemons('anx-transfer', DAEMON_ENV);
  [home, away] = relayed.daemons;
  dirs = relayed.dirs;
}, 120_000);

afterAll(async () => {
  for (const { host, conn } of inProcess.splice(0)) {
    await conn.close().catch(() => {});
    await host.close().catch(() => {});
  }
  await relayed?.stop();
  cleanupTempDirs();
}, 60_000);

interface Version {
  version: number;
  author: string;
  hash: string;
  size: number;
}

/** Creates the Enclave `id` on host A, owned by `owner`, with `member` as a read/write member. */
const enclave = (id: string, owner: string, member: string) => createEnclave(home, id, owner, [member]);

/** A one-stage run on host A whose writer (output `out.bin`) is `worker`. */
async function writerRun(enclaveId: string, owner: string, worker: string): Promise<string> {
  const { run_id } = await home.api.post<{ run_id: string }>('/v1/runs', {
    playbook: {
      name: enclaveId,
      version: '1.0.0',
      objective: '{{objective}}',
      stages: [{ id: 'write', role: 'writer', brief: 'Write.', output: { kind: 'binary', key: 'out.bin' } }],
    },
    objective: 'transform the input',
    owner,
    enclave: enclaveId,
    assignments: { writer: worker },
  });
  return run_id;
}

async function putBytes(enclaveId: string, as: string, key: string, bytes: Uint8Array): Promise<void> {
  await home.api.post(`/v1/vault/${enclaveId}/put`, {
    as,
    key,
    kind: 'binary',
    content_base64: Buffer.from(bytes).toString('base64'),
    summary: key,
  });
}

const history = async (enclaveId: string, as: string, key: string) =>
  (
    await home.api.get<{ versions: Version[] }>(
      `/v1/vault/${enclaveId}/history?${new URLSearchParams({ key, as })}`,
    )
  ).versions;

const runState = async (runId: string) => (await home.api.get<{ state: string }>(`/v1/runs/${runId}`)).state;

it('reads and delivers multi-MiB artifacts between hosts byte for byte: the delivery is in A’s vault, authored by the worker DID of B', async () => {
  const alice = await connect({ dataDir: dirs[0], name: 'Alice' });
  const bob = await connect({ dataDir: dirs[1], name: 'Bob' });
  try {
    await seeEachOther(home, bob.did, away, alice.did);
    await enclave('big', alice.did, bob.did);
    // Not a multiple of the chunk size, so the last chunk is a short one.
    const input = new Uint8Array(randomBytes(3 * 1024 * 1024 + 12_345));
    await putBytes('big', alice.did, 'data/input.bin', input);
    let readHash: string | undefined;
    let expected: Uint8Array | undefined;
    bob.worker.onStage('writer', async (ctx) => {
      const got = await ctx.vault.get('data/input.bin');
      readHash = sha256Hex(got.content);
      expected = new Uint8Array(Buffer.concat([Buffer.from(got.content).reverse(), Buffer.from('tail')]));
      await ctx.deliver({ value: expected, summary: 'reversed' });
    });
    const runId = await writerRun('big', alice.did, bob.did);
    await waitFor(async () => (await runState(runId)) === 'completed', 120_000, 'the run completes');

    expect(readHash).toBe(sha256Hex(input));
    const versions = await history('big', alice.did, 'out.bin');
    expect(versions.map((v) => [v.version, v.author, v.size])).toEqual([
      [1, bob.did, (expected as Uint8Array).byteLength],
    ]);
    expect(versions[0]?.hash).toBe(sha256Hex(expected as Uint8Array));
    const stored = await home.api.get<{ content_base64: string }>(
      `/v1/vault/big/get?${new URLSearchParams({ key: 'out.bin', as: alice.did })}`,
    );
    expect(Buffer.from(stored.content_base64, 'base64').equals(Buffer.from(expected as Uint8Array))).toBe(
      true,
    );
  } finally {
    for (const c of [alice, bob]) await c.close();
  }
}, 240_000);

it('refuses an artifact over the limit on either side with ANX_ARTIFACT_TOO_LARGE naming the limit, and writes nothing', async () => {
  const alice = await connect({ dataDir: dirs[0], name: 'Alice' });
  const carol = await connect({ dataDir: dirs[1], name: 'Carol' });
  try {
    await seeEachOther(home, carol.did, away, alice.did);
    await enclave('huge', alice.did, carol.did);
    await putBytes('huge', alice.did, 'data/huge.bin', new Uint8Array(LIMIT + 1));
    const refusals: Array<{ code: string; message: string; hint: string }> = [];
    const note = (err: unknown) =>
      refusals.push({
        code: codeOf(err),
        message: String((err as Error).message),
        hint: String((err as { hint?: unknown }).hint),
      });
    carol.worker.onStage('writer', async (ctx) => {
      // Refused by host A, which holds the artifact.
      await ctx.vault
        .get('data/huge.bin')
        .then(() => refusals.push({ code: 'read', message: '', hint: '' }), note);
      // Refused by host B before anything is sent.
      await ctx
        .deliver({ value: new Uint8Array(LIMIT + 1) })
        .then(() => refusals.push({ code: 'delivered', message: '', hint: '' }), note);
      await ctx.fail('too large', { fatal: true });
    });
    const runId = await writerRun('huge', alice.did, carol.did);
    await waitFor(async () => refusals.length === 2, 120_000, 'both refusals');
    expect(refusals.map((r) => r.code)).toEqual(['ANX_ARTIFACT_TOO_LARGE', 'ANX_ARTIFACT_TOO_LARGE']);
    for (const r of refusals) {
      expect(r.message).toContain(`${LIMIT + 1} bytes`);
      expect(r.message).toContain(`${LIMIT}-byte limit`);
      expect(r.hint).toContain('ANX_REMOTE_ARTIFACT_MAX_BYTES');
    }
    await waitFor(async () => (await runState(runId)) !== 'running', 60_000, 'the failure reaches the run');
    expect(await history('huge', alice.did, 'out.bin').catch(() => [])).toEqual([]);
  } finally {
    for (const c of [alice, carol]) await c.close();
  }
}, 240_000);

/** Opens a host in this process on `dataDir`, joined to host B's leaf. */
async function openHere(dataDir: string): Promise<{ host: Host; conn: RelayConnection }> {
  const conn = await joinRelay({ dataDir, natsUrl: natsOf(away), heartbeatMs: 300 });
  const host = await Host.open({ dataDir, router: conn.relay, noSync: true });
  conn.relay.bind(host);
  await conn.relay.start();
  const opened = { host, conn };
  inProcess.push(opened);
  return opened;
}

/** A host in this process joined to host B's leaf, with a worker DID whose requests the test may also sign itself. */
async function workerHostHere(name: string) {
  const dataDir = tempDir('anx-transfer-worker-');
  const { host, conn } = await openHere(dataDir);
  const did = (await host.createIdentity({ name })).did;
  /** Sends one signed request about `task` to its home and resolves with the home's answer body. */
  const request = async (
    task: StageTask,
    type: string,
    fields: Record<string, unknown>,
    extra: Record<string, unknown> = {},
  ): Promise<Record<string, unknown>> => {
    const home = task.home as string;
    const statement = signStatement(host.keystore, host.system.clock, did, type, home, {
      task_id: task.task_id,
      ...fields,
    });
    const env = host.system.envelope({
      type,
      from: did,
      to: home,
      body: { statement, ...extra },
      ctx: { run_id: task.run_id, task_id: task.task_id },
    });
    await host.system.accept([env]);
    let answer: Record<string, unknown> | undefined;
    await waitFor(
      () => {
        for (const { value } of host.system.records('inbox', did)) {
          const r = value as { type: string; reply?: string; body: Record<string, unknown> };
          if (r.type === 'worker.answer' && r.reply === env.id) answer = r.body;
        }
        return answer !== undefined;
      },
      90_000,
      `the answer to ${type}`,
    );
    return answer as Record<string, unknown>;
  };
  /** Sends chunk `index` of a transfer, signed with the hash of `data` unless told otherwise. */
  const chunk = (
    task: StageTask,
    head: TransferHead,
    index: number,
    data: Uint8Array,
    signed = sha256Hex(data),
  ) => request(task, 'worker.chunk', { ...head, index, chunk_sha256: signed }, { data });
  /** Once host A sees this worker: a new Enclave `enclaveId` of `owner` with it as member. */
  const member = async (enclaveId: string, owner: string): Promise<void> => {
    await waitFor(async () => await online(home.api, did), 30_000, 'host A sees the worker');
    await enclave(enclaveId, owner, did);
  };
  /** As a member of a new Enclave, a one-stage run assigned to it; resolves when the task reached this host. */
  const assigned = async (enclaveId: string, owner: string): Promise<{ runId: string; task: StageTask }> => {
    await member(enclaveId, owner);
    const runId = await writerRun(enclaveId, owner, did);
    let task: StageTask | undefined;
    await waitFor(
      () => {
        task = host.teamwork.workers.pending(did)[0];
        return task !== undefined;
      },
      60_000,
      'the assignment reaches the worker',
    );
    return { runId, task: task as StageTask };
  };
  return { host, conn, dataDir, did, request, chunk, member, assigned };
}

/** Alice's DID on host A (the SDK creates her there the first time). */
async function aliceOnA(): Promise<string> {
  const alice = await connect({ dataDir: dirs[0], name: 'Alice' });
  await alice.close();
  return alice.did;
}

it('refuses a tampered chunk, a transfer whose whole does not match its hash, and an over-limit size, writing nothing; a retried transfer then completes', async () => {
  const owner = await aliceOnA();
  const trudy = await workerHostHere('Trudy');
  const { runId, task } = await trudy.assigned('tamper', owner);
  const content = new Uint8Array(randomBytes(2 * REMOTE_CHUNK_BYTES + 777));
  const head = headOf(content);

  // Bytes changed after signing: the chunk does not hash to what the statement says.
  const tampered = new Uint8Array(chunkOf(content, 1));
  tampered[100] = (tampered[100] as number) ^ 0xff;
  const bad = await trudy.chunk(task, head, 1, tampered, sha256Hex(chunkOf(content, 1)));
  expect(bad).toMatchObject({ ok: false, code: 'ANX_TRANSFER_MISMATCH' });

  // Every chunk well signed, but the whole is not the content the transfer names.
  const other = new Uint8Array(content);
  other[5] = (other[5] as number) ^ 0xff;
  const claimed = { ...head, sha256: sha256Hex(other) };
  for (let i = 0; i < head.count; i++)
    expect(await trudy.chunk(task, claimed, i, chunkOf(content, i))).toMatchObject({ ok: true, index: i });
  const mismatched = await trudy.request(task, 'worker.deliver', { content: claimed });
  expect(mismatched).toMatchObject({ ok: false, code: 'ANX_TRANSFER_MISMATCH' });
  // What was staged for it went with the refusal.
  expect(await trudy.request(task, 'worker.deliver', { content: claimed })).toMatchObject({
    ok: false,
    code: 'ANX_TRANSFER_INCOMPLETE',
  });

  // A size over host A's limit, whatever the sender's own limit.
  const overHead = { ...head, size: LIMIT + 1, count: Math.ceil((LIMIT + 1) / REMOTE_CHUNK_BYTES) };
  const over = await trudy.chunk(task, overHead, 0, chunkOf(content, 0));
  expect(over).toMatchObject({ ok: false, code: 'ANX_ARTIFACT_TOO_LARGE' });

  expect(await history('tamper', owner, 'out.bin').catch(() => [])).toEqual([]);
  expect(await runState(runId)).toBe('running');

  // Through the worker runtime of that host: chunks, then the delivery, checked whole at host A.
  const ref = await trudy.host.teamwork.workers.deliver(trudy.did, task.task_id, { value: content });
  expect(ref.hash).toBe(createHash('sha256').update(content).digest('hex'));
  await waitFor(async () => (await runState(runId)) === 'completed', 60_000, 'the run completes');
  const versions = await history('tamper', owner, 'out.bin');
  expect(versions.map((v) => [v.author, v.hash, v.size])).toEqual([[trudy.did, head.sha256, head.size]]);
}, 240_000);

it('resumes a delivery after host A is killed with -9 between its chunks, and writes it once', async () => {
  const owner = await aliceOnA();
  const vic = await workerHostHere('Vic');
  const { runId, task } = await vic.assigned('resume', owner);
  const content = new Uint8Array(randomBytes(3 * REMOTE_CHUNK_BYTES + 5));
  const head = headOf(content);
  const sendChunk = (i: number) => vic.chunk(task, head, i, chunkOf(content, i));
  expect(await sendChunk(0)).toMatchObject({ ok: true });
  expect(await sendChunk(1)).toMatchObject({ ok: true });
  home = await restartHard(relayed, 0, DAEMON_ENV);
  // Chunk 1 again (as after a retry) and the rest; the first two survived in host A's staging.
  for (const i of [1, 2, 3]) expect(await sendChunk(i)).toMatchObject({ ok: true, index: i });
  const delivered = await vic.request(task, 'worker.deliver', { content: head });
  expect(delivered).toMatchObject({ ok: true, ref: { hash: head.sha256, size: head.size } });
  // The same delivery sent again is answered with the first outcome.
  expect(await vic.request(task, 'worker.deliver', { content: head })).toEqual(delivered);
  await waitFor(async () => (await runState(runId)) === 'completed', 60_000, 'the run completes');
  const versions = await history('resume', owner, 'out.bin');
  expect(versions.map((v) => [v.author, v.hash])).toEqual([[vic.did, head.sha256]]);
}, 240_000);

it('finishes a chunked delivery after host B is killed with -9 in the middle of it, writing the whole content once', async () => {
  const owner = await aliceOnA();
  const dan = (await away.api.post<{ did: string }>('/v1/identities', { name: 'Dan' })).did;
  // The same 3.5 MiB each time the script runs: a retried transfer finds its chunks staged.
  const size = 3.5 * 1024 * 1024;
  await away.api.post('/v1/workers/scripts', {
    did: dan,
    role: 'writer',
    argv: [
      process.execPath,
      '-e',
      `const b=Buffer.alloc(${size});for(let i=0;i<b.length;i++)b[i]=i%251;process.stdout.write(b)`,
    ],
  });
  const expected = Buffer.alloc(size);
  for (let i = 0; i < size; i++) expected[i] = i % 251;
  await seeEachOther(home, dan, away, owner);
  await enclave('crash', owner, dan);
  const runId = await writerRun('crash', owner, dan);
  // Killed once host A has answered a first chunk.
  await waitFor(
    async () =>
      (
        await away.api.get<{ messages: Array<{ type: string }> }>(`/v1/inbox/${encodeURIComponent(dan)}`)
      ).messages.some((m) => m.type === 'worker.answer'),
    60_000,
    'a first chunk answered',
  );
  away = await restartHard(relayed, 1, DAEMON_ENV);
  await waitFor(
    async () => (await runState(runId)) === 'completed',
    120_000,
    'the run completes after the restart',
  );
  const versions = await history('crash', owner, 'out.bin');
  expect(versions.map((v) => [v.version, v.author, v.size, v.hash])).toEqual([
    [1, dan, size, createHash('sha256').update(expected).digest('hex')],
  ]);
}, 240_000);

it('prunes a remote task on the worker’s host once it is over: its done mark and inbox records go, and it is not handed out again', async () => {
  const owner = await aliceOnA();
  const wes = await workerHostHere('Wes');
  await wes.member('prune', owner);
  const workers = wes.host.teamwork.workers;
  let taskId: string | undefined;
  workers.worker(wes.did).onStage('writer', async (ctx) => {
    taskId = ctx.task.task_id;
    await ctx.deliver({ value: new Uint8Array(randomBytes(REMOTE_CHUNK_BYTES + 1)), summary: 'two chunks' });
  });
  const runId = await writerRun('prune', owner, wes.did);
  await waitFor(async () => (await runState(runId)) === 'completed', 60_000, 'the run completes');
  await workers.idle();
  const did = wes.did;
  const ofTask = () =>
    wes.host.system
      .records('inbox', did)
      .map(({ value }) => value as { type: string; ctx?: { task_id?: string }; body?: { task_id?: string } })
      .filter((r) => (r.ctx?.task_id ?? r.body?.task_id) === taskId)
      .map((r) => r.type);
  // The assignment and the home's answers to the two chunks and the delivery.
  expect(ofTask().sort()).toEqual(['stage.assign', 'worker.answer', 'worker.answer', 'worker.answer']);
  expect(workers.answered(did, taskId as string)).toBeDefined();

  expect(await workers.prune()).toBe(1);
  expect(ofTask()).toEqual([]);
  expect(workers.answered(did, taskId as string)).toBeUndefined();
  expect(workers.pending(did)).toEqual([]);
  // The run's record of the delivery is untouched at home.
  expect((await history('prune', owner, 'out.bin')).map((v) => v.author)).toEqual([did]);

  // Restarted, the worker host finds nothing of the task to hand out (the inbox is read when a handler registers).
  inProcess.splice(
    inProcess.findIndex((h) => h.host === wes.host),
    1,
  );
  await wes.conn.close();
  await wes.host.close();
  const again = await openHere(wes.dataDir);
  let calls = 0;
  again.host.teamwork.workers.worker(did).onStage('writer', () => {
    calls++;
  });
  expect(again.host.teamwork.workers.pending(did)).toEqual([]);
  await again.host.teamwork.workers.idle();
  expect(calls).toBe(0);
}, 240_000);
