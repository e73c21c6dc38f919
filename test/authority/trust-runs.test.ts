// Run outcomes as trust evidence: a completed stage credits its worker, a failed one debits it, a timed-out one counts as a timeout.
import { afterEach, describe, expect, it } from 'vitest';
import { stageOutcome } from '../../runtime/authority/run-outcomes.ts';
import { NEUTRAL_TRUST } from '../../runtime/authority/trust.ts';
import type { EventV1 } from '../../runtime/events/event.ts';
import { waitFor } from '../helpers/daemon.ts';
import { cleanupTempDirs } from '../helpers/tmp.ts';
import { devTeamAssignments, scriptedDevTeam, type TeamHost, teamHost } from '../teamwork/fixtures.ts';

let team: TeamHost | undefined;

afterEach(async () => {
  await team?.host.close().catch(() => {});
  team = undefined;
  cleanupTempDirs();
});

const status = (payload: Record<string, unknown>): EventV1 =>
  ({ schema_version: '1', ts: 0, kind: 'status', run_id: 'r1', payload, metadata: {} }) as unknown as EventV1;

describe('trust from run outcomes', () => {
  it('reads success, failure and timeout from stage status events, and nothing from others', () => {
    expect(stageOutcome(status({ state: 'stage.completed', stage: 'design', by: 'worker' }))).toEqual({
      stage: 'design',
      kind: 'success',
    });
    expect(stageOutcome(status({ state: 'stage.completed', stage: 'design', by: 'owner' }))).toBeUndefined();
    expect(
      stageOutcome(status({ state: 'stage.retrying', stage: 'impl', reason: 'timed out after 100 ms' })),
    ).toEqual({ stage: 'impl', kind: 'timeout' });
    expect(
      stageOutcome(status({ state: 'stage.failed', stage: 'impl', reason: 'compiler crashed' })),
    ).toEqual({ stage: 'impl', kind: 'failure' });
    expect(
      stageOutcome(
        status({ state: 'stage.failed', stage: 'vote', reason: 'no quorum: every voter answered' }),
      ),
    ).toBeUndefined();
    expect(stageOutcome(status({ state: 'run.started' }))).toBeUndefined();
    expect(
      stageOutcome({
        ...status({ state: 'stage.completed', stage: 'x', by: 'worker' }),
        kind: 'message',
      } as EventV1),
    ).toBeUndefined();
  });

  it('credits every worker of a completed run, once per delivery', async () => {
    team = await teamHost();
    scriptedDevTeam(team);
    const t = team.host.teamwork;
    const { run_id } = await t.startRun({
      playbook: 'dev-team',
      objective: 'ship the login page',
      owner: team.owner,
      enclave: team.enclave,
      assignments: devTeamAssignments(team),
    });
    await waitFor(() => t.runs.status(run_id).state === 'completed', 60_000, 'the run to complete');
    const trust = team.host.authority.trust;
    await waitFor(
      () => Object.values(team?.workers ?? {}).every((did) => trust.score(did).breakdown.events.length > 0),
      20_000,
      'trust evidence for every worker',
    );
    for (const did of Object.values(team.workers)) {
      const s = trust.score(did);
      expect(s.score).toBeGreaterThan(NEUTRAL_TRUST);
      expect(s.breakdown.events.find((e) => e.kind === 'success')?.count).toBeGreaterThanOrEqual(1);
    }
    // The developer delivered twice (the first implementation was rejected in review).
    const dev = trust.score(team.workers['developer'] as string);
    expect(dev.breakdown.events.find((e) => e.kind === 'success')?.count).toBe(2);
  }, 120_000);
});
