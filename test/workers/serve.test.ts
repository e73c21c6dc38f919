// `worker run`'s serving loop against a scripted daemon: an answer the daemon refuses fails the stage
// with why, an answer that never reached it is worked again, and a daemon that goes away is reported.
import { afterEach, expect, it } from 'vitest';
import { ApiClient, ApiError, DaemonNotRunningError } from '../../bridge/api/client.ts';
import type { AdapterOutcome, WorkerAdapter } from '../../bridge/workers/adapter.ts';
import { AdapterWorker, type TaskEvent } from '../../bridge/workers/serve.ts';
import { waitFor } from '../helpers/daemon.ts';
import { testInput } from './input.ts';

const DID = 'did:agentnexus:z6MkworkerTest';
const TASK = { ...testInput(), did: DID };

/** A daemon's worker routes, answered by `routes` (throw to fail a request). */
class ScriptedDaemon extends ApiClient {
  readonly posts: Array<{ path: string; body: Record<string, unknown> }> = [];
  constructor(private readonly routes: (method: string, path: string, body: unknown) => unknown) {
    super('http://127.0.0.1:1', 'unused-token');
  }
  override async request<T>(method: 'GET' | 'POST', path: string, body?: unknown): Promise<T> {
    if (method === 'POST' && path.endsWith('/claim')) {
      // This worker is the only one: every claim is granted.
      const b = body as { take?: string[]; renew?: string[] };
      return {
        granted: [...(b.take ?? []), ...(b.renew ?? [])],
        until: Date.now() + 15_000,
        refused: [],
      } as T;
    }
    if (method === 'POST') this.posts.push({ path, body: body as Record<string, unknown> });
    return this.routes(method, path, body) as T;
  }
}

const task = {
  did: DID,
  run_id: 'run-1',
  task_id: 'run-1/design/1',
  stage: 'design',
  role: 'architect',
  attempt: 1,
  timeout_ms: 60_000,
  enclave_id: null,
  // No input artifacts: the scripted daemon has no vault.
  context: { ...TASK.snapshot, inputs: [] },
};

function adapter(outcome: AdapterOutcome): WorkerAdapter & { runs: number } {
  const a = {
    kind: 'fake',
    runs: 0,
    async run(): Promise<AdapterOutcome> {
      a.runs++;
      return outcome;
    },
  };
  return a;
}

const workers: AdapterWorker[] = [];
afterEach(async () => {
  for (const w of workers.splice(0)) await w.stop();
});

function serve(api: ApiClient, a: WorkerAdapter, events: TaskEvent[], connection: boolean[] = []) {
  const w = new AdapterWorker(
    api,
    DID,
    'architect',
    { adapter: a, options: { progressIntervalMs: 10 } },
    {
      pollMs: 20,
      watchMs: 60_000,
      onTask: (e) => events.push(e),
      onConnection: (up) => connection.push(up),
    },
  );
  workers.push(w);
  w.start();
  return w;
}

it('fails the stage saying why when the daemon refuses the answer, and does not work the task again', async () => {
  let open = true;
  const api = new ScriptedDaemon((method, path) => {
    if (method === 'GET') return { tasks: open ? [task] : [] };
    if (path.endsWith('/deliver'))
      throw new ApiError(413, 'ANX_MESSAGE_TOO_LARGE', 'the artifact is larger than 67108864 bytes');
    if (path.endsWith('/fail')) {
      open = false;
      return {};
    }
    return {};
  });
  const events: TaskEvent[] = [];
  const a = adapter({ status: 'delivered', value: 'huge', summary: 'huge' });
  serve(api, a, events);
  await waitFor(() => events.some((e) => e.state === 'failed'), 10_000);
  const failed = api.posts.filter((p) => p.path.endsWith('/fail'));
  expect(failed).toHaveLength(1);
  expect(failed[0]?.body['error']).toBe(
    'the daemon did not take the answer: the artifact is larger than 67108864 bytes',
  );
  expect(events.find((e) => e.state === 'failed')).toMatchObject({
    error: expect.stringContaining('larger than 67108864 bytes'),
  });
  await new Promise((resolve) => setTimeout(resolve, 200));
  expect(a.runs).toBe(1);
});

it('works a task again when its answer never reached the daemon, and reports the daemon going and coming back', async () => {
  let down = false;
  let delivered = 0;
  const api = new ScriptedDaemon((method, path) => {
    if (down) throw new DaemonNotRunningError('/tmp/anx-test', 'it does not answer');
    if (method === 'GET') return { tasks: delivered === 0 ? [task] : [] };
    if (path.endsWith('/deliver')) {
      if (delivered === 0 && api.posts.filter((p) => p.path.endsWith('/deliver')).length === 1) {
        // The daemon stops as the first answer is sent: nothing was taken.
        down = true;
        setTimeout(() => {
          down = false;
        }, 200);
        throw new DaemonNotRunningError('/tmp/anx-test', 'it does not answer');
      }
      delivered++;
      return {
        ref: { enclave_id: 'e', key: 'design/spec.md', version: 1, hash: 'h', size: 2, summary: 'ok' },
      };
    }
    return {};
  });
  const events: TaskEvent[] = [];
  const connection: boolean[] = [];
  const a = adapter({ status: 'delivered', value: 'ok', summary: 'ok' });
  serve(api, a, events, connection);
  await waitFor(() => delivered === 1, 10_000);
  expect(a.runs).toBe(2);
  expect(events.filter((e) => e.state === 'delivered')).toHaveLength(1);
  expect(connection).toEqual([false, true]);
});
