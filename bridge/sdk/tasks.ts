// The SDK's Action Layer (`client.tasks`): propose, claim, state notify and resource sync as the client's identity, over either mode.
import type { ArtifactByKey, ForwardedRequest, ProposeRequest, TaskView } from '../../actors/tasks.ts';
import type { TaskResource } from '../../machines/task.ts';
import type { Host } from '../../runtime/host.ts';
import type { ApiClient } from '../api/client.ts';
import { SdkArgumentError } from './errors.ts';
import { requireDid, requireString } from './validate.ts';

export type Task = TaskView;
export type { ForwardedRequest, TaskResource };

/** Where a request on a task held by another host goes: its proposer. */
export interface HomeOption {
  home?: string;
}

export interface ProposeOptions {
  title: string;
  description?: string;
  /** DIDs that may claim it; default anyone. */
  candidates?: string[];
  enclaveId?: string;
  resources?: TaskResource[];
  id?: string;
}

/**
 * Tasks, acting as the client's identity. Every change is a statement signed by that identity (by the
 * daemon or embedded host that holds its key); the task refuses what the identity may not do with a typed
 * error. A request on a task of another host resolves with `{ forwarded: true, home }`: the answer arrives
 * in the inbox as a `task.state` or `task.refused` notice.
 *
 * @example
 * ```ts
 * const task = await alice.tasks.propose({ title: 'Review the login diff', candidates: [bob.did] });
 * await bob.tasks.claim(task.task_id);
 * await bob.tasks.start(task.task_id);
 * await bob.tasks.done(task.task_id, { result: 'approved' });
 * ```
 */
export interface TasksApi {
  propose(options: ProposeOptions): Promise<Task>;
  claim(taskId: string, options?: HomeOption): Promise<Task | ForwardedRequest>;
  /** State notify by the claimant: in progress. */
  start(taskId: string, options?: HomeOption): Promise<Task | ForwardedRequest>;
  done(taskId: string, options?: HomeOption & { result?: string }): Promise<Task | ForwardedRequest>;
  fail(taskId: string, options?: HomeOption & { reason?: string }): Promise<Task | ForwardedRequest>;
  /** By the proposer, from any open state. */
  cancel(taskId: string, options?: HomeOption & { reason?: string }): Promise<Task | ForwardedRequest>;
  /** Resource sync: artifact refs (or `{ kind: 'artifact', enclave_id, key }`, resolved to a ref), vault keys, URLs. */
  sync(
    taskId: string,
    resources: Array<TaskResource | ArtifactByKey>,
    options?: HomeOption,
  ): Promise<Task | ForwardedRequest>;
  /** A task with its signed log (or, for a task of another host, its last notice with `replica: true`). */
  get(taskId: string): Promise<Task>;
  /** Tasks on the client's host that its identity takes part in (`all` for every task there). */
  list(options?: { state?: string; all?: boolean }): Promise<Task[]>;
}

/** How task calls travel: the local API, or the host in this process. */
export interface TaskTransport {
  propose(request: ProposeRequest): Promise<Task>;
  change(
    taskId: string,
    as: string,
    op: 'claim' | 'notify' | 'sync',
    body: Record<string, unknown>,
  ): Promise<Task | ForwardedRequest>;
  get(taskId: string): Promise<Task>;
  list(filter: { did?: string; state?: string }): Promise<Task[]>;
}

export function taskApiTransport(api: ApiClient): TaskTransport {
  const path = (id: string, tail = '') => `/v1/tasks/${encodeURIComponent(id)}${tail}`;
  return {
    propose: (request) => api.post('/v1/tasks', request),
    change: (id, as, op, body) => api.post(path(id, `/${op}`), { as, ...body }),
    get: (id) => api.get(path(id)),
    list: async (filter) => {
      const q = new URLSearchParams();
      if (filter.did !== undefined) q.set('as', filter.did);
      if (filter.state !== undefined) q.set('state', filter.state);
      return (await api.get<{ tasks: Task[] }>(`/v1/tasks${q.size > 0 ? `?${q}` : ''}`)).tasks;
    },
  };
}

export function taskHostTransport(host: Host): TaskTransport {
  const t = host.teamwork.tasks;
  return {
    propose: (request) => t.propose(request),
    change: (id, as, op, body) => {
      const home = typeof body['home'] === 'string' ? { home: body['home'] } : {};
      if (op === 'claim') return t.claim(id, as, home);
      if (op === 'sync') return t.sync(id, as, body['resources'] as TaskResource[], home);
      return t.notify(id, as, body['state'] as never, {
        ...home,
        ...(body as { result?: string; reason?: string }),
      });
    },
    get: async (id) => t.get(id),
    list: async (filter) => t.list(filter),
  };
}

function optionalText(name: string, value: unknown): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string') throw new SdkArgumentError(name, 'a string', value);
  return value;
}

function home(options: HomeOption | undefined): { home?: string } {
  if (options?.home === undefined) return {};
  return { home: requireDid('options.home', options.home) };
}

/** The `tasks` namespace of a client acting as `did`, with argument checks at the edge. */
export function tasksApi(
  did: string,
  transport: () => TaskTransport,
  ensureOpen: (operation: string) => void,
): TasksApi {
  const id = (taskId: unknown) => requireString('taskId', taskId, 'a task id');
  const notify = async (
    op: string,
    taskId: string,
    state: string,
    options: (HomeOption & { result?: string; reason?: string }) | undefined,
  ) => {
    ensureOpen(`tasks.${op}()`);
    const body: Record<string, unknown> = { state, ...home(options) };
    const result = optionalText('options.result', options?.result);
    if (result !== undefined) body['result'] = result;
    const reason = optionalText('options.reason', options?.reason);
    if (reason !== undefined) body['reason'] = reason;
    return transport().change(id(taskId), did, 'notify', body);
  };
  return {
    propose: async (options) => {
      ensureOpen('tasks.propose()');
      if (options === null || typeof options !== 'object')
        throw new SdkArgumentError('options', '{ title, description?, candidates?, enclaveId? }', options);
      const request: ProposeRequest = {
        as: did,
        title: requireString('options.title', options.title, 'a title'),
      };
      const description = optionalText('options.description', options.description);
      if (description !== undefined) request.description = description;
      if (options.candidates !== undefined) {
        if (!Array.isArray(options.candidates))
          throw new SdkArgumentError('options.candidates', 'a list of DIDs', options.candidates);
        request.candidates = options.candidates.map((c, i) => requireDid(`options.candidates[${i}]`, c));
      }
      const enclave = optionalText('options.enclaveId', options.enclaveId);
      if (enclave !== undefined) request.enclave_id = enclave;
      if (options.resources !== undefined) request.resources = options.resources;
      const taskId = optionalText('options.id', options.id);
      if (taskId !== undefined) request.id = taskId;
      return transport().propose(request);
    },
    claim: async (taskId, options) => {
      ensureOpen('tasks.claim()');
      return transport().change(id(taskId), did, 'claim', home(options));
    },
    start: (taskId, options) => notify('start', taskId, 'in_progress', options),
    done: (taskId, options) => notify('done', taskId, 'done', options),
    fail: (taskId, options) => notify('fail', taskId, 'failed', options),
    cancel: (taskId, options) => notify('cancel', taskId, 'cancelled', options),
    sync: async (taskId, resources, options) => {
      ensureOpen('tasks.sync()');
      if (!Array.isArray(resources) || resources.length === 0)
        throw new SdkArgumentError('resources', 'a non-empty list of resources', resources);
      return transport().change(id(taskId), did, 'sync', { resources, ...home(options) });
    },
    get: async (taskId) => {
      ensureOpen('tasks.get()');
      return transport().get(id(taskId));
    },
    list: async (options) => {
      ensureOpen('tasks.list()');
      const filter: { did?: string; state?: string } = options?.all === true ? {} : { did };
      const state = optionalText('options.state', options?.state);
      if (state !== undefined) filter.state = state;
      return transport().list(filter);
    },
  };
}
