// The Secretary in one process: dispatch picks bound workers, creates the Enclave, starts the run, reports the signed result.
import { afterEach, expect, it } from 'vitest';
import type { Host } from '../../runtime/host.ts';
import { Host as HostClass } from '../../runtime/host.ts';
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
  const mail = host.inbox(owner).messages.filter((m) => m.type === 'secretary.result');
  expect(mail).toHaveLength(1);
  expect(mail[0]?.body).toMatchObject({
    session_id: 'sess_login_001',
    run_id: started.run_id,
    signer: secretary,
  });
});
