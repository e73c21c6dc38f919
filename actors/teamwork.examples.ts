// Type-checked examples of the teamwork API (compiled by `npm run typecheck`, not run).
import { verifyManifest } from './manifest.ts';
import type { Teamwork } from './teamwork.ts';

/** An Enclave with a developer, a worker for the `developer` role, and a dev-team run. */
export async function example(
  teamwork: Teamwork,
  owner: string,
  developer: string,
  team: Record<string, string>,
) {
  const enclave = await teamwork.enclaves.create({ owner, name: 'login page' });
  await teamwork.enclaves.setMember(enclave.enclave_id, owner, {
    did: developer,
    role: 'developer',
    permissions: ['read', 'write'],
  });
  teamwork.worker(developer).onStage('developer', async (ctx) => {
    // Inputs come as refs; the vault checks that the worker may read them.
    const design = ctx.snapshot.inputs.find((ref) => ref.key === 'design/spec.md');
    const spec = design === undefined ? '' : await ctx.vault.text(design);
    if (spec === '') {
      await ctx.fail('no design to implement');
      return;
    }
    await ctx.deliver({
      value: `diff --git a/login.ts b/login.ts\n+// ${spec.length} bytes of design read\n`,
      summary: 'login form',
    });
  });
  const { run_id } = await teamwork.startRun({
    playbook: 'dev-team',
    objective: 'Ship the login page',
    owner,
    enclave: enclave.enclave_id,
    assignments: { ...team, developer },
  });
  const status = teamwork.runs.status(run_id);
  const whoDoesWhat = status.stages.map((s) => `${s.stage}: ${s.status} by ${s.worker ?? '-'}`);
  // Once completed, the manifest is signed by the coordinator (the owner here) and verifiable by anyone.
  const ok = teamwork.manifests.has(run_id) && verifyManifest(teamwork.manifests.get(run_id).signed);
  return { whoDoesWhat, ok };
}
