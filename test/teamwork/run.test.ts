// A dev-team run on one host, in process: assignments, a review rejection rolling back, the signed manifest.
import { afterEach, expect, it } from 'vitest';
import { verifyManifest } from '../../actors/manifest.ts';
import { waitFor } from '../helpers/daemon.ts';
import { cleanupTempDirs } from '../helpers/tmp.ts';
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
