// Run outcomes as trust evidence: a completed stage credits its worker, a failed one debits it, a timed-out one counts as a timeout.
import { afterEach, describe, expect, it } from 'vitest';
import { stageOutcome } from '../../runtime/authority/run-outcomes.ts';
import { NEUTRAL_TRUST, TRUST_EVENTS_KEY, type TrustStore } from '../../runtime/authority/trust.ts';
import type { EventV1 } from '../../runtime/events/event.ts';
import { Host } from '../../runtime/host.ts';
import { waitFor } from '../helpers/daemon.ts';
import { cleanupTempDirs, tempDir } from '../helpers/tmp.ts';
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

  /** Runs dev-team to its end on `team` and waits for every worker's evidence; returns the counts per worker. */
  async function completedRun(t: TeamHost) {
    scriptedDevTeam(t);
    const { run_id } = await t.host.teamwork.startRun({
      playbook: 'dev-team',
      objective: 'ship the login page',
      owner: t.owner,
      enclave: t.enclave,
      assignments: devTeamAssignments(t),
    });
    await waitFor(
      () => t.host.teamwork.runs.status(run_id).state === 'completed',
      60_000,
      'the run to complete',
    );
    const trust = t.host.authority.trust;
    await waitFor(
      () => Object.values(t.workers).every((did) => trust.score(did).breakdown.events.length > 0),
      20_000,
      'trust evidence for every worker',
    );
    await t.host.system.quiesce();
    return counts(t);
  }

  const counts = (t: TeamHost) =>
    Object.fromEntries(
      Object.values(t.workers).map((did) => [
        did,
        t.host.authority.trust.score(did).breakdown.events.map((e) => [e.kind, e.count]),
      ]),
    );

  /** The trust database as the store has it, with a count of the writes staged into it from now on. */
  function trustDb(t: TeamHost) {
    const db = (
      t.host.authority.trust as unknown as {
        db: { put: (...a: unknown[]) => unknown; get: (k: string) => unknown };
      }
    ).db;
    const writes: string[] = [];
    const put = db.put.bind(db);
    db.put = (key: unknown, ...rest: unknown[]) => {
      writes.push(String(key));
      return put(key, ...rest);
    };
    return { db, writes };
  }

  it('keeps stage outcomes out of the handoff commits and writes them together when the host stops', async () => {
    const dataDir = tempDir();
    team = await teamHost({ dataDir });
    const { db, writes } = trustDb(team);
    const before = completedRun(team);
    const seen = await before;
    // A dev-team run is far fewer than TRUST_WRITE_EVENTS events: nothing written yet, all of it in memory.
    expect(writes.filter((k) => k.startsWith('score/'))).toEqual([]);
    const markAtOpen = db.get(TRUST_EVENTS_KEY) as number;
    const last = team.host.system.events.lastSeq;
    expect(markAtOpen).toBeLessThan(last);
    await team.host.close();
    const host = await Host.open({ dataDir, noSync: true });
    team = { ...team, host };
    expect(counts(team)).toEqual(seen);
    expect(trustDb(team).db.get(TRUST_EVENTS_KEY)).toBeGreaterThanOrEqual(last);
  }, 120_000);

  it('replays the outcomes a crash left unwritten, once, and writes a score noted directly together with them', async () => {
    const dataDir = tempDir();
    team = await teamHost({ dataDir });
    const seen = await completedRun(team);
    const developer = team.workers['developer'] as string;
    // A crash: the scores noted from events never reach the disk.
    const trust: TrustStore = team.host.authority.trust;
    trust.writeEvents = () => {};
    await team.host.close();
    let host = await Host.open({ dataDir, noSync: true });
    team = { ...team, host };
    expect(counts(team)).toEqual(seen);
    expect(team.host.authority.trust.score(developer).breakdown.events).toEqual([
      expect.objectContaining({ kind: 'success', count: 2 }),
    ]);
    // A direct note of a score with replayed evidence writes all of it and the seq it includes: the
    // next start (after another crash) replays nothing twice.
    team.host.authority.trust.record(developer, 'failure');
    await team.host.authority.trust.flush();
    team.host.authority.trust.writeEvents = () => {};
    await team.host.close();
    host = await Host.open({ dataDir, noSync: true });
    team = { ...team, host };
    expect(team.host.authority.trust.score(developer).breakdown.events.map((e) => [e.kind, e.count])).toEqual(
      [
        ['success', 2],
        ['failure', 1],
      ],
    );
    for (const did of Object.values(team.workers).filter((d) => d !== developer))
      expect(counts(team)[did]).toEqual(seen[did]);
  }, 120_000);
});
