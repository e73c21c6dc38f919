// A dev-team run on one host, in process: assignments, a review rejection rolling back, the signed manifest.
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { verifyManifest } from '../../actors/manifest.ts';
import { Host } from '../../runtime/host.ts';
import { waitFor } from '../helpers/daemon.ts';
import { cleanupTempDirs, tempDir } from '../helpers/tmp.ts';
import { devTeamAssignments, scriptedDevTeam, type TeamHost, teamHost } from './fixtures.ts';

let team: TeamHost | undefined;
afterEach(async () => {
  await team?.host.close();
  team = undefined;
  cleanupTempDirs();
});

it('runs dev-team to completion, rolls back to implement when review rejects, and signs the manifest', async () => {
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
  await waitFor(() => t.manifests.has(run_id), 20_000, 'the manifest');
  const status = t.runs.status(run_id);
  expect(status.state).toBe('completed');
  const byStage = Object.fromEntries(status.stages.map((s) => [s.stage, s]));
  expect(byStage['implement']?.attempt).toBe(2);
  expect(byStage['implement']?.retry_count).toBe(1);
  expect(byStage['test']?.attempt).toBe(2);
  expect(byStage['review']?.attempt).toBe(2);
  expect(byStage['requirements']?.attempt).toBe(1);
  const { signed, ref } = t.manifests.get(run_id);
  expect(verifyManifest(signed)).toBe(true);
  expect(signed.signer).toBe(team.owner);
  expect(signed.manifest.final[0]?.key).toBe('review/report.md');
  expect(ref.key).toBe(`manifest/${run_id}.json`);
  // Tampering with the manifest breaks the signature.
  const forged = structuredClone(signed);
  forged.manifest.objective = 'something else';
  expect(verifyManifest(forged)).toBe(false);
  // Every stage's artifact is in the vault, authored by its worker.
  const impl = await t.vault.history(team.enclave, 'impl/diff.patch', team.owner);
  expect(impl.map((v) => v.author)).toEqual([team.workers['developer'], team.workers['developer']]);
});

it('starts a run whose run.start was lost in a crash when the host opens again, and only once', async () => {
  const dataDir = tempDir();
  team = await teamHost({ dataDir });
  const t = team.host.teamwork;
  // A crash right after the run actor's commit: run.start never gets accepted.
  const accept = team.host.system.accept.bind(team.host.system);
  team.host.system.accept = async () => {
    throw new Error('crash');
  };
  await expect(
    t.startRun({
      playbook: 'dev-team',
      objective: 'x',
      owner: team.owner,
      enclave: team.enclave,
      assignments: devTeamAssignments(team),
      run_id: 'lost-start',
    }),
  ).rejects.toThrow('crash');
  team.host.system.accept = accept;
  expect(t.runs.status('lost-start').state).toBe('pending');
  await team.host.close();
  const host = await Host.open({ dataDir, noSync: true });
  team = { ...team, host };
  await waitFor(() => host.teamwork.runs.status('lost-start').state === 'running', 5_000, 'the run to start');
  expect(await host.teamwork.runs.startPending()).toBe(0);
  await host.system.quiesce();
  const started = host
    .trace('lost-start', { kinds: ['status'] })
    .filter((e) => (e.payload as { state?: string }).state === 'run.started');
  expect(started).toHaveLength(1);
});

it('runs dev-team on an Enclave whose vault is a git repository, one commit per artifact version', {
  timeout: 60_000,
}, async () => {
  team = await teamHost({ backend: 'git' });
  scriptedDevTeam(team);
  const t = team.host.teamwork;
  const { run_id } = await t.startRun({
    playbook: 'dev-team',
    objective: 'ship it from git',
    owner: team.owner,
    enclave: team.enclave,
    assignments: devTeamAssignments(team),
  });
  await waitFor(() => t.manifests.has(run_id), 30_000, 'the manifest');
  const { signed } = t.manifests.get(run_id);
  expect(verifyManifest(signed)).toBe(true);
  const impl = await t.vault.history(team.enclave, 'impl/diff.patch', team.owner);
  expect(impl).toHaveLength(2);
  const git = execFileSync(
    'git',
    ['--git-dir', join(team.host.dataDir, 'vault-git', `${team.enclave}.git`), 'log', '--format=%an %s'],
    { encoding: 'utf8', env: { ...process.env, GIT_CONFIG_NOSYSTEM: '1' } },
  );
  expect(git).toContain(`${team.workers['developer']} vault: impl/diff.patch v2`);
  expect(git).toContain(`${team.owner} vault: manifest/${run_id}.json v1`);
});
