// The Secretary in one process: dispatch picks bound workers, creates the Enclave, starts the run, reports the signed result.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, expect, it } from 'vitest';
import { signingInput } from '../../runtime/authority/binding.ts';
import type { Host } from '../../runtime/host.ts';
import { Host as HostClass } from '../../runtime/host.ts';
import { publicKeyOfDid } from '../../runtime/identity/did.ts';
import { cleanupTempDirs, tempDir } from '../helpers/tmp.ts';

const hosts: Host[] = [];
afterEach(async () => {
  for (const h of hosts.splice(0)) await h.close().catch(() => {});
  cleanupTempDirs();
});

async function openHost(dataDir = tempDir()): Promise<Host> {
  const host = await HostClass.open({ dataDir, noSync: true });
  hosts.push(host);
  return host;
}

/** An Owner with a Secretary and a developer bound to it. */
async function team(host: Host) {
  const s = host.teamwork.secretaries;
  const owner = await s.registerOwner({ name: 'Kevin' });
  const secretary = await s.register({ owner: owner.did, name: 'Team Secretary' });
  const dev = await host.createIdentity({ name: 'Developer' });
  await s.bind({ owner: owner.did, agent: dev.did, role: 'developer' });
  return { owner: owner.did, secretary: secretary.did, dev: dev.did };
}

async function until<T>(probe: () => T | undefined, what: string, ms = 30_000): Promise<T> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    const v = probe();
    if (v !== undefined) return v;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`timed out waiting for ${what}`);
}

it('dispatches to the bound developer, runs, and reports the signed manifest to the owner', async () => {
  const host = await openHost();
  const { owner, secretary, dev } = await team(host);
  host.teamwork.worker(dev).onStage('developer', async (ctx) => {
    await ctx.deliver({ value: 'diff --git a/login.ts b/login.ts\n', summary: 'login module' });
  });
  const s = host.teamwork.secretaries;
  const started = await s.dispatch({
    session_id: 'sess_login_001',
    owner_did: owner,
    actor_did: secretary,
    objective: 'Implement the login module',
    required_roles: ['developer'],
    source: { channel: 'sdk', message_ref: 'msg_001' },
  });
  expect(started.workers).toEqual([expect.objectContaining({ role: 'developer', did: dev })]);
  expect(started.enclave_id).toMatch(/^enc-/);
  const done = await until(() => {
    const st = s.status('sess_login_001');
    return st.state === 'done' ? st : undefined;
  }, 'the dispatch to finish');
  expect(done.run?.state).toBe('completed');
  expect(done.result?.signer).toBe(secretary);
  const again = await s.dispatch({
    session_id: 'sess_login_001',
    owner_did: owner,
    actor_did: secretary,
    objective: 'Implement the login module',
    required_roles: ['developer'],
    source: { channel: 'sdk', message_ref: 'msg_001' },
  });
  expect(again.run_id).toBe(started.run_id);
  await until(
    () => host.inbox(owner).messages.find((m) => m.type === 'secretary.result'),
    'the result message',
  );
  await host.system.quiesce();
  const mail = host.inbox(owner).messages.filter((m) => m.type === 'secretary.result');
  expect(mail).toHaveLength(1);
  expect(mail[0]?.body).toMatchObject({
    session_id: 'sess_login_001',
    run_id: started.run_id,
    signer: secretary,
  });
});

it('reports a takeover to the owner, who settles it; the result goes to the owner and the signed webhook', async () => {
  const host = await openHost();
  const { owner, secretary, dev } = await team(host);
  host.teamwork.worker(dev).onStage('developer', async (ctx) => {
    await ctx.fail(new Error('the build server is down'), { fatal: true });
  });
  const posts: Array<{ headers: Record<string, string | string[] | undefined>; body: string }> = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString()));
    req.on('end', () => {
      posts.push({ headers: req.headers, body });
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  try {
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
    const s = host.teamwork.secretaries;
    const started = await s.dispatch({
      session_id: 'sess_takeover',
      owner_did: owner,
      actor_did: owner,
      objective: 'Ship the login module',
      required_roles: ['developer'],
      callback_url: url,
    });
    expect(started.authorization.basis).toBe('principal');
    const report = await until(
      () => host.inbox(owner).messages.find((m) => m.type === 'secretary.takeover'),
      'the takeover report',
    );
    expect(s.status('sess_takeover').takeovers).toBe(1);
    expect(report?.body).toMatchObject({
      session_id: 'sess_takeover',
      run_id: started.run_id,
      secretary,
      stage: 'developer',
      actions: expect.arrayContaining(['takeover.deliver', 'run.abort']),
    });
    await host.teamwork.takeoverDeliver(started.run_id, {
      content: 'patch by the owner',
      summary: 'owner fix',
    });
    const done = await until(() => {
      const st = s.status('sess_takeover');
      return st.state === 'done' ? st : undefined;
    }, 'the dispatch to finish');
    expect(done.webhook).toMatchObject({ url, status: 204, error: null });
    expect(posts).toHaveLength(1);
    const post = posts[0] as (typeof posts)[number];
    expect(post.headers['x-anx-signer']).toBe(secretary);
    const ts = Number(post.headers['x-anx-timestamp']);
    const signature = new Uint8Array(Buffer.from(String(post.headers['x-anx-signature']), 'base64url'));
    expect(
      host.suite.verify(
        publicKeyOfDid(secretary),
        signingInput('anx-callback', { ts, body: post.body }),
        signature,
      ),
    ).toBe(true);
    expect(JSON.parse(post.body)).toMatchObject({
      type: 'secretary.result',
      session_id: 'sess_takeover',
      manifest: { signer: secretary },
    });
  } finally {
    server.close();
  }
});

it('fails with a typed error naming the missing role, and creates nothing', async () => {
  const host = await openHost();
  const { owner, secretary } = await team(host);
  const s = host.teamwork.secretaries;
  await expect(
    s.dispatch({
      session_id: 'sess_no_tester',
      owner_did: owner,
      actor_did: secretary,
      objective: 'Test it',
      required_roles: ['developer', 'tester'],
    }),
  ).rejects.toMatchObject({
    code: 'ANX_DISPATCH_NO_CANDIDATE',
    message: expect.stringContaining('"tester"'),
  });
  expect(s.listDispatches()).toEqual([]);
  expect(host.teamwork.enclaves.list()).toEqual([]);
});

it('picks, among bound workers, the online one first, then the most trusted, then the least loaded', async () => {
  const host = await openHost();
  const { owner, secretary, dev } = await team(host);
  const s = host.teamwork.secretaries;
  s.attach({ authority: host.authority });
  const other = (await host.createIdentity({ name: 'Developer 2' })).did;
  const third = (await host.createIdentity({ name: 'Developer 3' })).did;
  for (const did of [other, third]) await s.bind({ owner, agent: did, role: 'developer' });
  for (let i = 0; i < 5; i++) host.authority.trust.record(other, 'success');
  const first = await s.dispatch({
    session_id: 'sess_pick_1',
    owner_did: owner,
    actor_did: secretary,
    objective: 'A',
    required_roles: ['developer'],
  });
  expect(first.workers[0]).toMatchObject({ did: other, candidates: 3 });
  expect(first.workers[0]?.reason).toMatch(/trust 0\.\d\d/);
  // Presence outranks trust.
  await host.send([{ from: third, to: third, type: 'presence.online' }]);
  await host.system.quiesce();
  const second = await s.dispatch({
    session_id: 'sess_pick_2',
    owner_did: owner,
    actor_did: secretary,
    objective: 'B',
    required_roles: ['developer'],
  });
  expect(second.workers[0]).toMatchObject({ did: third, presence: 'online' });
  expect(dev).not.toBe(third);
  const selected = host
    .trace(second.run_id)
    .find((e) => (e.payload as { status?: string }).status === 'secretary.workers.selected');
  expect(selected?.payload).toMatchObject({
    workers: [expect.objectContaining({ did: third, reason: expect.stringContaining('online') })],
  });
});
