// Enclave permissions: who may read and write the vault and change membership; refusals are typed and change nothing.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isAnxError } from '../../runtime/errors.ts';
import type { Host } from '../../runtime/host.ts';
import { cleanupTempDirs } from '../helpers/tmp.ts';
import { teamHost } from './fixtures.ts';

async function refused(p: Promise<unknown> | (() => unknown), code: string): Promise<Error> {
  let caught: unknown;
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (err) {
    caught = err;
  }
  expect(isAnxError(caught, code), `expected ${code}, got ${String(caught)}`).toBe(true);
  return caught as Error;
}

for (const backend of ['lmdb', 'git'] as const) {
  describe(`enclave permissions (${backend} vault)`, () => {
    let host: Host;
    let owner: string;
    let writer: string;
    let reader: string;
    let stranger: string;
    const write = (as: string, author?: string) =>
      host.teamwork.vault.put(
        'enc1',
        'design/spec.md',
        { kind: 'markdown', content: `by ${as}`, summary: 's', ...(author === undefined ? {} : { author }) },
        as,
      );

    beforeEach(async () => {
      const team = await teamHost({ backend });
      host = team.host;
      owner = team.owner;
      writer = team.workers['developer'] as string;
      reader = (await host.createIdentity({ name: 'reader' })).did;
      stranger = (await host.createIdentity({ name: 'stranger' })).did;
      await host.teamwork.enclaves.setMember('enc1', owner, {
        did: reader,
        role: 'observer',
        permissions: ['read'],
      });
      await write(writer);
    });
    afterEach(async () => {
      await host.close();
      cleanupTempDirs();
    });

    it('lets members with write store versions authored by themselves, and members with read read them', async () => {
      const ref = await write(writer);
      expect(ref.version).toBe(2);
      const got = await host.teamwork.vault.get('enc1', 'design/spec.md', reader);
      expect(got.meta.author).toBe(writer);
      expect(new TextDecoder().decode(got.content)).toBe(`by ${writer}`);
      const events = host.trace('enclave/enc1', { kinds: ['artifact'] });
      expect(events.map((e) => (e.payload as { ref: { version: number } }).ref.version)).toEqual([1, 2]);
    });

    it('refuses writes by non-members and read-only members, with nothing stored', async () => {
      const a = await refused(write(stranger), 'ANX_FORBIDDEN_ENCLAVE');
      expect(a.message).toContain('not a member');
      const b = await refused(write(reader), 'ANX_FORBIDDEN_ENCLAVE');
      expect(b.message).toContain('not write');
      const history = await host.teamwork.vault.history('enc1', 'design/spec.md', owner);
      expect(history.map((v) => v.author)).toEqual([writer]);
    });

    it('refuses reads by non-members', async () => {
      await refused(host.teamwork.vault.get('enc1', 'design/spec.md', stranger), 'ANX_FORBIDDEN_ENCLAVE');
      await refused(host.teamwork.vault.history('enc1', 'design/spec.md', stranger), 'ANX_FORBIDDEN_ENCLAVE');
    });

    it('refuses forged author DIDs: another member as author, or a DID this host holds no key for', async () => {
      const forged = await refused(write(writer, owner), 'ANX_FORBIDDEN_AUTHOR');
      expect(forged.message).toContain('"author"');
      await refused(
        write('did:agentnexus:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK'),
        'ANX_FORBIDDEN_AUTHOR',
      );
      expect((await host.teamwork.vault.history('enc1', 'design/spec.md', owner)).length).toBe(1);
    });

    it('lets only the owner or an admin change membership; a refused change changes nothing', async () => {
      await refused(
        host.teamwork.enclaves.setMember('enc1', writer, {
          did: stranger,
          role: 'dev',
          permissions: ['write'],
        }),
        'ANX_FORBIDDEN_ENCLAVE',
      );
      expect(host.teamwork.enclaves.get('enc1').members[stranger]).toBeUndefined();
      await host.teamwork.enclaves.setMember('enc1', owner, {
        did: reader,
        role: 'lead',
        permissions: ['read', 'admin'],
      });
      await host.teamwork.enclaves.setMember('enc1', reader, {
        did: stranger,
        role: 'dev',
        permissions: ['write'],
      });
      await write(stranger);
      await refused(
        () =>
          host.teamwork.enclaves.setMember('enc1', owner, {
            did: 'bob',
            role: 'dev',
            permissions: ['write'],
          }),
        'ANX_TEAMWORK_INVALID',
      );
      await refused(
        () =>
          host.teamwork.enclaves.setMember('enc1', owner, {
            did: stranger,
            role: 'dev',
            permissions: ['root' as never],
          }),
        'ANX_TEAMWORK_INVALID',
      );
      await refused(() => host.teamwork.enclaves.removeMember('enc1', owner, owner), 'ANX_TEAMWORK_INVALID');
    });

    it('takes no writes once archived, and reads still work', async () => {
      await host.teamwork.enclaves.archive('enc1', owner);
      await refused(write(writer), 'ANX_FORBIDDEN_ENCLAVE');
      expect((await host.teamwork.vault.get('enc1', 'design/spec.md', reader)).meta.version).toBe(1);
      await host.teamwork.enclaves.activate('enc1', owner);
      expect((await write(writer)).version).toBe(2);
    });

    it('refuses a stale ref whose hash no longer matches', async () => {
      const ref = await write(writer);
      await refused(
        host.teamwork.vault.resolve({ ...ref, hash: 'a'.repeat(64) }, reader),
        'ANX_VAULT_REF_MISMATCH',
      );
      expect((await host.teamwork.vault.resolve(ref, reader)).meta.version).toBe(2);
    });
  });
}

describe('enclave membership through the actor', () => {
  afterEach(() => cleanupTempDirs());

  it('refuses a membership envelope from a non-admin even when it bypasses the service check', async () => {
    const team = await teamHost();
    const { host } = team;
    const dev = team.workers['developer'] as string;
    const env = host.system.envelope({
      type: 'enclave.member.set',
      from: dev,
      to: 'enclave/enc1',
      body: { did: dev, role: 'boss', permissions: ['admin'] },
    });
    await host.system.accept([env]);
    await host.system.quiesce();
    expect(host.teamwork.enclaves.get('enc1').members[dev]?.permissions).toEqual(['read', 'write']);
    const errors = host.trace('enclave/enc1', { kinds: ['error'] });
    expect((errors.at(-1)?.payload as { code?: string } | undefined)?.code).toBe('ANX_FORBIDDEN_ENCLAVE');
    await host.close();
  });

  it('refuses runs whose workers are not members with write', async () => {
    const team = await teamHost();
    const { host, owner } = team;
    const outsider = (await host.createIdentity({ name: 'outsider' })).did;
    await refused(
      host.teamwork.startRun({
        playbook: 'dev-team',
        objective: 'x',
        owner,
        enclave: 'enc1',
        assignments: { ...Object.fromEntries(Object.entries(team.workers)), developer: outsider },
      }),
      'ANX_FORBIDDEN_ENCLAVE',
    );
    await refused(
      host.teamwork.startRun({
        playbook: 'dev-team',
        objective: 'x',
        owner,
        enclave: 'enc1',
        assignments: { pm: owner },
      }),
      'ANX_TEAMWORK_INVALID',
    );
    expect(host.teamwork.runs.list()).toEqual([]);
    await host.close();
  });
});
