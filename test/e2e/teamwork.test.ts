// Teamwork through real daemons: a dev-team run of script workers survives a kill -9 in every stage, and stage timeouts keep their deadlines.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { type SignedManifest, verifyManifest } from '../../actors/manifest.ts';
import type { EventV1 } from '../../runtime/events/event.ts';
import { type DaemonProcess, killHard, startDaemonProcess, waitFor } from '../helpers/daemon.ts';
import { cleanupTempDirs, tempDir } from '../helpers/tmp.ts';

const started: DaemonProcess[] = [];
afterAll(async () => {
  for (const d of started) await killHard(d);
  cleanupTempDirs();
});

const ROLES = ['pm', 'architect', 'developer', 'tester', 'reviewer'] as const;
const STAGES = ['requirements', 'design', 'implement', 'test', 'review'] as const;

/** A worker script: reads the snapshot, sleeps, prints its artifact; the reviewer rejects its first review. */
const SCRIPT = `
const sleep = Number(process.argv[2] ?? 0);
let input = '';
process.stdin.on('data', (d) => (input += d));
process.stdin.on('end', () => {
  const snap = JSON.parse(input);
  setTimeout(() => {
    if (process.env.ANX_ROLE === 'reviewer' && process.env.ANX_ATTEMPT === '1') {
      process.stdout.write('missing rate limiting');
      process.exit(10);
    }
    process.stdout.write(snap.stage.id + ' by ' + process.env.ANX_ROLE + ' attempt ' + process.env.ANX_ATTEMPT + '\\n' + 'inputs ' + snap.inputs.length + '\\n');
  }, sleep);
});
`;

interface Status {
  state: string;
  current: string | null;
  stages: Array<{
    stage: string;
    status: string;
    attempt: number;
    retry_count: number;
    task_id: string | null;
  }>;
}

async function setUp(dataDir: string, sleepMs: number) {
  const script = join(dataDir, '..', `worker-${Date.now()}.js`);
  writeFileSync(script, SCRIPT);
  const daemon = await startDaemonProcess(dataDir);
  started.push(daemon);
  const api = daemon.api;
  const owner = (await api.post<{ did: string }>('/v1/identities', { name: 'owner' })).did;
  await api.post('/v1/enclaves', { owner, id: 'team' });
  const workers: Record<string, string> = {};
  for (const role of ROLES) {
    const did = (await api.post<{ did: string }>('/v1/identities', { name: role })).did;
    workers[role] = did;
    await api.post('/v1/enclaves/team/members', { as: owner, did, role, permissions: ['read', 'write'] });
    await api.post('/v1/workers/scripts', { did, role, argv: [process.execPath, script, String(sleepMs)] });
  }
  return { daemon, owner, workers };
}

it('completes a dev-team run of script workers across a kill -9 in every stage, each stage assigned once per attempt', {
  timeout: 240_000,
}, async () => {
  const dataDir = tempDir();
  let { daemon, owner, workers } = await setUp(dataDir, 1500);
  const { run_id } = await daemon.api.post<{ run_id: string }>('/v1/runs', {
    playbook: 'dev-team',
    objective: 'ship the login page',
    owner,
    enclave: 'team',
    assignments: workers,
  });
  // Kill the daemon while each stage's script is at work (and once more in the second implement).
  const kills: Array<[string, number]> = [...STAGES.map((s): [string, number] => [s, 1]), ['implement', 2]];
  for (const [stage, attempt] of kills) {
    await waitFor(
      async () => {
        const s = await daemon.api.get<Status>(`/v1/runs/${run_id}`);
        const rec = s.stages.find((r) => r.stage === stage);
        return s.current === stage && rec?.status === 'running' && rec.attempt === attempt;
      },
      60_000,
      `stage ${stage} attempt ${attempt} to run`,
    );
    await new Promise((r) => setTimeout(r, 300));
    await killHard(daemon);
    daemon = await startDaemonProcess(dataDir);
    started.push(daemon);
  }
  await waitFor(
    async () => {
      try {
        await daemon.api.get(`/v1/runs/${run_id}/manifest`);
        return true;
      } catch {
        return false;
      }
    },
    60_000,
    'the manifest',
  );
  const status = await daemon.api.get<Status>(`/v1/runs/${run_id}`);
  expect(status.state).toBe('completed');
  const attempts = Object.fromEntries(status.stages.map((s) => [s.stage, s.attempt]));
  // Nothing timed out or retried because of the kills: only the review rejection sent implement back.
  expect(attempts).toEqual({ requirements: 1, design: 1, implement: 2, test: 2, review: 2 });

  // Each (stage, attempt) was started once and assigned once, though its handler ran again after a kill.
  const { events } = await daemon.api.get<{ events: EventV1[] }>(`/v1/trace/${run_id}?kind=status`);
  const startedStages = events
    .filter((e) => (e.payload as { state?: string }).state === 'stage.started')
    .map((e) => `${(e.payload as { stage: string }).stage}#${(e.payload as { attempt: number }).attempt}`);
  expect(startedStages.sort()).toEqual(
    [
      'design#1',
      'implement#1',
      'implement#2',
      'requirements#1',
      'review#1',
      'review#2',
      'test#1',
      'test#2',
    ].sort(),
  );
  for (const role of ROLES) {
    const inbox = await daemon.api.get<{ messages: Array<{ type: string; body: { task_id: string } }> }>(
      `/v1/inbox/${encodeURIComponent(workers[role] as string)}`,
    );
    const tasks = inbox.messages.filter((m) => m.type === 'stage.assign').map((m) => m.body.task_id);
    expect(new Set(tasks).size, `${role} got a task twice`).toBe(tasks.length);
  }

  // The manifest is signed by the owner (the coordinator) and names what the vault holds.
  const { signed } = await daemon.api.get<{ signed: SignedManifest }>(`/v1/runs/${run_id}/manifest`);
  expect(signed.signer).toBe(owner);
  expect(verifyManifest(signed)).toBe(true);
  const review = await daemon.api.get<{ meta: { hash: string; version: number; author: string } }>(
    '/v1/vault/team/get?key=review/report.md',
  );
  expect(signed.manifest.final[0]?.hash).toBe(review.meta.hash);
  expect(review.meta.author).toBe(workers['reviewer']);
  const impl = signed.manifest.stages.find((s) => s.stage === 'implement');
  expect(impl?.attempt).toBe(2);
  const implHistory = await daemon.api.get<{ versions: Array<{ hash: string; version: number }> }>(
    '/v1/vault/team/history?key=impl/diff.patch',
  );
  expect(impl?.refs[0]?.hash).toBe(implHistory.versions.at(-1)?.hash);
  await daemon.api.post('/v1/stop');
  await waitFor(() => daemon.child.exitCode !== null, 30_000, 'the daemon to stop');
});

it('keeps a stage timeout at its original deadline across a kill -9', { timeout: 120_000 }, async () => {
  const dataDir = tempDir();
  let { daemon, owner, workers } = await setUp(dataDir, 60_000);
  const playbook = {
    name: 'slow',
    version: '1',
    defaults: { max_retries: 1, backoff: { initial: '1h', max: '1h' } },
    stages: [
      {
        id: 'only',
        role: 'pm',
        brief: 'never answers in time',
        output: { kind: 'md', key: 'only.md' },
        timeout: '4s',
      },
    ],
  };
  const { run_id } = await daemon.api.post<{ run_id: string }>('/v1/runs', {
    playbook,
    objective: 'time out',
    owner,
    enclave: 'team',
    assignments: { pm: workers['pm'] },
  });
  await waitFor(
    async () => (await daemon.api.get<Status>(`/v1/runs/${run_id}`)).state === 'running',
    10_000,
    'running',
  );
  // The status is read from memory: give the commit holding the stage entry (and its deadline) time to land.
  await new Promise((r) => setTimeout(r, 1_000));
  const t0 = Date.now();
  await killHard(daemon);
  // Down for longer than what is left of the timeout: a timer restarted from scratch would fire 4 s after the restart.
  await new Promise((r) => setTimeout(r, 4_000));
  daemon = await startDaemonProcess(dataDir);
  started.push(daemon);
  const restartedAt = Date.now();
  await waitFor(
    async () => (await daemon.api.get<Status>(`/v1/runs/${run_id}`)).state === 'retrying',
    20_000,
    'the timeout',
  );
  const firedAfterRestart = Date.now() - restartedAt;
  expect(firedAfterRestart).toBeLessThan(3_000);
  expect(Date.now() - t0).toBeGreaterThan(3_000);
  const status = await daemon.api.get<Status & { stages: Array<{ last_error?: string }> }>(
    `/v1/runs/${run_id}`,
  );
  expect(status.stages[0]?.retry_count).toBe(1);
  await daemon.api.post(`/v1/runs/${run_id}/control`, { action: 'abort', reason: 'test over' });
  expect((await daemon.api.get<Status>(`/v1/runs/${run_id}`)).state).toBe('aborted');
  await daemon.api.post('/v1/stop');
  await waitFor(() => daemon.child.exitCode !== null, 30_000, 'the daemon to stop');
});
