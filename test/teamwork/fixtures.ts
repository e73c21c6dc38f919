// Shared set-up of teamwork tests: a host in a temp dir with an owner, an Enclave and one worker DID per dev-team role.
import type { StageHandler } from '../../actors/worker-runtime.ts';
import { Host } from '../../runtime/host.ts';
import { tempDir } from '../helpers/tmp.ts';

export const DEV_TEAM_ROLES = ['pm', 'architect', 'developer', 'tester', 'reviewer'] as const;

export interface TeamHost {
  host: Host;
  owner: string;
  enclave: string;
  workers: Record<string, string>;
}

/** Opens a host with an owner, an Enclave and a member with write for each role. */
export async function teamHost(
  options: { dataDir?: string; backend?: 'lmdb' | 'git'; noSync?: boolean } = {},
): Promise<TeamHost> {
  const host = await Host.open({ dataDir: options.dataDir ?? tempDir(), noSync: options.noSync ?? true });
  const owner = (await host.createIdentity({ name: 'owner' })).did;
  const enclave = (
    await host.teamwork.enclaves.create({ owner, id: 'enc1', backend: options.backend ?? 'lmdb' })
  ).enclave_id;
  const workers: Record<string, string> = {};
  for (const role of DEV_TEAM_ROLES) {
    const did = (await host.createIdentity({ name: role })).did;
    workers[role] = did;
    await host.teamwork.enclaves.setMember(enclave, owner, { did, role, permissions: ['read', 'write'] });
  }
  return { host, owner, enclave, workers };
}

/** Scripted dev-team handlers: each stage writes a short artifact; the reviewer rejects the first implementation. */
export function scriptedDevTeam(team: TeamHost, options: { rejectFirst?: boolean } = {}): void {
  let reviews = 0;
  const simple =
    (label: string): StageHandler =>
    async (ctx) => {
      const inputs = await Promise.all(ctx.snapshot.inputs.map((r) => ctx.vault.text(r)));
      await ctx.deliver({
        value: `# ${label} (attempt ${ctx.task.attempt})\n\nread ${inputs.length} input(s)\n`,
        summary: `${label} done`,
      });
    };
  const t = team.host.teamwork;
  t.worker(team.workers['pm']!).onStage('pm', simple('requirements'));
  t.worker(team.workers['architect']!).onStage('architect', simple('design'));
  t.worker(team.workers['developer']!).onStage('developer', simple('implementation'));
  t.worker(team.workers['tester']!).onStage('tester', simple('test report'));
  t.worker(team.workers['reviewer']!).onStage('reviewer', async (ctx) => {
    reviews++;
    if (options.rejectFirst !== false && reviews === 1) {
      await ctx.reject({ reason: 'the login form lacks rate limiting' });
      return;
    }
    await ctx.deliver({ value: 'approved\n', summary: 'approved' });
  });
}

export function devTeamAssignments(team: TeamHost): Record<string, string> {
  return Object.fromEntries(DEV_TEAM_ROLES.map((r) => [r, team.workers[r]!]));
}
