// Every shipped template runs end to end on a real host with scripted workers, fan-out and vote stages included.
import { afterEach, expect, it } from 'vitest';
import { playbookTemplate, TEMPLATE_NAMES } from '../../machines/playbook/templates.ts';
import { Host } from '../../runtime/host.ts';
import { waitFor } from '../helpers/daemon.ts';
import { cleanupTempDirs, tempDir } from '../helpers/tmp.ts';

let host: Host | undefined;
afterEach(async () => {
  await host?.close();
  host = undefined;
  cleanupTempDirs();
});

for (const name of TEMPLATE_NAMES) {
  it(`runs the ${name} template to a signed manifest`, { timeout: 30_000 }, async () => {
    host = await Host.open({ dataDir: tempDir(), noSync: true });
    const t = host.teamwork;
    const owner = (await host.createIdentity({ name: 'owner' })).did;
    await t.enclaves.create({ owner, id: 'enc' });
    const def = playbookTemplate(name);
    const assignments: Record<string, string[]> = {};
    for (const stage of def.stages) {
      const n = stage.fanout?.count ?? stage.vote?.voters ?? 1;
      const list = assignments[stage.role] ?? [];
      while (list.length < n) {
        const did = (await host.createIdentity({ name: `${stage.role}${list.length}` })).did;
        await t.enclaves.setMember('enc', owner, { did, role: stage.role, permissions: ['read', 'write'] });
        t.worker(did).onStage(stage.role, async (ctx) => {
          const shard = ctx.snapshot.stage.shard;
          await ctx.deliver({
            value: `${ctx.task.stage}${shard ? ` shard ${shard.index + 1}/${shard.count}` : ''} by ${ctx.task.did}`,
            summary: `${ctx.task.stage} done`,
            // Shards of one stage write distinct keys.
            ...(shard ? { key: `${ctx.snapshot.stage.output.key}.${shard.index}` } : {}),
            ...(def.stages.find((s) => s.id === ctx.task.stage)?.vote ? { choice: 'ship it' } : {}),
          });
        });
        list.push(did);
      }
      assignments[stage.role] = list;
    }
    const { run_id } = await t.startRun({
      playbook: name,
      objective: `try ${name}`,
      owner,
      enclave: 'enc',
      assignments,
    });
    await waitFor(() => t.manifests.has(run_id), 20_000, `the ${name} manifest`);
    const status = t.runs.status(run_id);
    expect(status.state).toBe('completed');
    expect(status.stages.every((s) => s.status === 'delivered')).toBe(true);
    const voting = status.stages.find((s) => s.decision !== null);
    if (def.stages.some((s) => s.vote)) expect(voting?.decision).toBe('ship it');
    expect(t.manifests.get(run_id).signed.manifest.final.length).toBeGreaterThan(0);
  });
}
