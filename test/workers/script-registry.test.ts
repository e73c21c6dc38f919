// Script worker registrations: listed, removed (its tasks then wait for another worker; a removal is kept
// across restarts), and removing one that is not registered or on a frozen host is refused with a typed error.
import { afterEach, expect, it } from 'vitest';
import { ScriptWorkers } from '../../bridge/workers/script.ts';
import { Host } from '../../runtime/host.ts';
import { codeOfAsync } from '../authority/tokens-fixture.ts';
import { waitFor } from '../helpers/daemon.ts';
import { cleanupTempDirs, tempDir } from '../helpers/tmp.ts';
import { type TeamHost, teamHost } from '../teamwork/fixtures.ts';

let team: TeamHost | undefined;
let reopened: Host | undefined;

afterEach(async () => {
  await reopened?.close().catch(() => {});
  await team?.host.close().catch(() => {});
  team = undefined;
  reopened = undefined;
  cleanupTempDirs();
});

const playbook = {
  name: 'one-test',
  version: '1',
  stages: [{ id: 'test', role: 'tester', output: { kind: 'text', key: 'test/report.txt' } }],
};

/** A script printing `summary` as its artifact (first line: the summary). */
const printing = (summary: string) => ({
  argv: [process.execPath, '-e', `console.log(${JSON.stringify(summary)})`],
});

it('removes a script worker: the next task waits for another worker, and a restart does not bring it back', async () => {
  const dataDir = tempDir();
  team = await teamHost({ dataDir });
  const { host } = team;
  const tester = team.workers['tester'] as string;
  const scripts = new ScriptWorkers(host.teamwork);
  await scripts.add(tester, 'tester', printing('old script'));
  expect(scripts.list()).toMatchObject([{ did: tester, role: 'tester' }]);

  const removed = await scripts.remove(tester, 'tester');
  // Registering and removing are audited: the host runs commands for whoever registered them.
  const audited = (action: string) =>
    host.authority.audit.list({ action }).map((e) => [e.decision, e.actor, e.resource, e.details]);
  expect(audited('worker.script.register')).toEqual([
    ['allow', tester, `worker:${tester}`, { role: 'tester', argv: printing('old script').argv }],
  ]);
  expect(audited('worker.script.remove')).toEqual([
    ['allow', tester, `worker:${tester}`, { role: 'tester', argv: printing('old script').argv }],
  ]);
  expect(removed).toMatchObject({ did: tester, role: 'tester', argv: printing('old script').argv });
  expect(scripts.list()).toEqual([]);

  const { run_id } = await host.teamwork.startRun({
    playbook,
    objective: 'test the build',
    owner: team.owner,
    enclave: team.enclave,
    assignments: { tester },
  });
  await waitFor(() => host.teamwork.workers.pending(tester).length === 1, 10_000, 'the open task');
  // A script registered now takes the waiting task: the removed one never ran it.
  await scripts.add(tester, 'tester', printing('new script'));
  const runs = host.teamwork.runs;
  await waitFor(() => runs.status(run_id).state === 'completed', 20_000, 'the run completed');
  expect(runs.status(run_id).stages[0]).toMatchObject({ status: 'delivered', retry_count: 0 });
  expect(runs.status(run_id).stages[0]?.output_ref?.summary).toBe('new script');

  await scripts.remove(tester, 'tester');
  await host.close();
  team = undefined;
  reopened = await Host.open({ dataDir, noSync: true });
  const again = new ScriptWorkers(reopened.teamwork);
  expect(again.list()).toEqual([]);
  expect(again.restore()).toBe(0);
});

it('refuses removing a script worker that is not registered, or on a frozen host, and keeps it', async () => {
  team = await teamHost();
  const { host } = team;
  const tester = team.workers['tester'] as string;
  const scripts = new ScriptWorkers(host.teamwork);
  expect(await codeOfAsync(() => scripts.remove(tester, 'tester'))).toBe('ANX_SCRIPT_NOT_FOUND');
  await scripts.add(tester, 'tester', printing('kept'));
  expect(await codeOfAsync(() => scripts.remove(tester, 'reviewer'))).toBe('ANX_SCRIPT_NOT_FOUND');

  await host.authority.freeze.freeze('operator');
  expect(await codeOfAsync(() => scripts.remove(tester, 'tester'))).toBe('ANX_FROZEN');
  expect(scripts.list()).toHaveLength(1);
  expect(host.authority.audit.list({ action: 'worker.script.remove' })).toMatchObject([
    { decision: 'deny', actor: tester, code: 'ANX_FROZEN' },
  ]);
  await host.authority.freeze.thaw('operator');
  await scripts.remove(tester, 'tester');
  expect(scripts.list()).toEqual([]);
});
