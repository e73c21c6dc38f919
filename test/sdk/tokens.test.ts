// SDK capability tokens: issue, delegate (only narrower, only by the holder), check, inspect and revoke, in both modes.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AnxClient, connect, SdkArgumentError } from '../../bridge/sdk/index.ts';
import { grantAndNarrow } from '../../bridge/sdk/sdk.examples.ts';
import { Host } from '../../runtime/host.ts';
import { type DaemonProcess, killHard, startDaemonProcess } from '../helpers/daemon.ts';
import { cleanupTempDirs, tempDir } from '../helpers/tmp.ts';

afterAll(() => cleanupTempDirs());

/** The flow every mode must run the same way: owner → dev → helper, a widening refused, a revocation. */
async function tokenFlow(owner: AnxClient, dev: AnxClient, helper: AnxClient): Promise<void> {
  const { token, grant } = await owner.tokens.issue({
    audience: dev.did,
    resource: 'vault/team/src',
    actions: ['vault.read', 'vault.write'],
    ttlMs: 3_600_000,
  });
  expect(grant).toMatchObject({ owner: owner.did, holder: dev.did, resource: 'vault/team/src' });
  const narrowed = await dev.tokens.delegate(token, {
    audience: helper.did,
    resource: 'vault/team/src/ui',
    actions: ['vault.write'],
  });
  expect(narrowed.grant).toMatchObject({
    holder: helper.did,
    actions: ['vault.write'],
    chain: [grant.id, narrowed.grant.id],
  });
  const ok = await helper.tokens.check(narrowed.token, {
    owner: owner.did,
    resource: 'vault/team/src/ui/button.ts',
    action: 'vault.write',
  });
  expect(ok.holder).toBe(helper.did);

  // Outside the narrowed grant, or presented by someone who does not hold it: refused.
  await expect(
    helper.tokens.check(narrowed.token, {
      owner: owner.did,
      resource: 'vault/team/src/ui',
      action: 'vault.read',
    }),
  ).rejects.toMatchObject({ code: expect.stringMatching(/^ANX_TOKEN_/) });
  await expect(
    dev.tokens.check(narrowed.token, {
      owner: owner.did,
      resource: 'vault/team/src/ui',
      action: 'vault.write',
    }),
  ).rejects.toMatchObject({ code: expect.stringMatching(/^ANX_TOKEN_/) });
  // Widening in a delegation is refused before anything is signed.
  await expect(
    dev.tokens.delegate(token, { audience: helper.did, actions: ['vault.write', 'vault.admin'] }),
  ).rejects.toMatchObject({ code: expect.stringMatching(/^ANX_TOKEN_/) });
  // Only the holder narrows a token as itself.
  await expect(helper.tokens.delegate(token, { audience: helper.did })).rejects.toBeInstanceOf(
    SdkArgumentError,
  );

  // Revoking the root stops the whole chain.
  expect((await owner.tokens.inspect(narrowed.token)).valid_now).toBe(true);
  const revoked = await owner.tokens.revoke(token, { reason: 'project closed' });
  expect(revoked).toMatchObject({ id: grant.id, by: owner.did });
  const after = await owner.tokens.inspect(narrowed.token);
  expect(after.valid_now).toBe(false);
  expect(after.revoked).toMatch(/revoked/);
  await expect(
    helper.tokens.check(narrowed.token, {
      owner: owner.did,
      resource: 'vault/team/src/ui',
      action: 'vault.write',
    }),
  ).rejects.toMatchObject({ code: 'ANX_TOKEN_REVOKED' });
}

describe('embedded', () => {
  let host: Host;
  beforeAll(async () => {
    host = await Host.open({ dataDir: tempDir(), noSync: true });
  });
  afterAll(async () => host.close());

  it('issues, narrows, checks and revokes tokens as each identity', async () => {
    const [owner, dev, helper] = await Promise.all(
      ['Owner', 'Dev', 'Helper'].map((name) => connect(name, { mode: 'embedded', host })),
    );
    await tokenFlow(owner as AnxClient, dev as AnxClient, helper as AnxClient);
    for (const c of [owner, dev, helper]) await c?.close();
  });

  it('runs the type-checked example of the SDK', async () => {
    const [owner, dev, helper] = await Promise.all(
      ['Ex Owner', 'Ex Dev', 'Ex Helper'].map((name) => connect(name, { mode: 'embedded', host })),
    );
    expect(await grantAndNarrow(owner as AnxClient, dev as AnxClient, helper as AnxClient)).toBe(false);
    for (const c of [owner, dev, helper]) await c?.close();
  });

  it('refuses bad arguments with the argument named', async () => {
    const c = await connect('Args', { mode: 'embedded', host });
    const cases: Array<[() => Promise<unknown>, RegExp]> = [
      [() => c.tokens.issue({ audience: 'bob', resource: 'r', actions: ['a'] }), /"options.audience"/],
      [() => c.tokens.issue({ audience: c.did, resource: '', actions: ['a'] }), /"options.resource"/],
      [() => c.tokens.issue({ audience: c.did, resource: 'r', actions: [] }), /"options.actions"/],
      [
        () => c.tokens.issue({ audience: c.did, resource: 'r', actions: ['a'], ttlMs: -5 }),
        /"options.ttlMs"/,
      ],
      [() => c.tokens.delegate('', { audience: c.did }), /"token"/],
      [() => c.tokens.revoke('anx1.x', { link: -1 }), /"options.link"/],
      [() => c.tokens.check('anx1.x', { owner: 'nobody', resource: 'r', action: 'a' }), /"request.owner"/],
    ];
    for (const [call, name] of cases) {
      const err = await call().then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(SdkArgumentError);
      expect((err as Error).message).toMatch(name);
    }
    await expect(c.tokens.inspect('anx1.not-a-token')).rejects.toMatchObject({ code: 'ANX_TOKEN_INVALID' });
    await c.close();
  });
});

describe('daemon', () => {
  let daemon: DaemonProcess;
  let dataDir: string;
  beforeAll(async () => {
    dataDir = tempDir();
    daemon = await startDaemonProcess(dataDir);
  }, 120_000);
  afterAll(async () => killHard(daemon));

  it('runs the same token flow through the local API', async () => {
    const [owner, dev, helper] = await Promise.all(
      ['Owner', 'Dev', 'Helper'].map((name) => connect(name, { dataDir })),
    );
    await tokenFlow(owner as AnxClient, dev as AnxClient, helper as AnxClient);
    for (const c of [owner, dev, helper]) await c?.close();
  }, 60_000);
});
