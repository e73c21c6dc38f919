// Owners and bindings: signed by the Owner, countersigned by the agent, verified on import, withdrawn by signed unbindings, persisted.
import { afterEach, expect, it } from 'vitest';
import {
  bindingId,
  type SignedBinding,
  type SignedUnbinding,
  signingInput,
  verifyBinding,
} from '../../runtime/authority/binding.ts';
import { ManualClock } from '../../runtime/clock.ts';
import { isAnxError } from '../../runtime/errors.ts';
import { Host } from '../../runtime/host.ts';
import { cleanupTempDirs, tempDir } from '../helpers/tmp.ts';

const DAY = 86_400_000;
const hosts: Host[] = [];
afterEach(async () => {
  for (const h of hosts.splice(0)) await h.close().catch(() => {});
  cleanupTempDirs();
});

async function open(dataDir = tempDir(), clock?: ManualClock): Promise<Host> {
  const host = await Host.open({ dataDir, noSync: true, ...(clock ? { clock } : {}) });
  hosts.push(host);
  return host;
}

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    if (isAnxError(err)) return err.code;
    throw err;
  }
  return 'ACCEPTED';
}

it('binds with two signatures that verify, and any edit of the statement breaks them', async () => {
  const host = await open();
  const s = host.teamwork.secretaries;
  const owner = await s.registerOwner({ name: 'Kevin' });
  const agent = (await host.createIdentity({ name: 'dev' })).did;
  const view = await s.bind({
    owner: owner.did,
    agent,
    role: 'developer',
    expiresAt: host.clock.now() + DAY,
  });
  expect(view).toMatchObject({ state: 'active', statement: { owner: owner.did, agent, role: 'developer' } });
  const signed: SignedBinding = {
    id: view.id,
    statement: view.statement,
    owner_sig: view.owner_sig,
    agent_sig: view.agent_sig,
  };
  expect(codeOf(() => verifyBinding(host.suite, signed))).toBe('ACCEPTED');
  const edits: Array<Partial<SignedBinding['statement']>> = [
    { role: 'secretary' },
    { expires_at: view.statement.expires_at + DAY },
    { agent: owner.did },
  ];
  for (const edit of edits) {
    const statement = { ...signed.statement, ...edit };
    expect(codeOf(() => verifyBinding(host.suite, { ...signed, statement }))).toBe('ANX_BINDING_INVALID');
    // Even with the id recomputed, the owner's signature no longer matches.
    const id = bindingId(host.suite, statement);
    expect(codeOf(() => verifyBinding(host.suite, { ...signed, id, statement }))).toBe('ANX_BINDING_INVALID');
  }
  // The agent's countersignature covers the owner's signature too.
  const other = await s.bind({
    owner: owner.did,
    agent,
    role: 'developer',
    expiresAt: host.clock.now() + DAY,
  });
  expect(codeOf(() => verifyBinding(host.suite, { ...signed, agent_sig: other.agent_sig }))).toBe(
    'ANX_BINDING_INVALID',
  );
});

it('imports a binding signed on another host, and its unbinding only when the owner signed it', async () => {
  const a = await open();
  const b = await open();
  const owner = await a.teamwork.secretaries.registerOwner({ name: 'Kevin' });
  const agent = (await a.createIdentity({ name: 'dev' })).did;
  const view = await a.teamwork.secretaries.bind({ owner: owner.did, agent, role: 'secretary' });
  const imported = await b.teamwork.secretaries.bindings.import(view);
  expect(imported.state).toBe('active');
  expect(b.teamwork.secretaries.bindings.active(owner.did, agent, 'secretary')?.id).toBe(view.id);
  // An unbinding signed by the agent (not the owner) is refused.
  const statement = { v: 1 as const, binding_id: view.id, owner: owner.did, agent, ts: a.clock.now() };
  const forged: SignedUnbinding = {
    statement,
    sig: Buffer.from(a.keystore.sign(agent, signingInput('anx-unbinding', statement))).toString('base64url'),
  };
  await expect(b.teamwork.secretaries.bindings.importUnbinding(forged)).rejects.toMatchObject({
    code: 'ANX_BINDING_INVALID',
  });
  expect(b.teamwork.secretaries.bindings.view(view.id).state).toBe('active');
  const [unbound] = await a.teamwork.secretaries.unbind({ owner: owner.did, agent });
  expect(unbound?.state).toBe('unbound');
  const stored = a.teamwork.secretaries.bindings.list({ agent })[0];
  expect(stored?.state).toBe('unbound');
  const genuine: SignedUnbinding = {
    statement: { ...statement, ts: unbound?.unbound_at as number },
    sig: Buffer.from(
      a.keystore.sign(owner.did, signingInput('anx-unbinding', { ...statement, ts: unbound?.unbound_at })),
    ).toString('base64url'),
  };
  await b.teamwork.secretaries.bindings.importUnbinding(genuine);
  expect(b.teamwork.secretaries.bindings.view(view.id).state).toBe('unbound');
});

it('keeps owners and bindings across a restart, and expires bindings by the clock', async () => {
  const dir = tempDir();
  const clock = new ManualClock(Date.now());
  const first = await open(dir, clock);
  const owner = await first.teamwork.secretaries.registerOwner({ name: 'Kevin' });
  const sec = await first.teamwork.secretaries.register({ owner: owner.did, expiresAt: clock.now() + DAY });
  await first.close();
  hosts.splice(hosts.indexOf(first), 1);
  const again = await open(dir, clock);
  const s = again.teamwork.secretaries;
  expect(s.owners.list().map((o) => o.did)).toEqual([owner.did]);
  expect(s.list(owner.did).map((x) => x.did)).toEqual([sec.did]);
  expect(s.bindings.active(owner.did, sec.did, 'secretary')).toBeDefined();
  clock.advance(DAY + 1);
  expect(s.bindings.active(owner.did, sec.did, 'secretary')).toBeUndefined();
  expect(s.bindings.list({ agent: sec.did })[0]?.state).toBe('expired');
});

it('refuses bad owner and binding requests with typed errors', async () => {
  const host = await open();
  const s = host.teamwork.secretaries;
  await expect(s.registerOwner({ name: '' })).rejects.toMatchObject({ code: 'ANX_AUTHORITY_INVALID' });
  const owner = await s.registerOwner({ name: 'Kevin' });
  // The same DID again: the same record under its name, a conflict under another one.
  expect(await s.registerOwner({ name: 'Kevin', did: owner.did })).toEqual(owner);
  await expect(s.registerOwner({ name: 'Kev', did: owner.did })).rejects.toMatchObject({
    code: 'ANX_ID_CONFLICT',
    message: expect.stringContaining('already an Owner named "Kevin"'),
  });
  expect(s.owners.get(owner.did)?.name).toBe('Kevin');
  const agent = (await host.createIdentity({ name: 'dev' })).did;
  await expect(s.bind({ owner: agent, agent: owner.did, role: 'developer' })).rejects.toMatchObject({
    code: 'ANX_OWNER_NOT_FOUND',
  });
  await expect(s.bind({ owner: owner.did, agent, role: 'Not A Role' })).rejects.toMatchObject({
    code: 'ANX_AUTHORITY_INVALID',
  });
  await expect(
    s.bind({ owner: owner.did, agent, role: 'developer', expiresAt: host.clock.now() - 1 }),
  ).rejects.toMatchObject({ code: 'ANX_AUTHORITY_INVALID' });
  await expect(s.bind({ owner: owner.did, agent: owner.did, role: 'developer' })).rejects.toMatchObject({
    code: 'ANX_AUTHORITY_INVALID',
  });
  expect(s.bindings.list()).toEqual([]);
});
