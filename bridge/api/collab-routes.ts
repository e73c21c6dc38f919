// Local API routes of the Action Layer, Discussions and unread inboxes: tasks, discussions, unread messages and mentions, mark-read.
import { markRead, unread } from '../../actors/unread.ts';
import { MAX_DEADLINE_MS } from '../../machines/discussion.ts';
import type { NotifyState } from '../../machines/task.ts';
import { describeValue } from '../../runtime/errors.ts';
import type { Host } from '../../runtime/host.ts';
import { RequestError } from '../../runtime/host.ts';
import { obj, optList, optStr, str, type TeamworkRoute } from './teamwork-routes.ts';

export type CollabRoute = TeamworkRoute;

function home(b: Record<string, unknown>): { home?: string } {
  const h = optStr(b, 'home');
  return h === undefined ? {} : { home: h };
}

/** A deadline as ms since the epoch, an ISO date, or `in_ms` from now. */
function deadlineOf(b: Record<string, unknown>, now: number): number | undefined {
  const v = b['deadline'];
  const inMs = b['deadline_in_ms'];
  if (inMs !== undefined) {
    if (typeof inMs !== 'number' || !Number.isInteger(inMs) || inMs <= 0 || inMs > MAX_DEADLINE_MS)
      throw new RequestError(
        'ANX_REQUEST_INVALID',
        `"deadline_in_ms" expected a positive integer of at most ${MAX_DEADLINE_MS} (a year), got ${describeValue(inMs)}`,
      );
    return now + inMs;
  }
  if (v === undefined || v === null) return undefined;
  const n =
    typeof v === 'number'
      ? v
      : typeof v === 'string'
        ? /^\d+$/.test(v)
          ? Number(v)
          : Date.parse(v)
        : Number.NaN;
  // A date beyond a year from now is a mistake (and beyond what a Date can show, a broken discussion).
  if (!Number.isSafeInteger(n) || n < 0 || n > now + MAX_DEADLINE_MS)
    throw new RequestError(
      'ANX_REQUEST_INVALID',
      `"deadline" expected ms since the epoch or an ISO date, at most a year from now, got ${describeValue(v)}`,
    );
  return n;
}

function limitOf(url: URL): number {
  const raw = url.searchParams.get('limit');
  if (raw === null) return 100;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1 || n > 1000)
    throw new RequestError(
      'ANX_REQUEST_INVALID',
      `"limit" expected an integer from 1 to 1000, got ${describeValue(raw)}`,
    );
  return n;
}

const dec = (s: string | undefined) => decodeURIComponent(s ?? '');

/** Installs the routes of tasks, discussions and unread inboxes. */
export function installCollabRoutes(host: Host, route: CollabRoute): void {
  const { tasks, discussions } = host.teamwork;

  route('POST', '/v1/tasks', async (_url, _p, body) => {
    const b = obj(body);
    const request: Parameters<typeof tasks.propose>[0] = { as: str(b, 'as'), title: str(b, 'title') };
    const description = optStr(b, 'description');
    if (description !== undefined) request.description = description;
    const candidates = optList(b, 'candidates');
    if (candidates !== undefined) request.candidates = candidates;
    const enclave = optStr(b, 'enclave_id');
    if (enclave !== undefined) request.enclave_id = enclave;
    const id = optStr(b, 'id');
    if (id !== undefined) request.id = id;
    if (b['resources'] !== undefined) request.resources = b['resources'] as never;
    return tasks.propose(request);
  });
  route('GET', '/v1/tasks', (url) => {
    const filter: { did?: string; state?: string } = {};
    const did = url.searchParams.get('as');
    if (did !== null) filter.did = did;
    const state = url.searchParams.get('state');
    if (state !== null) filter.state = state;
    return { tasks: tasks.list(filter) };
  });
  route('GET', '/v1/tasks/:id', (_url, [id]) => tasks.get(dec(id)));
  route('POST', '/v1/tasks/:id/claim', (_url, [id], body) => {
    const b = obj(body);
    return tasks.claim(dec(id), str(b, 'as'), home(b));
  });
  route('POST', '/v1/tasks/:id/notify', (_url, [id], body) => {
    const b = obj(body);
    const details: { result?: string; reason?: string; home?: string } = home(b);
    const result = optStr(b, 'result');
    if (result !== undefined) details.result = result;
    const reason = optStr(b, 'reason');
    if (reason !== undefined) details.reason = reason;
    return tasks.notify(dec(id), str(b, 'as'), str(b, 'state') as NotifyState, details);
  });
  route('POST', '/v1/tasks/:id/sync', (_url, [id], body) => {
    const b = obj(body);
    if (!Array.isArray(b['resources']))
      throw new RequestError(
        'ANX_REQUEST_INVALID',
        `"resources" expected a list, got ${describeValue(b['resources'])}`,
      );
    return tasks.sync(dec(id), str(b, 'as'), b['resources'] as never, home(b));
  });
  // A statement signed by an agent that holds its own key.
  route('POST', '/v1/tasks/:id/statements', (_url, [id], body) => {
    const b = obj(body);
    return tasks.submit(dec(id), str(b, 'type'), str(b, 'statement'), home(b));
  });

  route('POST', '/v1/discussions', async (_url, _p, body) => {
    const b = obj(body);
    const participants = optList(b, 'participants');
    if (participants === undefined)
      throw new RequestError('ANX_REQUEST_INVALID', '"participants" expected a list of DIDs, got nothing');
    const request: Parameters<typeof discussions.open>[0] = {
      as: str(b, 'as'),
      topic: str(b, 'topic'),
      participants,
    };
    const rule = optStr(b, 'rule');
    if (rule !== undefined) request.rule = rule as never;
    const leader = optStr(b, 'leader');
    if (leader !== undefined) request.leader = leader;
    const options = optList(b, 'options');
    if (options !== undefined) request.options = options;
    const deadline = deadlineOf(b, host.clock.now());
    if (deadline !== undefined) request.deadline = deadline;
    const enclave = optStr(b, 'enclave_id');
    if (enclave !== undefined) request.enclave_id = enclave;
    const id = optStr(b, 'id');
    if (id !== undefined) request.id = id;
    return discussions.open(request);
  });
  route('GET', '/v1/discussions', (url) => {
    const filter: { did?: string; state?: string } = {};
    const did = url.searchParams.get('as');
    if (did !== null) filter.did = did;
    const state = url.searchParams.get('state');
    if (state !== null) filter.state = state;
    return { discussions: discussions.list(filter) };
  });
  route('GET', '/v1/discussions/:id', (_url, [id]) => discussions.get(dec(id)));
  route('POST', '/v1/discussions/:id/posts', (_url, [id], body) => {
    const b = obj(body);
    const options: { quote?: string; mentions?: string[]; home?: string } = home(b);
    const quote = optStr(b, 'quote');
    if (quote !== undefined) options.quote = quote;
    const mentions = optList(b, 'mentions');
    if (mentions !== undefined) options.mentions = mentions;
    return discussions.post(dec(id), str(b, 'as'), str(b, 'text'), options);
  });
  route('POST', '/v1/discussions/:id/votes', (_url, [id], body) => {
    const b = obj(body);
    return discussions.vote(dec(id), str(b, 'as'), str(b, 'option'), home(b));
  });
  route('POST', '/v1/discussions/:id/close', (_url, [id], body) => {
    const b = obj(body);
    return discussions.close(dec(id), str(b, 'as'), home(b));
  });
  route('POST', '/v1/discussions/:id/statements', (_url, [id], body) => {
    const b = obj(body);
    return discussions.submit(dec(id), str(b, 'type'), str(b, 'statement'), home(b));
  });

  route('GET', '/v1/inbox/:did/unread', (url, [did]) =>
    unread(host.system, dec(did), {
      limit: limitOf(url),
      mentionsOnly: url.searchParams.get('mentions') === '1' || url.searchParams.get('mentions') === 'true',
    }),
  );
  route('POST', '/v1/inbox/:did/read', (_url, [did], body) => {
    const b = obj(body);
    const through = b['through'];
    if (through !== undefined && (typeof through !== 'number' || !Number.isInteger(through) || through < 0))
      throw new RequestError(
        'ANX_REQUEST_INVALID',
        `"through" expected an inbox sequence number, got ${describeValue(through)}`,
      );
    return markRead(host.system, dec(did), through as number | undefined);
  });
}
