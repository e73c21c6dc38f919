// The SDK as a client of a real daemon process: messages, identities, vault and stage handlers over the local API.
import { readFileSync } from 'node:fs';
import { type AddressInfo, createServer, type Socket } from 'node:net';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { ApiClient, DaemonConnectionLostError, DaemonTimeoutError } from '../../bridge/api/client.ts';
import { type AnxClient, connect, type Message } from '../../bridge/sdk/index.ts';
import { exitCodeOf } from '../../runtime/cli/exit-codes.ts';
import { type DaemonProcess, killHard, startDaemonProcess, waitFor } from '../helpers/daemon.ts';
import { cleanupTempDirs, tempDir } from '../helpers/tmp.ts';

let daemon: DaemonProcess;
let dataDir: string;

beforeAll(async () => {
  dataDir = tempDir();
  daemon = await startDaemonProcess(dataDir);
});

afterAll(async () => {
  await killHard(daemon);
  cleanupTempDirs();
});

it('exchanges messages between two agents through the daemon, the answer arriving through messages()', async () => {
  const alice = await connect({ dataDir, name: 'Alice' });
  const bob = await connect('Bob', { dataDir });
  try {
    expect(alice.mode).toBe('daemon');
    const aliceMail = alice.messages();
    const bobMail = bob.messages();
    await alice.send(bob.did, { text: 'ping' }, { type: 'chat.ping' });
    const ping = (await bobMail.next()).value as Message;
    expect(ping).toMatchObject({ from: alice.did, type: 'chat.ping', body: { text: 'ping' } });
    await bob.send(ping.from, { text: 'pong' });
    const pong = (await aliceMail.next()).value as Message;
    expect(pong).toMatchObject({ from: bob.did, type: 'message', body: { text: 'pong' } });
    expect((await bob.inbox()).messages.map((m) => m.id)).toContain(ping.id);
  } finally {
    await alice.close();
    await bob.close();
  }
});

it('reuses the identity of a name and acts as an existing DID', async () => {
  const first = await connect({ dataDir, name: 'Carol' });
  const again = await connect({ dataDir, name: 'Carol' });
  const byDid = await connect({ dataDir, did: first.did });
  expect(again.did).toBe(first.did);
  expect(byDid.did).toBe(first.did);
  // Agents connecting under one new name at the same moment get one identity, not one each.
  const racing = await Promise.all([1, 2, 3].map(() => connect({ dataDir, name: 'Racer' })));
  expect(new Set(racing.map((c) => c.did)).size).toBe(1);
  const { identities } = await daemon.api.get<{ identities: Array<{ name?: string }> }>('/v1/identities');
  expect(identities.filter((i) => i.name === 'Racer')).toHaveLength(1);
  for (const c of [first, again, byDid, ...racing]) await c.close();
});

it('puts and gets vault artifacts through the daemon as its identity', async () => {
  const owner = await connect({ dataDir, name: 'Vault owner' });
  try {
    await daemon.api.post('/v1/enclaves', { owner: owner.did, id: 'sdk-notes' });
    const ref = await owner.vault.put('sdk-notes', 'bin.dat', { content: new Uint8Array([0, 1, 2, 255]) });
    expect(ref).toMatchObject({ key: 'bin.dat', version: 1 });
    await owner.vault.put('sdk-notes', 'bin.dat', { content: 'text now', kind: 'text', summary: 'v2' });
    expect([...(await owner.vault.get('sdk-notes', 'bin.dat', { version: 1 })).content]).toEqual([
      0, 1, 2, 255,
    ]);
    const latest = await owner.vault.get('sdk-notes', 'bin.dat');
    expect(new TextDecoder().decode(latest.content)).toBe('text now');
    expect(latest.meta).toMatchObject({ version: 2, summary: 'v2', author: owner.did });
  } finally {
    await owner.close();
  }
});

it('answers stage tasks with worker.onStage handlers polling the daemon, the run completing', async () => {
  const roles = ['pm', 'architect', 'developer', 'tester', 'reviewer'] as const;
  const owner = await connect({ dataDir, name: 'Run owner' });
  const workers: AnxClient[] = [];
  try {
    await daemon.api.post('/v1/enclaves', { owner: owner.did, id: 'sdk-team' });
    const assignments: Record<string, string> = {};
    for (const role of roles) {
      const worker = await connect({ dataDir, name: `sdk-${role}` });
      workers.push(worker);
      assignments[role] = worker.did;
      await daemon.api.post('/v1/enclaves/sdk-team/members', {
        as: owner.did,
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
    const { run_id } = await daemon.api.post<{ run_id: string }>('/v1/runs', {
      playbook: 'dev-team',
      objective: 'ship the login page',
      owner: owner.did,
      enclave: 'sdk-team',
      assignments,
    });
    await waitFor(async () => (await owner.runs.getStatus(run_id)).state === 'completed', 60_000, 'the run');
    expect((await owner.runs.getStatus(run_id)).stages).toHaveLength(roles.length);
    // Each handler's progress is in the run's trace.
    const { events } = await daemon.api.get<{ events: Array<{ kind: string; payload: unknown }> }>(
      `/v1/trace/${run_id}`,
    );
    const said = events.filter((e) => e.kind === 'message').map((e) => (e.payload as { text?: string }).text);
    for (const role of roles) expect(said).toContain(`${role} halfway`);
  } finally {
    for (const w of workers) await w.close();
    await owner.close();
  }
});

it('hands a role back to the earlier handler when the newest unregisters, and aborts a handler whose stage timed out', async () => {
  const owner = await connect({ dataDir, name: 'Stack owner' });
  const worker = await connect({ dataDir, name: 'Stack worker' });
  try {
    await daemon.api.post('/v1/enclaves', { owner: owner.did, id: 'sdk-stack' });
    await daemon.api.post('/v1/enclaves/sdk-stack/members', {
      as: owner.did,
      did: worker.did,
      role: 'writer',
      permissions: ['read', 'write'],
    });
    const start = (stages: unknown[]) =>
      daemon.api.post<{ run_id: string }>('/v1/runs', {
        playbook: { name: 'stack', version: '1', stages },
        objective: 'o',
        owner: owner.did,
        enclave: 'sdk-stack',
        assignments: { writer: worker.did },
      });
    const stage = { id: 'write', role: 'writer', output: { kind: 'md', key: 'out.md' } };
    const answeredBy: string[] = [];
    worker.worker.onStage('writer', async (ctx) => {
      answeredBy.push('first');
      await ctx.deliver({ value: 'first' });
    });
    const offSecond = worker.worker.onStage('writer', async (ctx) => {
      answeredBy.push('second');
      await ctx.deliver({ value: 'second' });
    });
    const one = await start([stage]);
    await waitFor(
      async () => (await owner.runs.getStatus(one.run_id)).state === 'completed',
      30_000,
      'run one',
    );
    offSecond();
    const two = await start([stage]);
    await waitFor(
      async () => (await owner.runs.getStatus(two.run_id)).state === 'completed',
      30_000,
      'run two',
    );
    expect(answeredBy).toEqual(['second', 'first']);

    // A stage that times out: the daemon stops listing its task and the handler's signal fires.
    const aborted: boolean[] = [];
    worker.worker.onStage('slow', async (ctx) => {
      await new Promise<void>((resolve) => {
        ctx.signal.addEventListener('abort', () => resolve(), { once: true });
        setTimeout(resolve, 30_000).unref();
      });
      aborted.push(ctx.signal.aborted);
    });
    await daemon.api.post('/v1/enclaves/sdk-stack/members', {
      as: owner.did,
      did: worker.did,
      role: 'slow',
      permissions: ['read', 'write'],
    });
    await daemon.api.post('/v1/runs', {
      playbook: {
        name: 'slow',
        version: '1',
        stages: [
          { id: 'wait', role: 'slow', timeout: '1s', max_retries: 0, output: { kind: 'md', key: 'w.md' } },
        ],
      },
      objective: 'o',
      owner: owner.did,
      enclave: 'sdk-stack',
      assignments: { slow: worker.did },
    });
    await waitFor(() => aborted.length > 0, 30_000, 'the handler to see its stage end');
    expect(aborted).toEqual([true]);
  } finally {
    await worker.close();
    await owner.close();
  }
});

it('reports daemon errors as typed errors with their code', async () => {
  const dave = await connect({ dataDir, name: 'Dave' });
  try {
    await expect(dave.runs.getStatus('no-such-run')).rejects.toMatchObject({
      name: 'ApiError',
      code: 'ANX_RUN_NOT_FOUND',
    });
    await expect(connect({ dataDir: tempDir(), name: 'Nobody' })).rejects.toMatchObject({
      code: 'ANX_DAEMON_NOT_RUNNING',
    });
  } finally {
    await dave.close();
  }
});

it('follows the daemon across a kill -9 and restart (its port is chosen anew): sends go through and messages() keeps yielding', async () => {
  const alice = await connect({ dataDir, name: 'Restart Alice' });
  const bob = await connect({ dataDir, name: 'Restart Bob' });
  try {
    const bobMail = bob.messages();
    await alice.send(bob.did, 'before');
    expect((await bobMail.next()).value).toMatchObject({ body: 'before' });
    const waiting = bobMail.next();
    await killHard(daemon);
    // An iterator begun while no daemon answers waits for one instead of ending with the error.
    const late = bob.messages();
    const lateFirst = late.next();
    daemon = await startDaemonProcess(dataDir);
    await alice.send(bob.did, 'after');
    expect((await waiting).value).toMatchObject({ from: alice.did, body: 'after' });
    // Its starting point is the newest message once the daemon answers (that may be before or after
    // "after" landed): send until it yields; what it yields was sent after the restart.
    let yielded: IteratorResult<Message> | undefined;
    lateFirst.then((r) => {
      yielded = r;
    });
    for (let i = 0; i < 100 && yielded === undefined; i++) {
      await alice.send(bob.did, `late ${i}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(yielded?.value).toMatchObject({ from: alice.did, body: expect.stringMatching(/^(after$|late )/) });
    await late.return?.(undefined);
  } finally {
    await alice.close();
    await bob.close();
  }
});

it('follows a daemon restarted on the same port (it writes a new token), keeps the token out of sight, and settles calls on close', async () => {
  const port = await freePort();
  await killHard(daemon);
  daemon = await startDaemonProcess(dataDir, 30_000, { args: ['--port', String(port)] });
  const alice = await connect({ dataDir, name: 'Same-port Alice' });
  const bob = await connect({ dataDir, name: 'Same-port Bob' });
  try {
    const token = readFileSync(join(dataDir, 'api.token'), 'utf8').trim();
    expect(inspect(alice, { depth: 8, showHidden: true })).not.toContain(token);
    expect(JSON.stringify((alice as unknown as { api: unknown }).api)).not.toContain(token);
    await killHard(daemon);
    daemon = await startDaemonProcess(dataDir, 30_000, { args: ['--port', String(port)] });
    expect(readFileSync(join(dataDir, 'api.token'), 'utf8').trim()).not.toBe(token);
    // The old token is refused (401) by the new daemon; the client reads the new one and goes on.
    await alice.send(bob.did, 'after a restart on the same port');
    expect((await bob.inbox()).messages.map((m) => m.body)).toContain('after a restart on the same port');
    // A body JSON cannot carry is refused before anything is sent, not taken for a missing daemon.
    await expect(alice.send(bob.did, { n: 10n })).rejects.toMatchObject({ code: 'ANX_SDK_ARGUMENT' });
    await expect(
      daemon.api.post('/v1/messages', { from: alice.did, to: bob.did, body: 10n }),
    ).rejects.toMatchObject({
      code: 'ANX_REQUEST_INVALID',
    });
    // A call waiting on a daemon that does not answer ends when the client closes.
    process.kill(daemon.pid, 'SIGSTOP');
    try {
      const pending = alice.send(bob.did, 'never answered');
      const outcome = pending.then(
        () => 'sent',
        (err: { code: string }) => err.code,
      );
      await alice.close();
      expect(await outcome).toBe('ANX_SDK_CLOSED');
    } finally {
      process.kill(daemon.pid, 'SIGCONT');
    }
  } finally {
    await alice.close();
    await bob.close();
  }
});

it('tells a daemon that never took the request from a connection lost after it did', async () => {
  // Reads the request, then cuts the connection without an answer.
  const cut = createServer((socket) => socket.once('data', () => socket.destroy()));
  await new Promise<void>((resolve) => cut.listen(0, '127.0.0.1', resolve));
  const { port } = cut.address() as AddressInfo;
  try {
    await expect(
      new ApiClient(`http://127.0.0.1:${port}`, 't').post('/v1/messages', {}),
    ).rejects.toMatchObject({
      code: 'ANX_DAEMON_CONNECTION_LOST',
    });
  } finally {
    await new Promise((resolve) => cut.close(resolve));
  }
  await expect(new ApiClient(`http://127.0.0.1:${port}`, 't').post('/v1/messages', {})).rejects.toMatchObject(
    {
      code: 'ANX_DAEMON_NOT_RUNNING',
    },
  );
});

it('sends a read cut off before its answer once more on a new connection, and never a write', async () => {
  // The first request on each connection is cut off unanswered (an idle keep-alive connection the
  // daemon closes just as a request is written on it); the next connection's request is answered.
  let requests = 0;
  let cutNext = true;
  const flaky = createServer((socket) =>
    socket.once('data', () => {
      requests++;
      if (cutNext) {
        cutNext = false;
        socket.destroy();
        return;
      }
      cutNext = true;
      const body = '{"ok":true}';
      socket.end(
        `HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\nconnection: close\r\n\r\n${body}`,
      );
    }),
  );
  await new Promise<void>((resolve) => flaky.listen(0, '127.0.0.1', resolve));
  const { port } = flaky.address() as AddressInfo;
  try {
    const client = new ApiClient(`http://127.0.0.1:${port}`, 't');
    expect(await client.get('/v1/status')).toEqual({ ok: true });
    expect(requests).toBe(2);
    // A write that may have been applied is not sent again: the caller is told.
    const error = await client.post('/v1/messages', {}).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DaemonConnectionLostError);
    expect(requests).toBe(3);
  } finally {
    await new Promise((resolve) => flaky.close(resolve));
  }
});

it('gives up on a daemon that took the request and never answers, after the time limit', async () => {
  // Reads the request and holds the connection open without an answer (a stopped or stuck daemon).
  const sockets: Socket[] = [];
  const silent = createServer((socket) => {
    sockets.push(socket);
    socket.resume();
  });
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
  const { port } = silent.address() as AddressInfo;
  try {
    const client = new ApiClient(`http://127.0.0.1:${port}`, 't', { timeoutMs: 300 });
    const error = await client.post('/v1/messages', {}).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DaemonTimeoutError);
    expect(error).toMatchObject({ code: 'ANX_DAEMON_TIMEOUT' });
    expect((error as Error).message).toContain('may have been applied');
    expect(exitCodeOf(error as DaemonTimeoutError)).toBe(3);
    // close() still wins over the time limit.
    const patient = new ApiClient(`http://127.0.0.1:${port}`, 't', { timeoutMs: 60_000 });
    const pending = patient.get('/v1/status').catch((e: { code?: string }) => e.code);
    await new Promise((resolve) => setTimeout(resolve, 100));
    patient.close();
    expect(await pending).toBe('ANX_SDK_CLOSED');
  } finally {
    for (const socket of sockets) socket.destroy();
    await new Promise((resolve) => silent.close(resolve));
  }
  expect(() => new ApiClient('http://127.0.0.1:1', 't', { timeoutMs: 0 })).toThrow(/timeoutMs/);
  await expect(
    connect({ dataDir: '/nonexistent-anx', name: 'a', requestTimeoutMs: -5 }),
  ).rejects.toMatchObject({
    code: 'ANX_SDK_ARGUMENT',
  });
  await expect(
    connect({ mode: 'embedded', dataDir: '/nonexistent-anx', name: 'a', requestTimeoutMs: 1000 }),
  ).rejects.toMatchObject({ code: 'ANX_SDK_ARGUMENT' });
});

async function freePort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as AddressInfo;
  await new Promise((resolve) => probe.close(resolve));
  return port;
}
