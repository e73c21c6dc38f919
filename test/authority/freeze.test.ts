// Freeze: a frozen host refuses vault writes, new runs and stage results with ANX_FROZEN (audited), keeps serving reads, and stays frozen across restarts.
import { afterEach, describe, expect, it } from 'vitest';
import { Host } from '../../runtime/host.ts';
import { waitFor } from '../helpers/daemon.ts';
import { cleanupTempDirs, tempDir } from '../helpers/tmp.ts';
import { devTeamAssignments, type TeamHost, teamHost } from '../teamwork/fixtures.ts';
import { codeOfAsync } from './tokens-fixture.ts';

let team: TeamHost | undefined;

afterEach(async () => {
  await team?.host.close().catch(() => {});
  team = undefined;
  cleanupTempDirs();
});

const refusal = codeOfAsync;

const note = (text: string) => ({ kind: 'text', content: text, summary: text });

describe('freeze', () => {
  it('refuses vault writes and new runs while frozen, keeps reads and status, and allows writes after thaw', async () => {
    team = await teamHost();
    const { host, owner, enclave } = team;
    const t = host.teamwork;
    await t.vault.put(enclave, 'notes/a.md', note('before'), owner);
    const state = await host.authority.freeze.freeze('operator', 'incident 42');
    expect(state).toMatchObject({ frozen: true, by: 'operator', reason: 'incident 42' });

    expect(await refusal(() => t.vault.put(enclave, 'notes/a.md', note('during'), owner))).toBe('ANX_FROZEN');
    expect(
      await refusal(() =>
        t.startRun({
          playbook: 'dev-team',
          objective: 'x',
          owner,
          enclave,
          assignments: devTeamAssignments(team as TeamHost),
        }),
      ),
    ).toBe('ANX_FROZEN');
    // Reads keep working, and nothing was written.
    expect((await t.vault.history(enclave, 'notes/a.md', owner)).map((v) => v.version)).toEqual([1]);
    expect(new TextDecoder().decode((await t.vault.get(enclave, 'notes/a.md', owner)).content)).toBe(
      'before',
    );
    expect(t.runs.list()).toEqual([]);
    expect(host.status().identities).toBeGreaterThan(0);

    await host.authority.freeze.thaw('operator');
    expect((await t.vault.put(enclave, 'notes/a.md', note('after'), owner)).version).toBe(2);

    const actions = host.authority.audit.list().map((e) => `${e.action}:${e.decision}`);
    expect(actions).toEqual(['host.freeze:allow', 'vault.put:deny', 'run.start:deny', 'host.thaw:allow']);
    const denied = host.authority.audit.list({ decision: 'deny' })[0];
    expect(denied).toMatchObject({ actor: owner, code: 'ANX_FROZEN' });
  });

  it("refuses a worker's stage result while frozen and leaves the run where it was", async () => {
    team = await teamHost();
    const { host, owner, enclave, workers } = team;
    const t = host.teamwork;
    const { run_id } = await t.startRun({
      playbook: 'dev-team',
      objective: 'ship it',
      owner,
      enclave,
      assignments: devTeamAssignments(team),
    });
    // The assignment went out before the freeze (one made while frozen is held: freeze-hold.test.ts).
    const pm = workers['pm'] as string;
    await waitFor(
      () => host.inbox(pm).messages.some((m) => m.type === 'stage.assign'),
      20_000,
      'the pm assignment',
    );
    await host.authority.freeze.freeze('operator');
    const outcomes: string[] = [];
    t.worker(pm).onStage('pm', async (ctx) => {
      outcomes.push(await refusal(() => ctx.deliver({ value: 'requirements', summary: 'done' })));
    });
    await waitFor(() => outcomes.length > 0, 20_000, 'the pm handler');
    expect(outcomes).toEqual(['ANX_FROZEN']);
    const status = t.runs.status(run_id);
    expect(status.current).toBe('requirements');
    expect(status.stages.find((s) => s.stage === 'requirements')?.output_ref ?? null).toBeNull();
    expect(host.authority.audit.list({ action: 'stage.deliver', decision: 'deny' })).toHaveLength(1);
    // Pausing and aborting stay allowed: they only stop work.
    expect((await t.runs.control(run_id, 'run.abort', { reason: 'frozen for an incident' })).state).toBe(
      'aborted',
    );
  });

  it('stays frozen across a restart until thawed', async () => {
    const dataDir = tempDir();
    team = await teamHost({ dataDir });
    await team.host.authority.freeze.freeze('operator', 'keep it');
    const { owner, enclave } = team;
    await team.host.close();
    const host = await Host.open({ dataDir, noSync: true });
    team = { ...team, host };
    expect(host.authority.freeze.state).toMatchObject({ frozen: true, reason: 'keep it' });
    expect(await refusal(() => host.teamwork.vault.put(enclave, 'k', note('x'), owner))).toBe('ANX_FROZEN');
    await host.authority.freeze.thaw('operator');
    await host.close();
    const again = await Host.open({ dataDir, noSync: true });
    team = { ...team, host: again };
    expect(again.authority.freeze.isFrozen).toBe(false);
    expect((await again.teamwork.vault.put(enclave, 'k', note('x'), owner)).version).toBe(1);
    await again.authority.audit.flush();
    expect(again.authority.audit.verify().ok).toBe(true);
  });

  it('rejects a freeze without a name of who asked', async () => {
    team = await teamHost();
    await expect(team.host.authority.freeze.freeze('')).rejects.toMatchObject({
      code: 'ANX_REQUEST_INVALID',
    });
    expect(team.host.authority.freeze.isFrozen).toBe(false);
  });
});
