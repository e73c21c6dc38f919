// Several worker processes serving one DID and role: each task is claimed by one of them and worked once;
// a claim whose holder stops renewing lapses to the next worker; one released on stop goes on at once.
import { afterEach, expect, it } from 'vitest';
import { ApiClient } from '../../bridge/api/client.ts';
import { type ApiServer, startApiServer } from '../../bridge/api/server.ts';
import { type RemoteStageHandler, RemoteWorker } from '../../bridge/api/worker-client.ts';
import { isAnxError } from '../../runtime/errors.ts';
import { waitFor } from '../helpers/daemon.ts';
import { cleanupTempDirs } from '../helpers/tmp.ts';
import { type TeamHost, teamHost } from '../teamwork/fixtures.ts';

const TOKEN = 'claims-test-token-0123456789';

let team: TeamHost | undefined;
let server: ApiServer | undefined;
const workers: RemoteWorker[] = [];

afterEach(async () => {
  for (const w of workers.splice(0)) w.stop();
  await server?.close();
  await team?.host.teamwork.workers.idle();
  await team?.host.close();
  team = undefined;
  server = undefined;
  cleanupTempDirs();
});

const playbook = {
  name: 'claims',
  version: '1.0.0',
  objective: '{{objective}}',
  stages: [{ id: 'write', role: 'writer', brief: 'Write.', output: { kind: 'text', key: 'notes.md' } }],
};

async function setUp(): Promise<{ team: TeamHost; api: ApiClient; writer: string }> {
  team = await teamHost();
  server = await startApiServer(team.host, { port: 0, token: TOKEN });
  const api = new ApiClient(server.url, TOKEN);
  const writer = team.workers['developer'] as string;
  return { team, api, writer };
}

function startRun(t: TeamHost, writer: string, objective: string) {
  return t.host.teamwork.startRun({
    playbook,
    objective,
    owner: t.owner,
    enclave: t.enclave,
    assignments: { writer },
  });
}

function worker(api: ApiClient, did: string, holder: string, handler: RemoteStageHandler, leaseMs?: number) {
  const w = new RemoteWorker(api, did, 20, { holder, ...(leaseMs === undefined ? {} : { leaseMs }) });
  w.onStage('writer', handler);
  workers.push(w);
  w.start();
  return w;
}

it('works each task once when two worker processes serve the same DID and role', async () => {
  const { team: t, api, writer } = await setUp();
  const worked: Array<{ holder: string; task: string }> = [];
  const handler =
    (holder: string): RemoteStageHandler =>
    async (ctx) => {
      worked.push({ holder, task: ctx.task.task_id });
      // Long enough for the other worker to poll the task several times while it is at work.
      await new Promise((resolve) => setTimeout(resolve, 150));
      await ctx.deliver({ value: `by ${holder}`, summary: holder });
    };
  worker(api, writer, 'worker A', handler('worker A'));
  worker(api, writer, 'worker B', handler('worker B'));
  const runs: string[] = [];
  for (let i = 0; i < 8; i++) runs.push((await startRun(t, writer, `objective ${i}`)).run_id);
  await waitFor(() => runs.every((id) => t.host.teamwork.runs.status(id).state === 'completed'), 30_000);
  expect(worked).toHaveLength(8);
  expect(new Set(worked.map((w) => w.task)).size).toBe(8);
  // While a task was at work the daemon listed who had it.
  expect(t.host.teamwork.workers.pending(writer)).toEqual([]);
});

it('lists who works on a task, refuses it to others, and hands it on when the holder stops renewing or releases it', async () => {
  const { team: t, api, writer } = await setUp();
  const w = t.host.teamwork.workers;
  const { run_id } = await startRun(t, writer, 'claimed');
  await waitFor(() => w.pending(writer).length === 1, 10_000);
  const [task] = w.pending(writer);
  const id = task?.task_id as string;

  // Worker A claims the task with a short lease, then goes silent (as if killed).
  let got = await api.post<{ granted: string[] }>(`/v1/workers/${encodeURIComponent(writer)}/claim`, {
    holder: 'worker A',
    take: [id],
    lease_ms: 1000,
  });
  expect(got.granted).toEqual([id]);
  const listed = await api.get<{ tasks: Array<{ task_id: string; claim?: { holder: string } }> }>(
    `/v1/workers/${encodeURIComponent(writer)}/tasks`,
  );
  expect(listed.tasks[0]?.claim?.holder).toBe('worker A');

  // Worker B does not start it while A's claim holds, and says whose it is.
  const left: Array<{ reason: string; holder?: string }> = [];
  const worked: string[] = [];
  const b = worker(api, writer, 'worker B', async (ctx) => {
    worked.push(ctx.task.task_id);
    await ctx.deliver({ value: 'by B', summary: 'B' });
  });
  b.onClaimRefused = (_task, reason, holder) =>
    left.push({ reason, ...(holder === undefined ? {} : { holder }) });
  await waitFor(() => left.length > 0, 5_000);
  expect(left[0]).toEqual({ reason: 'another worker is working on it', holder: 'worker A' });
  expect(worked).toEqual([]);

  // A stops renewing: after its lease the task is B's, worked once.
  await waitFor(() => t.host.teamwork.runs.status(run_id).state === 'completed', 10_000);
  expect(worked).toEqual([id]);

  // Released claims go on at once; bad claims are refused with a typed error. B is closed first (a
  // poll of its own on the way would otherwise take the next task before C asks).
  await b.close();
  const second = await startRun(t, writer, 'released');
  await waitFor(() => w.pending(writer).length === 1, 10_000);
  const next = w.pending(writer)[0]?.task_id as string;
  got = await api.post(`/v1/workers/${encodeURIComponent(writer)}/claim`, {
    holder: 'worker C',
    take: [next],
    lease_ms: 600_000,
  });
  expect(got.granted).toEqual([next]);
  const refusedToD = await api.post<{ granted: string[]; refused: Array<{ holder?: string }> }>(
    `/v1/workers/${encodeURIComponent(writer)}/claim`,
    { holder: 'worker D', take: [next] },
  );
  expect(refusedToD.granted).toEqual([]);
  expect(refusedToD.refused[0]?.holder).toBe('worker C');
  await api.post(`/v1/workers/${encodeURIComponent(writer)}/claim`, { holder: 'worker C', release: [next] });
  const d = await api.post<{ granted: string[] }>(`/v1/workers/${encodeURIComponent(writer)}/claim`, {
    holder: 'worker D',
    take: [next],
  });
  expect(d.granted).toEqual([next]);
  expect(t.host.teamwork.runs.status(second.run_id).state).toBe('running');

  for (const bad of [
    { take: [next] },
    { holder: '', take: [next] },
    { holder: 'x', take: 'not a list' },
    { holder: 'x', take: [next], lease_ms: 10 },
  ]) {
    const err = await api
      .post(`/v1/workers/${encodeURIComponent(writer)}/claim`, bad)
      .catch((e: unknown) => e);
    expect(isAnxError(err) && err.code).toBe('ANX_TEAMWORK_INVALID');
  }
});

it('gives back a claim granted to a worker closed while it was asking, so the next worker takes the task at once', async () => {
  const { team: t, writer } = await setUp();
  const w = t.host.teamwork.workers;
  await startRun(t, writer, 'closed mid-claim');
  await waitFor(() => w.pending(writer).length === 1, 10_000);
  const id = w.pending(writer)[0]?.task_id as string;
  let closing: Promise<void> | undefined;
  let claimAnswered: Promise<unknown> | undefined;
  let worker: RemoteWorker | undefined;
  // The worker is closed the moment its claim request leaves, before the grant comes back.
  class CloseOnClaim extends ApiClient {
    override post<T>(path: string, body?: unknown): Promise<T> {
      const answer = super.post<T>(path, body);
      if (path.endsWith('/claim') && (body as { take?: string[] }).take?.length && closing === undefined) {
        claimAnswered = answer.catch(() => {});
        closing = worker?.close();
      }
      return answer;
    }
  }
  const worked: string[] = [];
  worker = new RemoteWorker(new CloseOnClaim(server?.url as string, TOKEN), writer, 20, {
    holder: 'worker A',
    leaseMs: 600_000,
  });
  worker.onStage('writer', async (ctx) => {
    worked.push(ctx.task.task_id);
  });
  workers.push(worker);
  worker.start();
  await waitFor(() => closing !== undefined, 10_000, 'the claim request');
  await closing;
  await claimAnswered;
  expect(worked).toEqual([]);
  expect(w.claimOf(writer, id)).toBeUndefined();
  expect(w.claim(writer, { holder: 'worker B', take: [id] }).granted).toEqual([id]);
});

it('keeps a task that was at work before a restart for the worker that renews it', async () => {
  const { team: t, writer } = await setUp();
  const dir = t.host.store.path;
  const { run_id } = await startRun(t, writer, 'restart');
  await waitFor(() => t.host.teamwork.workers.pending(writer).length === 1, 10_000);
  const id = t.host.teamwork.workers.pending(writer)[0]?.task_id as string;
  expect(t.host.teamwork.workers.claim(writer, { holder: 'worker A', take: [id] }).granted).toEqual([id]);
  await server?.close();
  await t.host.close();

  const { Host } = await import('../../runtime/host.ts');
  const reopened = await Host.open({ dataDir: dir, noSync: true });
  team = { ...t, host: reopened };
  server = undefined;
  const w = reopened.teamwork.workers;
  await waitFor(() => w.pending(writer).length === 1, 10_000);
  // A newcomer waits; the worker that had it renews it.
  const newcomer = w.claim(writer, { holder: 'worker B', take: [id] });
  expect(newcomer.granted).toEqual([]);
  expect(newcomer.refused[0]?.reason).toMatch(/the host restarted/);
  expect(w.claim(writer, { holder: 'worker A', renew: [id] }).granted).toEqual([id]);
  expect(w.claim(writer, { holder: 'worker B', take: [id] }).refused[0]?.holder).toBe('worker A');
  expect(reopened.teamwork.runs.status(run_id).state).toBe('running');
});
