// Following long work from the CLI: `run wait` until a run ends, `trace --follow` as events commit, both across a
// kill -9 and restart of the daemon.
import { type ChildProcess, spawn } from 'node:child_process';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { EventV1 } from '../../runtime/events/event.ts';
import { CLI, type DaemonProcess, killHard, runCli, startDaemonProcess, waitFor } from '../helpers/daemon.ts';
import { cleanupTempDirs, tempDir } from '../helpers/tmp.ts';

let daemon: DaemonProcess;
let dataDir: string;
let owner: string;
let worker: string;
const children: ChildProcess[] = [];

/** A CLI process whose output is collected as it comes, and whose exit can be awaited. */
function spawnCli(...args: string[]) {
  const child = spawn(process.execPath, [CLI, '--data-dir', dataDir, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  const out = { stdout: '', stderr: '' };
  child.stdout?.on('data', (d: Buffer) => (out.stdout += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (out.stderr += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, out, exited };
}

const PLAYBOOK = {
  name: 'two-steps',
  version: '1',
  stages: [
    { id: 'draft', role: 'dev', output: { kind: 'md', key: 'draft.md' } },
    { id: 'final', role: 'dev', inputs: ['draft'], output: { kind: 'md', key: 'final.md' } },
  ],
};

async function startRun(objective: string): Promise<string> {
  const { run_id } = await daemon.api.post<{ run_id: string }>('/v1/runs', {
    playbook: PLAYBOOK,
    objective,
    owner,
    enclave: 'follow',
    assignments: { dev: worker },
  });
  return run_id;
}

/** Answers the worker's open task of `runId` in `stage` over the local API (this test is the worker). */
async function deliver(runId: string, stage: string): Promise<void> {
  const w = `/v1/workers/${encodeURIComponent(worker)}`;
  let taskId: string | undefined;
  await waitFor(
    async () => {
      const { tasks } = await daemon.api.get<{
        tasks: Array<{ task_id: string; run_id: string; stage: string }>;
      }>(`${w}/tasks`);
      taskId = tasks.find((t) => t.run_id === runId && t.stage === stage)?.task_id;
      return taskId !== undefined;
    },
    20_000,
    `the ${stage} task`,
  );
  await daemon.api.post(`${w}/deliver`, { task_id: taskId, value: `${stage} done`, summary: stage });
}

beforeAll(async () => {
  dataDir = tempDir();
  daemon = await startDaemonProcess(dataDir);
  owner = (await daemon.api.post<{ did: string }>('/v1/identities', { name: 'owner' })).did;
  worker = (await daemon.api.post<{ did: string }>('/v1/identities', { name: 'worker' })).did;
  await daemon.api.post('/v1/enclaves', { owner, id: 'follow' });
  await daemon.api.post('/v1/enclaves/follow/members', {
    as: owner,
    did: worker,
    role: 'dev',
    permissions: ['read', 'write'],
  });
}, 60_000);

afterAll(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  await killHard(daemon);
  cleanupTempDirs();
});

it('waits for a run and follows its trace across a kill -9 of the daemon, printing each event once', async () => {
  const runId = await startRun('follow me');
  const wait = spawnCli('run', 'wait', runId);
  const follow = spawnCli('--json', 'trace', runId, '--follow');
  const followed = () =>
    follow.out.stdout
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => JSON.parse(l) as EventV1);
  // The run's start is already in the trace; the first delivery comes while both follow.
  await waitFor(() => followed().length > 0, 20_000, 'the trace so far');
  await waitFor(() => wait.out.stderr.includes('"state":"run.started"'), 20_000, 'the wait under way');
  await deliver(runId, 'draft');
  await waitFor(
    () =>
      followed().some(
        (e) => (e.payload as { state?: string }).state === 'stage.started' && e.step === 'final',
      ),
    20_000,
    'the final stage started',
  );

  await killHard(daemon);
  await waitFor(() => follow.out.stderr.includes('waiting for the daemon'), 20_000, 'the follower waits');
  daemon = await startDaemonProcess(dataDir);
  await deliver(runId, 'final');

  expect(await wait.exited, wait.out.stderr).toBe(0);
  expect(wait.out.stdout).toContain(`run ${runId} (two-steps@1): completed`);
  expect(wait.out.stdout).toContain('final.md@1');
  // Progress went to stderr as it came: the stages starting and the run's end.
  expect(wait.out.stderr).toMatch(/stage\.started/);
  expect(wait.out.stderr).toContain('"state":"run.completed"');

  await waitFor(
    () =>
      followed().some(
        (e) => e.kind === 'status' && (e.payload as { state?: string }).state === 'run.completed',
      ),
    20_000,
    'the run completed in the trace',
  );
  follow.child.kill('SIGINT');
  expect(await follow.exited).toBe(0);
  const seqs = followed().map((e) => e.seq);
  // Every event once and in order, the ones committed while the daemon was down included.
  expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
  expect(new Set(seqs).size).toBe(seqs.length);
  const all = await daemon.api.get<{ events: EventV1[] }>(`/v1/trace/${encodeURIComponent(runId)}`);
  expect(seqs).toEqual(all.events.map((e) => e.seq));
}, 120_000);

it('ends `run wait` with exit 8 when --timeout runs out and 7 when the run is aborted', async () => {
  const runId = await startRun('nobody answers');
  const timedOut = await runCli(dataDir, 'run', 'wait', runId, '--timeout', '1s');
  expect(timedOut.code).toBe(8);
  expect(timedOut.stderr).toContain(`error: run ${runId} is still running at draft after 1s`);
  expect(timedOut.stderr).toContain(
    `hint: wait again, or see where it stands with \`anx-runtime run status ${runId}\``,
  );

  const wait = spawnCli('run', 'wait', runId);
  await waitFor(() => wait.out.stderr.includes('"state":"run.started"'), 20_000, 'the wait under way');
  expect((await runCli(dataDir, 'run', 'abort', runId, '--reason', 'not needed')).code).toBe(0);
  expect(await wait.exited, wait.out.stderr).toBe(7);
  expect(wait.out.stdout).toContain(`run ${runId} (two-steps@1): aborted`);
  expect(wait.out.stderr).toContain('"state":"run.aborted"');
  // A run that has ended already: the answer comes at once.
  const again = await runCli(dataDir, '--json', 'run', 'wait', runId);
  expect(again.code).toBe(7);
  expect(JSON.parse(again.stdout)).toMatchObject({ run_id: runId, state: 'aborted' });
  // With --json the progress on stderr is one status event per line, as JSON.
  const progress = again.stderr
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as { kind: string; run_id: string; payload: { state: string } });
  expect(progress.every((e) => e.kind === 'status' && e.run_id === runId)).toBe(true);
  expect(progress.map((e) => e.payload.state)).toEqual(
    expect.arrayContaining(['run.started', 'run.aborted']),
  );
  expect((await runCli(dataDir, 'run', 'wait', 'no-such-run')).code).toBe(4);
  expect((await runCli(dataDir, 'run', 'wait', runId, '--timeout', 'soon')).code).toBe(2);
  const both = await runCli(dataDir, 'trace', runId, '--follow', '--limit', '5');
  expect(both.code).toBe(2);
  expect(both.stderr).toContain('--follow prints events as they come: it takes no --until or --limit');
}, 60_000);
