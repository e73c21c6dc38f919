// CLI commands of the Action Layer and Discussions (`task …`, `discuss …`) and the unread view of an inbox.
import type { Command } from 'commander';
import type { ApiClient } from '../../bridge/api/client.ts';
import { AnxError } from '../errors.ts';
import { formatTable } from './format.ts';

interface Helpers {
  client(cmd: Command): ApiClient;
  out(cmd: Command, json: unknown, text: () => string): void;
}

interface TaskJson {
  task_id: string;
  state: string;
  title: string;
  description: string;
  proposer: string;
  claimant: string | null;
  candidates: string[];
  enclave_id: string | null;
  result: string | null;
  reason: string | null;
  resources: Array<Record<string, unknown> & { kind: string; by: string }>;
  seq: number;
  log?: Array<{ seq: number; type: string; signer: string; state: string; ts: number }>;
  replica?: boolean;
  forwarded?: boolean;
  home?: string;
  id?: string;
}

interface Conclusion {
  outcome: string;
  option: string | null;
  reason: string;
  detail: string;
}

interface DiscussionJson {
  discussion_id: string;
  state: string;
  topic: string;
  creator: string;
  participants: string[];
  rule: string;
  leader: string;
  options: string[];
  deadline: number | null;
  posts: number;
  ballots: Record<string, string>;
  conclusion: Conclusion | null;
  archive: { enclave_id: string; key: string; version: number } | null;
  posts_list?: Array<{
    id: string;
    author: string;
    ts: number;
    text: string;
    quote: { id: string; author: string; text: string } | null;
  }>;
  forwarded?: boolean;
  home?: string;
  id?: string;
}

interface UnreadJson {
  did: string;
  unread: number;
  mentions: number;
  read_through: number;
  messages: Array<{ seq: number; type: string; from: string; ts: number; body: unknown; mention: boolean }>;
}

function short(did: string | null): string {
  if (did === null) return '-';
  return did.length > 30 ? `${did.slice(0, 22)}…${did.slice(-6)}` : did;
}

function collect(value: string, previous: string[] = []): string[] {
  return [
    ...previous,
    ...value
      .split(',')
      .map((v) => v.trim())
      .filter((v) => v.length > 0),
  ];
}

/** `30m`, `2h`, `1d`, `45s`, or an ISO date / ms since the epoch. */
export function parseDeadline(value: string, now = Date.now()): number {
  const rel = /^(\d+)(s|m|h|d)$/.exec(value);
  if (rel !== null) {
    const unit = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 }[rel[2] as 's' | 'm' | 'h' | 'd'];
    return now + Number(rel[1]) * unit;
  }
  const abs = /^\d+$/.test(value) ? Number(value) : Date.parse(value);
  if (!Number.isFinite(abs))
    throw new AnxError(
      'ANX_ARGUMENT_INVALID',
      `--deadline expected 30m, 2h, 1d or an ISO date, got "${value}"`,
    );
  return abs;
}

/** `ENCLAVE:KEY[@VERSION]` of an artifact. */
function parseArtifact(value: string): {
  kind: 'artifact';
  enclave_id: string;
  key: string;
  version?: number;
} {
  const m = /^([^:]+):([^@]+)(?:@(\d+))?$/.exec(value);
  if (m === null)
    throw new AnxError(
      'ANX_ARGUMENT_INVALID',
      `--artifact expected ENCLAVE:KEY or ENCLAVE:KEY@VERSION, got "${value}"`,
    );
  return {
    kind: 'artifact',
    enclave_id: m[1] as string,
    key: m[2] as string,
    ...(m[3] === undefined ? {} : { version: Number(m[3]) }),
  };
}

function formatTask(t: TaskJson): string {
  if (t.forwarded === true)
    return `sent to ${t.home} (the task lives on its host); its answer arrives as a task.state or task.refused notice`;
  const lines = [
    `task ${t.task_id}: ${t.state}${t.replica ? ' (last notice from its host)' : ''}`,
    `title: ${t.title}`,
    ...(t.description ? [`description: ${t.description}`] : []),
    `proposer: ${t.proposer}`,
    `claimant: ${t.claimant ?? '-'}`,
    ...(t.candidates.length > 0 ? [`candidates: ${t.candidates.join(', ')}`] : []),
    ...(t.enclave_id ? [`enclave: ${t.enclave_id}`] : []),
    ...(t.result ? [`result: ${t.result}`] : []),
    ...(t.reason ? [`reason: ${t.reason}`] : []),
  ];
  for (const r of t.resources) {
    const what =
      r.kind === 'artifact'
        ? `${(r['ref'] as { enclave_id: string; key: string; version: number }).enclave_id}:${(r['ref'] as { key: string }).key}@${(r['ref'] as { version: number }).version}`
        : r.kind === 'vault'
          ? `${r['enclave_id']}:${r['key']}`
          : String(r['url']);
    lines.push(`resource: ${r.kind} ${what} (by ${short(r.by)})`);
  }
  if (t.log !== undefined) {
    lines.push('signed log:');
    for (const e of t.log)
      lines.push(`  ${e.seq}. ${new Date(e.ts).toISOString()} ${e.type} → ${e.state} by ${short(e.signer)}`);
  }
  return lines.join('\n');
}

function formatDiscussion(d: DiscussionJson): string {
  if (d.forwarded === true)
    return `sent to ${d.home} (the discussion lives on its host); its answer arrives as a notice`;
  const lines = [
    `discussion ${d.discussion_id}: ${d.state}`,
    `topic: ${d.topic}`,
    `rule: ${d.rule}${d.rule === 'leader' ? ` (leader ${short(d.leader)})` : ''}, options: ${d.options.join(', ')}`,
    `participants: ${d.participants.map(short).join(', ')}`,
    ...(d.deadline === null ? [] : [`deadline: ${new Date(d.deadline).toISOString()}`]),
    `ballots: ${Object.keys(d.ballots).length} of ${d.participants.length}${
      Object.keys(d.ballots).length > 0
        ? ` (${Object.entries(d.ballots)
            .map(([v, o]) => `${short(v)}: ${o}`)
            .join(', ')})`
        : ''
    }`,
  ];
  if (d.conclusion !== null)
    lines.push(
      `conclusion: ${d.conclusion.outcome}${d.conclusion.option ? ` "${d.conclusion.option}"` : ''} (${d.conclusion.reason}: ${d.conclusion.detail})`,
    );
  if (d.archive !== null)
    lines.push(`archived: ${d.archive.enclave_id}:${d.archive.key}@${d.archive.version}`);
  for (const p of d.posts_list ?? []) {
    lines.push(`[${p.id}] ${new Date(p.ts).toISOString()} ${short(p.author)}:`);
    if (p.quote !== null) lines.push(`  > ${short(p.quote.author)}: ${p.quote.text.split('\n')[0]}`);
    for (const line of p.text.split('\n')) lines.push(`  ${line}`);
  }
  return lines.join('\n');
}

/** The unread part of an inbox, one line per message, mentions marked with `@`. */
export function formatUnread(u: UnreadJson): string {
  const lines = [
    `${u.did}: ${u.unread} unread, ${u.mentions} mentioning it (read through #${u.read_through})`,
  ];
  for (const m of u.messages) {
    const body = m.body as { text?: unknown; post?: { text?: unknown } } | null;
    const text = body?.text ?? body?.post?.text ?? JSON.stringify(m.body);
    lines.push(
      `${m.mention ? '@' : ' '}#${m.seq} ${new Date(m.ts).toISOString()} ${m.type} from ${short(m.from)}: ${String(text).slice(0, 200)}`,
    );
  }
  return lines.join('\n');
}

/** Options of the `inbox` command. */
export interface InboxCommandOptions {
  after?: number;
  limit?: number;
  unread?: boolean;
  mentions?: boolean;
  markRead?: boolean;
  through?: number;
}

/** True when the `inbox` command asks for the unread view or to mark read. */
export function wantsUnread(options: InboxCommandOptions): boolean {
  return options.unread === true || options.mentions === true || options.markRead === true;
}

/** `inbox DID --unread` and `inbox DID --mark-read`: called by the `inbox` command. */
export async function inboxUnread(
  h: Helpers,
  cmd: Command,
  did: string,
  options: InboxCommandOptions,
): Promise<void> {
  const path = `/v1/inbox/${encodeURIComponent(did)}`;
  if (options.markRead === true) {
    const result = await h
      .client(cmd)
      .post<{ did: string; unread: number; mentions: number; read_through: number; marked: number }>(
        `${path}/read`,
        options.through === undefined ? {} : { through: options.through },
      );
    h.out(
      cmd,
      result,
      () =>
        `marked ${result.marked} message(s) read through #${result.read_through}: ${result.unread} unread, ${result.mentions} mentioning it`,
    );
    return;
  }
  const query = new URLSearchParams();
  if (options.limit !== undefined) query.set('limit', String(Math.max(1, Math.min(1000, options.limit))));
  if (options.mentions === true) query.set('mentions', '1');
  const page = await h.client(cmd).get<UnreadJson>(`${path}/unread${query.size > 0 ? `?${query}` : ''}`);
  h.out(cmd, page, () => formatUnread(page));
}

export function registerCollabCommands(program: Command, h: Helpers): void {
  const post = <T>(cmd: Command, path: string, body: unknown) => h.client(cmd).post<T>(path, body);
  const taskPath = (id: string, tail = '') => `/v1/tasks/${encodeURIComponent(id)}${tail}`;
  const discussionPath = (id: string, tail = '') => `/v1/discussions/${encodeURIComponent(id)}${tail}`;
  const withHome = (o: { home?: string }) => (o.home === undefined ? {} : { home: o.home });

  // ---- task ----
  const task = program
    .command('task')
    .description(
      'the Action Layer: propose tasks, claim them, report their state, attach resources; every change is signed by the acting DID',
    )
    .addHelpText(
      'after',
      `
States: proposed → claimed → in_progress → done | failed, and cancelled (by the proposer) from any open state.
Only a candidate (or anyone, without candidates) may claim; only the claimant reports start/done/fail.
A task lives on its proposer's host: for a task of another host pass --home <proposer DID>
(it is learnt from the task.proposed notice otherwise); the answer comes back as a notice.

Examples:
  anx-runtime task propose --as <did> --title "Review the login diff" --candidate <did>
  anx-runtime task claim <task> --as <did>
  anx-runtime task start <task> --as <did>
  anx-runtime task done <task> --as <did> --result "approved"
  anx-runtime task sync <task> --as <did> --artifact enc1:impl/diff.patch
  anx-runtime task show <task> --json`,
    );
  task
    .command('propose')
    .description('propose a task as a local identity; candidates get a task.proposed notice')
    .requiredOption('--as <did>', 'the proposing local identity')
    .requiredOption('--title <text>', 'what is to be done (1-256 characters)')
    .option('--description <text>', 'details (up to 4096 characters)')
    .option(
      '--candidate <did>',
      'a DID that may claim it (repeat or comma-separate; default: anyone)',
      collect,
    )
    .option('--enclave <id>', 'the Enclave the task belongs to (the proposer must be a member)')
    .option('--artifact <enclave:key[@version]>', 'attach an artifact from the start (repeatable)', collect)
    .option('--id <id>', 'the task id (default: task-<random>)')
    .action(
      async (
        o: {
          as: string;
          title: string;
          description?: string;
          candidate?: string[];
          enclave?: string;
          artifact?: string[];
          id?: string;
        },
        cmd: Command,
      ) => {
        // The artifacts go with the proposal: one that cannot be read leaves no task behind.
        const resources = o.artifact?.map(parseArtifact);
        const t = await post<TaskJson>(cmd, '/v1/tasks', {
          as: o.as,
          title: o.title,
          ...(o.description === undefined ? {} : { description: o.description }),
          ...(o.candidate === undefined ? {} : { candidates: o.candidate }),
          ...(o.enclave === undefined ? {} : { enclave_id: o.enclave }),
          ...(o.id === undefined ? {} : { id: o.id }),
          ...(resources === undefined ? {} : { resources }),
        });
        h.out(cmd, t, () => formatTask(t));
      },
    );
  task
    .command('claim')
    .description('claim a proposed task (only one claim ever wins)')
    .argument('<task>', 'the task id')
    .requiredOption('--as <did>', 'the claiming local identity')
    .option('--home <did>', 'the proposer, for a task on another host')
    .action(async (id: string, o: { as: string; home?: string }, cmd: Command) => {
      const t = await post<TaskJson>(cmd, taskPath(id, '/claim'), { as: o.as, ...withHome(o) });
      h.out(cmd, t, () => formatTask(t));
    });
  const notify = (name: string, state: string, description: string, textOption?: 'result' | 'reason') => {
    const c = task
      .command(name)
      .description(description)
      .argument('<task>', 'the task id')
      .requiredOption('--as <did>', 'the acting local identity')
      .option('--home <did>', 'the proposer, for a task on another host');
    if (textOption !== undefined)
      c.option(`--${textOption} <text>`, `the ${textOption} (up to 4096 characters)`);
    c.action(
      async (
        id: string,
        o: { as: string; home?: string; result?: string; reason?: string },
        cmd: Command,
      ) => {
        const t = await post<TaskJson>(cmd, taskPath(id, '/notify'), {
          as: o.as,
          state,
          ...withHome(o),
          ...(o.result === undefined ? {} : { result: o.result }),
          ...(o.reason === undefined ? {} : { reason: o.reason }),
        });
        h.out(cmd, t, () => formatTask(t));
      },
    );
  };
  notify('start', 'in_progress', 'state notify by the claimant: the claimed task is in progress');
  notify('done', 'done', 'state notify by the claimant: the task in progress is done', 'result');
  notify('fail', 'failed', 'state notify by the claimant: the task failed', 'reason');
  notify('cancel', 'cancelled', 'the proposer cancels an open task', 'reason');
  task
    .command('sync')
    .description('resource sync: attach artifact refs, vault keys or URLs (the proposer or the claimant)')
    .argument('<task>', 'the task id')
    .requiredOption('--as <did>', 'the acting local identity')
    .option('--artifact <enclave:key[@version]>', 'an artifact, resolved to its ref (repeatable)', collect)
    .option('--vault <enclave:key>', 'a vault key to read, without pinning a version (repeatable)', collect)
    .option('--url <url>', 'a URL (repeatable)', collect)
    .option('--home <did>', 'the proposer, for a task on another host')
    .action(
      async (
        id: string,
        o: { as: string; artifact?: string[]; vault?: string[]; url?: string[]; home?: string },
        cmd: Command,
      ) => {
        const resources: unknown[] = [
          ...(o.artifact ?? []).map(parseArtifact),
          ...(o.vault ?? []).map((v) => {
            const { enclave_id, key } = parseArtifact(v);
            return { kind: 'vault', enclave_id, key };
          }),
          ...(o.url ?? []).map((url) => ({ kind: 'url', url })),
        ];
        if (resources.length === 0)
          throw new AnxError('ANX_ARGUMENT_INVALID', 'task sync expected --artifact, --vault or --url', {
            hint: 'anx-runtime task sync <task> --as <did> --artifact enc1:design/spec.md',
          });
        const t = await post<TaskJson>(cmd, taskPath(id, '/sync'), { as: o.as, resources, ...withHome(o) });
        h.out(cmd, t, () => formatTask(t));
      },
    );
  task
    .command('show')
    .description('show a task with its signed log (for a task of another host: its last notice)')
    .argument('<task>', 'the task id')
    .action(async (id: string, _o: unknown, cmd: Command) => {
      const t = await h.client(cmd).get<TaskJson>(taskPath(id));
      h.out(cmd, t, () => formatTask(t));
    });
  task
    .command('list')
    .description('list the tasks held on this host, newest first')
    .option('--as <did>', 'only tasks this DID proposed, claimed or may claim')
    .option('--state <state>', 'only tasks in this state')
    .action(async (o: { as?: string; state?: string }, cmd: Command) => {
      const q = new URLSearchParams();
      if (o.as !== undefined) q.set('as', o.as);
      if (o.state !== undefined) q.set('state', o.state);
      const { tasks } = await h
        .client(cmd)
        .get<{ tasks: TaskJson[] }>(`/v1/tasks${q.size > 0 ? `?${q}` : ''}`);
      h.out(cmd, tasks, () =>
        tasks.length === 0
          ? 'no tasks'
          : formatTable([
              ['TASK', 'STATE', 'PROPOSER', 'CLAIMANT', 'TITLE'],
              ...tasks.map((t) => [
                t.task_id,
                t.state,
                short(t.proposer),
                short(t.claimant),
                t.title.slice(0, 60),
              ]),
            ]),
      );
    });

  // ---- discuss ----
  const discuss = program
    .command('discuss')
    .description(
      'discussions: threads with quoted replies, signed ballots under a rule, a deadline, an archived conclusion',
    )
    .addHelpText(
      'after',
      `
Rules: majority (more than half of the participants, or at the end of the ballots cast), unanimous
(every participant alike; one differing ballot ends it undecided), leader (the leader's ballot decides).
Voting ends when the ballots decide, at the deadline, or when the creator or leader closes it. With
--enclave the conclusion and every signed ballot go to discussions/<id>/conclusion.json in its vault.
@DID or @name of a local identity in a post notifies it with a mention.

Examples:
  anx-runtime discuss new --as <did> --topic "Ship on Friday?" --participant <did> --rule unanimous --deadline 2h --enclave enc1
  anx-runtime discuss post <id> --as <did> "I think yes, @bob?"
  anx-runtime discuss reply <id> <post-id> --as <did> "agreed"
  anx-runtime discuss vote <id> yes --as <did>
  anx-runtime discuss show <id>`,
    );
  discuss
    .command('new')
    .description('open a discussion as a local identity; participants get a discussion.opened notice')
    .requiredOption('--as <did>', 'the creating local identity (a participant)')
    .requiredOption('--topic <text>', 'the question (1-512 characters)')
    .option('--participant <did>', 'a participant (repeat or comma-separate)', collect)
    .option('--rule <rule>', 'majority, unanimous or leader', 'majority')
    .option('--leader <did>', 'for --rule leader: whose ballot decides (default: the creator)')
    .option('--option <option>', 'a ballot option (repeat; default yes, no)', collect)
    .option('--deadline <when>', 'end of voting: 30m, 2h, 1d, or an ISO date')
    .option('--enclave <id>', 'archive the conclusion to this Enclave (the creator needs write)')
    .option('--id <id>', 'the discussion id (default: disc-<random>)')
    .action(
      async (
        o: {
          as: string;
          topic: string;
          participant?: string[];
          rule: string;
          leader?: string;
          option?: string[];
          deadline?: string;
          enclave?: string;
          id?: string;
        },
        cmd: Command,
      ) => {
        const d = await post<DiscussionJson>(cmd, '/v1/discussions', {
          as: o.as,
          topic: o.topic,
          participants: o.participant ?? [],
          rule: o.rule,
          ...(o.leader === undefined ? {} : { leader: o.leader }),
          ...(o.option === undefined ? {} : { options: o.option }),
          ...(o.deadline === undefined ? {} : { deadline: parseDeadline(o.deadline) }),
          ...(o.enclave === undefined ? {} : { enclave_id: o.enclave }),
          ...(o.id === undefined ? {} : { id: o.id }),
        });
        h.out(cmd, d, () => formatDiscussion(d));
      },
    );
  const postCommand = (name: string, description: string, withQuote: boolean) => {
    const c = discuss.command(name).description(description).argument('<discussion>', 'the discussion id');
    if (withQuote) c.argument('<post>', 'the id of the post replied to (quoted)');
    c.argument('<text...>', 'the post (@DID or @name mentions notify them)')
      .requiredOption('--as <did>', 'the posting participant')
      .option('--mention <did>', 'also notify this DID (repeatable)', collect)
      .option('--home <did>', 'the creator, for a discussion on another host')
      .action(async (...args: unknown[]) => {
        const cmd = args[args.length - 1] as Command;
        const o = args[args.length - 2] as { as: string; mention?: string[]; home?: string };
        const id = args[0] as string;
        const quote = withQuote ? (args[1] as string) : undefined;
        const text = (args[withQuote ? 2 : 1] as string[]).join(' ');
        const d = await post<DiscussionJson>(cmd, discussionPath(id, '/posts'), {
          as: o.as,
          text,
          ...(quote === undefined ? {} : { quote }),
          ...(o.mention === undefined ? {} : { mentions: o.mention }),
          ...withHome(o),
        });
        h.out(cmd, d, () => formatDiscussion(d));
      });
  };
  postCommand('post', 'post to a discussion', false);
  postCommand('reply', 'reply to a post, quoting it', true);
  discuss
    .command('vote')
    .description('cast a signed ballot (one per participant, final)')
    .argument('<discussion>', 'the discussion id')
    .argument('<option>', 'one of the discussion’s options')
    .requiredOption('--as <did>', 'the voting participant')
    .option('--home <did>', 'the creator, for a discussion on another host')
    .action(async (id: string, option: string, o: { as: string; home?: string }, cmd: Command) => {
      const d = await post<DiscussionJson>(cmd, discussionPath(id, '/votes'), {
        as: o.as,
        option,
        ...withHome(o),
      });
      h.out(cmd, d, () => formatDiscussion(d));
    });
  discuss
    .command('close')
    .description('end voting now and conclude by the rule (the creator or the leader)')
    .argument('<discussion>', 'the discussion id')
    .requiredOption('--as <did>', 'the creator or leader')
    .option('--home <did>', 'the creator, for a discussion on another host')
    .action(async (id: string, o: { as: string; home?: string }, cmd: Command) => {
      const d = await post<DiscussionJson>(cmd, discussionPath(id, '/close'), { as: o.as, ...withHome(o) });
      h.out(cmd, d, () => formatDiscussion(d));
    });
  discuss
    .command('show')
    .description('show a discussion: posts with their quotes, ballots, conclusion, archive')
    .argument('<discussion>', 'the discussion id')
    .action(async (id: string, _o: unknown, cmd: Command) => {
      const d = await h.client(cmd).get<DiscussionJson>(discussionPath(id));
      h.out(cmd, d, () => formatDiscussion(d));
    });
  discuss
    .command('list')
    .description('list the discussions held on this host, newest first')
    .option('--as <did>', 'only discussions this DID takes part in')
    .option('--state <state>', 'open, concluded or archived')
    .action(async (o: { as?: string; state?: string }, cmd: Command) => {
      const q = new URLSearchParams();
      if (o.as !== undefined) q.set('as', o.as);
      if (o.state !== undefined) q.set('state', o.state);
      const { discussions } = await h
        .client(cmd)
        .get<{ discussions: DiscussionJson[] }>(`/v1/discussions${q.size > 0 ? `?${q}` : ''}`);
      h.out(cmd, discussions, () =>
        discussions.length === 0
          ? 'no discussions'
          : formatTable([
              ['DISCUSSION', 'STATE', 'RULE', 'BALLOTS', 'TOPIC'],
              ...discussions.map((d) => [
                d.discussion_id,
                d.state,
                d.rule,
                `${Object.keys(d.ballots).length}/${d.participants.length}`,
                d.topic.slice(0, 60),
              ]),
            ]),
      );
    });
}
