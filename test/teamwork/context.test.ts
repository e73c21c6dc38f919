// The context budget through the runtime: stage 50 of a real run gets a snapshot within budget, whatever came before.
import { afterEach, expect, it } from 'vitest';
import type { ContextSnapshot } from '../../machines/playbook/context.ts';
import { waitFor } from '../helpers/daemon.ts';
import { cleanupTempDirs } from '../helpers/tmp.ts';
import { type TeamHost, teamHost } from './fixtures.ts';
import { runLongPlaybook } from './long-run.ts';

let team: TeamHost | undefined;
afterEach(async () => {
  await team?.host.close();
  team = undefined;
  cleanupTempDirs();
});

it('hands stage 50 a snapshot within budget while the 49 earlier outputs sum to far more', {
  timeout: 60_000,
}, async () => {
  team = await teamHost();
  const r = await runLongPlaybook(team, 50, 20_000, 4096);
  expect(r.contextBytes).toBeLessThanOrEqual(4096);
  expect(r.historyBytes).toBeGreaterThan(49 * 19_000);
  expect(r.historyBytes / r.contextBytes).toBeGreaterThan(200);
  const snap = r.snapshot as ContextSnapshot;
  expect(snap.stage.id).toBe('s50');
  // Refs, not bodies: the two inputs it reads, resolvable in the vault.
  expect(snap.inputs.map((ref) => ref.key)).toEqual(['out/s49.md', 'out/s48.md']);
  expect(snap.truncated).toBe(true);
  expect(snap.earlier[0]?.stage).toBe('s49');
  const t = team.host.teamwork;
  await waitFor(() => t.manifests.has(r.run_id), 10_000, 'the manifest');
  const input = await t.vault.resolve(snap.inputs[0] as NonNullable<(typeof snap.inputs)[0]>, team.owner);
  expect(input.content.length).toBe(20_000);
});
