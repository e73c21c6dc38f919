// Freeze and worker commands: a stage assignment made on a frozen host is held (run paused, nothing sent) and goes out once after thaw, also across a restart; Enclave and script-worker changes are refused while frozen.
import { afterEach, describe, expect, it } from 'vitest';
import { ScriptWorkers } from '../../bridge/workers/script.ts';
import { Host } from '../../runtime/host.ts';
import { waitFor } from '../helpers/daemon.ts';
import { cleanupTempDirs, tempDir } from '../helpers/tmp.ts';
import { type TeamHost, teamHost } from '../teamwork/fixtures.ts';
import { codeOfAsync } from './tokens-fixture.ts';

let team: TeamHost | undefined;

afterEach(async () => {
  await team?.host.close().catch(() => {});
  team = undefined;
  cleanupTempDirs();
});

const refusal = codeOfAsync;

/** One stage, retried once after a backoff long enough to freeze the host in between. */
const playbook = {
  name: 'held',
  version: '1',
  defaults: { max_retries: 2, backoff: { initial: '2s', max: '2s' } },
  stages: [{ id: 'build', role: 'developer', output: { kind: 'text', key: 'build/out.txt' } }],
};

/**
 * Opens a team host, starts the run, lets the first attempt fail, freezes the host while the retry
 * waits, and waits until the retry's assignment is held (the run paused for it).
 */
async function heldRun(options: { dataDir?: string } = {}) {
  team = await teamHost(options);
  const t = team;
  const attempts: number[] = [];
  const developer = t.workers['developer'] as string;
  t.host.teamwork.worker(developer).onStage('developer', async (ctx) => {
    attempts.push(ctx.task.attempt);
    if (ctx.task.attempt === 1) throw new Error('flaky build');
    await ctx.deliver({ value: 'built', summary: 'built' });
  });
  const { run_id } = await t.host.teamwork.startRun({
    playbook,
    objective: 'hold the retry',
    owner: t.owner,
    enclave: t.enclave,
    assignments: { developer },
  });
  const runs = t.host.teamwork.runs;
  await waitFor(() => runs.status(run_id).state === 'retrying', 10_000, 'the retry backoff');
  await t.host.authority.freeze.freeze('operator', 'incident');
  // The retry's backoff ends on the frozen host: the run enters the stage, its assignment is held.
  await waitFor(() => runs.status(run_id).state === 'paused', 20_000, 'the run paused for the hold');
  return { host: t.host, developer, run_id, attempts };
}

const assignsTo = (host: Host, did: string) =>
  host.inbox(did).messages.filter((m) => m.type === 'stage.assign');

describe('freeze holds worker commands', () => {
  it('holds the stage assignment of a run entering a stage while frozen and sends it after thaw', async () => {
    const { host, developer, run_id, attempts } = await heldRun();
    const runs = host.teamwork.runs;
    expect(host.system.heldEnvelopes().map((e) => [e.type, e.to])).toEqual([['stage.assign', developer]]);
    expect(attempts).toEqual([1]);
    expect(assignsTo(host, developer)).toHaveLength(1);
    const build = runs.status(run_id).stages[0];
    expect(build).toMatchObject({ status: 'running', attempt: 2, retry_count: 1 });
    const held = host.authority.audit.list({ action: 'stage.assign' });
    expect(held).toHaveLength(1);
    expect(held[0]).toMatchObject({ decision: 'deny', code: 'ANX_FROZEN', resource: `run:${run_id}` });

    await host.authority.freeze.thaw('operator');
    await waitFor(() => runs.status(run_id).state === 'completed', 20_000, 'the run completed after thaw');
    expect(attempts).toEqual([1, 2]);
    expect(assignsTo(host, developer)).toHaveLength(2);
    expect(runs.status(run_id).stages[0]).toMatchObject({ status: 'delivered', retry_count: 1 });
    expect(host.system.heldEnvelopes()).toEqual([]);
  });

  it('sends an assignment held when the host stopped while frozen exactly once after restart and thaw', async () => {
    const dataDir = tempDir();
    const held = await heldRun({ dataDir });
    const { developer, run_id } = held;
    await held.host.close();

    const host = await Host.open({ dataDir, noSync: true });
    team = { ...(team as TeamHost), host };
    const attempts: number[] = [];
    host.teamwork.worker(developer).onStage('developer', async (ctx) => {
      attempts.push(ctx.task.attempt);
      await ctx.deliver({ value: 'built', summary: 'built' });
    });
    // Restarted while frozen: the replayed assignment is held again, not sent.
    expect(host.authority.freeze.isFrozen).toBe(true);
    expect(host.system.heldEnvelopes().map((e) => e.type)).toEqual(['stage.assign']);
    expect(host.teamwork.runs.status(run_id).state).toBe('paused');
    expect(assignsTo(host, developer)).toHaveLength(1);

    await host.authority.freeze.thaw('operator');
    await waitFor(
      () => host.teamwork.runs.status(run_id).state === 'completed',
      20_000,
      'the run completed after thaw',
    );
    expect(attempts).toEqual([2]);
    expect(assignsTo(host, developer)).toHaveLength(2);
  });

  it('drops a held assignment of a run aborted while frozen', async () => {
    const { host, developer, run_id, attempts } = await heldRun();
    const runs = host.teamwork.runs;
    expect((await runs.control(run_id, 'run.abort', { reason: 'incident' })).state).toBe('aborted');
    await host.authority.freeze.thaw('operator');
    expect(host.system.heldEnvelopes()).toEqual([]);
    expect(assignsTo(host, developer)).toHaveLength(1);
    expect(attempts).toEqual([1]);
  });
});

describe('freeze refuses Enclave and worker changes', () => {
  it('refuses Enclave creation and membership changes with ANX_FROZEN, audited, changing nothing', async () => {
    team = await teamHost();
    const { host, owner, enclave, workers } = team;
    const enclaves = host.teamwork.enclaves;
    const before = enclaves.get(enclave);
    const stranger = (await host.createIdentity({ name: 'stranger' })).did;
    await host.authority.freeze.freeze('operator');

    expect(await refusal(() => enclaves.create({ owner, id: 'enc2' }))).toBe('ANX_FROZEN');
    expect(
      await refusal(() =>
        enclaves.setMember(enclave, owner, { did: stranger, role: 'guest', permissions: ['read'] }),
      ),
    ).toBe('ANX_FROZEN');
    expect(await refusal(() => enclaves.removeMember(enclave, owner, workers['pm'] as string))).toBe(
      'ANX_FROZEN',
    );
    expect(enclaves.list()).toEqual([enclave]);
    expect(enclaves.get(enclave).members).toEqual(before.members);
    const denied = host.authority.audit.list({ decision: 'deny' }).map((e) => [e.action, e.actor, e.code]);
    expect(denied).toEqual([
      ['enclave.create', owner, 'ANX_FROZEN'],
      ['enclave.member.set', owner, 'ANX_FROZEN'],
      ['enclave.member.remove', owner, 'ANX_FROZEN'],
    ]);

    await host.authority.freeze.thaw('operator');
    expect((await enclaves.create({ owner, id: 'enc2' })).enclave_id).toBe('enc2');
  });

  it('refuses registering a script worker with ANX_FROZEN, audited, registering nothing', async () => {
    team = await teamHost();
    const { host, workers } = team;
    const scripts = new ScriptWorkers(host.teamwork);
    const did = workers['tester'] as string;
    await host.authority.freeze.freeze('operator');
    expect(await refusal(() => scripts.add(did, 'tester', { argv: ['true'] }))).toBe('ANX_FROZEN');
    expect(scripts.list()).toEqual([]);
    expect(host.authority.audit.list({ action: 'worker.script.register' })).toMatchObject([
      { decision: 'deny', actor: did, code: 'ANX_FROZEN' },
    ]);
    await host.authority.freeze.thaw('operator');
    expect((await scripts.add(did, 'tester', { argv: ['true'] })).role).toBe('tester');
    expect(scripts.list()).toHaveLength(1);
  });
});
