// The Discussion statechart: a thread of signed posts with quoted replies, signed ballots under a rule, a deadline, a conclusion.
import { assign, emit, setup } from 'xstate';
import { describeValue } from '../runtime/errors.ts';
import type { ArtifactRef } from './playbook/definition.ts';
import {
  type CollabEnvelope,
  isDidList,
  isStringList,
  type Notice,
  type Problem,
  recipients,
  refusalPayload,
  type Statement,
  type StatementVerifier,
  verifyEvent,
} from './statement.ts';

/** Version recorded in every persisted Discussion snapshot; bump it when the context or states change shape. */
export const DISCUSSION_MACHINE_VERSION = 1;

/**
 * How ballots decide: `majority` (an option with more than half of the participants' votes, or at the end
 * more than half of the ballots cast), `unanimous` (every participant votes the same option), `leader`
 * (the leader's ballot decides; the others are advisory).
 */
export const VOTE_RULES = ['majority', 'unanimous', 'leader'] as const;
export type VoteRule = (typeof VOTE_RULES)[number];

export interface Ballot {
  option: string;
  ts: number;
  id: string;
  /** The signed ballot (base64url), verifiable by anyone. */
  statement: string;
}

export interface Conclusion {
  outcome: 'decided' | 'no_decision';
  option: string | null;
  rule: VoteRule;
  /** Why voting ended: enough ballots, the deadline, or closed by the creator or leader. */
  reason: 'votes' | 'deadline' | 'closed';
  detail: string;
  tally: Record<string, number>;
  cast: number;
  voters: number;
  /** The time of the change that concluded it (the deadline, or the concluding statement's time). */
  at: number;
}

export interface PostSummary {
  id: string;
  author: string;
  quote: string | null;
}

export interface DiscussionContext {
  discussion_id: string;
  address: string;
  /** The creator: the identity notices are sent as and the conclusion is archived as. */
  home: string;
  topic: string;
  enclave_id: string | null;
  /** Who may post and vote (the creator included). */
  participants: string[];
  rule: VoteRule;
  leader: string;
  options: string[];
  /** Absolute deadline (ms since the epoch), or null for none. */
  deadline: number | null;
  created_at: number;
  posts: PostSummary[];
  ballots: Record<string, Ballot>;
  conclusion: Conclusion | null;
  closed_by: string | null;
  archive: ArtifactRef | null;
  /** Id of the signed statement that opened the discussion, and its bytes. */
  opened: { id: string; statement: string };
}

export interface DiscussionInput {
  discussion_id: string;
  address: string;
  open: Statement;
  /** When the actor is created: the deadline's delay is measured from here. */
  created_at: number;
}

export const MAX_POSTS = 500;
/** The furthest a discussion's voting deadline may lie ahead (a year). */
export const MAX_DEADLINE_MS = 365 * 24 * 3_600_000;
export const MAX_POST_TEXT = 8000;
const MAX_MENTIONS = 32;

/** Checks a `discussion.open` body; returns a problem or null. */
export function openingProblem(body: Record<string, unknown>, signer: string, now: number): string | null {
  const topic = body['topic'];
  if (typeof topic !== 'string' || topic.trim().length === 0 || topic.length > 512)
    return '"topic" expected text of 1 to 512 characters';
  if (!isDidList(body['participants'], 256)) return '"participants" expected a list of at most 256 DIDs';
  const rule = body['rule'] ?? 'majority';
  if (!(VOTE_RULES as readonly unknown[]).includes(rule))
    return `"rule" expected one of ${VOTE_RULES.join(', ')}, got ${describeValue(rule)}`;
  const options = body['options'];
  if (
    options !== undefined &&
    (!isStringList(options, 16) ||
      options.length < 2 ||
      new Set(options).size !== options.length ||
      options.some((o) => o.length === 0 || o.length > 64))
  )
    return '"options" expected 2 to 16 distinct options of 1 to 64 characters';
  const leader = body['leader'];
  const everyone = new Set([signer, ...(body['participants'] as string[])]);
  if (leader !== undefined && (typeof leader !== 'string' || !everyone.has(leader)))
    return '"leader" expected one of the participants';
  const deadline = body['deadline'];
  if (
    deadline !== undefined &&
    deadline !== null &&
    (typeof deadline !== 'number' || !Number.isFinite(deadline) || deadline <= now)
  )
    return '"deadline" expected a time in the future (ms since the epoch)';
  const e = body['enclave_id'];
  if (e !== undefined && (typeof e !== 'string' || e.length === 0 || e.length > 128))
    return '"enclave_id" expected an Enclave id';
  return null;
}

/**
 * The conclusion the ballots reach now, or null while the vote is still open. `final` is the end of
 * voting (deadline or close): whatever the ballots say then is the conclusion.
 */
export function evaluate(
  context: DiscussionContext,
  ballots: Record<string, Ballot>,
  final: { reason: 'votes' | 'deadline' | 'closed'; at: number },
  ending: boolean,
): Conclusion | null {
  const tally: Record<string, number> = Object.fromEntries(context.options.map((o) => [o, 0]));
  for (const b of Object.values(ballots)) tally[b.option] = (tally[b.option] ?? 0) + 1;
  const voters = context.participants.length;
  const cast = Object.keys(ballots).length;
  const base = { rule: context.rule, reason: final.reason, tally, cast, voters, at: final.at };
  const decided = (option: string, detail: string): Conclusion => ({
    outcome: 'decided',
    option,
    detail,
    ...base,
  });
  const none = (detail: string): Conclusion => ({ outcome: 'no_decision', option: null, detail, ...base });
  const everyoneVoted = cast === voters;
  if (context.rule === 'majority') {
    for (const [option, n] of Object.entries(tally))
      if (n * 2 > voters) return decided(option, `${n} of ${voters} participants chose ${option}`);
    if (!ending && !everyoneVoted) return null;
    for (const [option, n] of Object.entries(tally))
      if (n * 2 > cast) return decided(option, `${n} of ${cast} ballots chose ${option}`);
    return none(cast === 0 ? 'nobody voted' : `no option has more than half of ${cast} ballots`);
  }
  if (context.rule === 'unanimous') {
    const chosen = new Set(Object.values(ballots).map((b) => b.option));
    if (chosen.size > 1) return none(`the ballots differ: ${[...chosen].join(', ')}`);
    const [only] = [...chosen];
    if (everyoneVoted && only !== undefined) return decided(only, `all ${voters} participants chose ${only}`);
    if (!ending) return null;
    return none(`${voters - cast} of ${voters} participants did not vote`);
  }
  const leaderBallot = ballots[context.leader];
  if (leaderBallot !== undefined)
    return decided(leaderBallot.option, `the leader ${context.leader} chose ${leaderBallot.option}`);
  if (!ending) return null;
  return none(`the leader ${context.leader} did not vote`);
}

type Judged = { ok: true; statement: Statement } | { ok: false; problem: Problem };

/** Whether a post, ballot or close may apply to the discussion while it is open. Pure. */
export function judgeDiscussion(
  context: DiscussionContext,
  open: boolean,
  event: CollabEnvelope,
  verify: StatementVerifier,
): Judged {
  const checked = verifyEvent(verify, event, context.address);
  if (!checked.ok) return checked;
  const s = checked.statement;
  const fail = (code: string, reason: string): Judged => ({ ok: false, problem: { code, reason } });
  if (s.body['discussion_id'] !== context.discussion_id)
    return fail(
      'SIGNATURE_INVALID',
      `the statement names discussion ${JSON.stringify(s.body['discussion_id'])}`,
    );
  if (
    s.id === context.opened.id ||
    context.posts.some((p) => p.id === s.id) ||
    Object.values(context.ballots).some((b) => b.id === s.id)
  )
    return fail('REPLAYED', `statement ${s.id} was applied already`);
  if (!open)
    return fail('CONFLICT', 'the discussion is concluded: it takes no more posts, ballots or closes');
  if (event.type === 'discussion.close') {
    if (s.signer !== context.home && s.signer !== context.leader)
      return fail('FORBIDDEN', `only the creator or the leader may close, not ${s.signer}`);
    return { ok: true, statement: s };
  }
  if (!context.participants.includes(s.signer)) return fail('FORBIDDEN', `${s.signer} is not a participant`);
  if (event.type === 'discussion.post') {
    const text = s.body['text'];
    if (typeof text !== 'string' || text.trim().length === 0 || text.length > MAX_POST_TEXT)
      return fail('INVALID', `"text" expected 1 to ${MAX_POST_TEXT} characters`);
    const quote = s.body['quote'];
    if (quote !== undefined && quote !== null && !context.posts.some((p) => p.id === quote))
      return fail(
        'INVALID',
        `"quote" expected the id of a post in this discussion, got ${describeValue(quote)}`,
      );
    if (s.body['mentions'] !== undefined && !isDidList(s.body['mentions'], MAX_MENTIONS))
      return fail('INVALID', `"mentions" expected at most ${MAX_MENTIONS} DIDs`);
    if (context.posts.length >= MAX_POSTS)
      return fail('CONFLICT', `the discussion holds ${MAX_POSTS} posts, its limit`);
    return { ok: true, statement: s };
  }
  if (event.type === 'discussion.vote') {
    const option = s.body['option'];
    if (typeof option !== 'string' || !context.options.includes(option))
      return fail(
        'INVALID',
        `"option" expected one of ${context.options.join(', ')}, got ${describeValue(option)}`,
      );
    if (context.ballots[s.signer] !== undefined) return fail('CONFLICT', `${s.signer} has voted already`);
    return { ok: true, statement: s };
  }
  return fail(
    'INVALID',
    `a discussion takes discussion.post, discussion.vote and discussion.close, not ${event.type}`,
  );
}

function ballotOf(s: Statement): Ballot {
  return { option: s.body['option'] as string, ts: s.ts, id: s.id, statement: s.raw };
}

/** The discussion as views and notices show it (posts' text lives in the actor's `posts` records). */
export function discussionView(context: DiscussionContext, state: string) {
  return {
    discussion_id: context.discussion_id,
    state,
    topic: context.topic,
    creator: context.home,
    enclave_id: context.enclave_id,
    participants: context.participants,
    rule: context.rule,
    leader: context.leader,
    options: context.options,
    deadline: context.deadline,
    created_at: context.created_at,
    posts: context.posts.length,
    ballots: Object.fromEntries(Object.entries(context.ballots).map(([voter, b]) => [voter, b.option])),
    conclusion: context.conclusion,
    archive: context.archive,
  };
}

/**
 * Builds the Discussion machine around a statement verifier. Posts, ballots and closes are statements
 * signed by participants; refused ones leave an `error` event and change nothing. Voting ends when the
 * ballots decide under the rule, at the deadline (a durable timer of the kernel), or when the creator or
 * leader closes it; the conclusion is announced once, and the actor layer archives it to the Enclave's
 * vault, after which the discussion records the artifact ref (`archived`).
 */
export function createDiscussionMachine(verify: StatementVerifier) {
  const judge = (context: DiscussionContext, open: boolean, event: CollabEnvelope) =>
    judgeDiscussion(context, open, event, verify);
  const refuse = (open: boolean) => ({ actions: { type: 'refuse' as const, params: { open } } });

  return setup({
    types: {
      context: {} as DiscussionContext,
      input: {} as DiscussionInput,
      events: {} as CollabEnvelope,
      emitted: {} as
        | { type: 'anx.event'; kind: 'status' | 'error' | 'message'; payload: unknown }
        | { type: 'anx.append'; collection: string; value: unknown },
    },
    delays: {
      deadline: ({ context }) => Math.max(0, (context.deadline ?? context.created_at) - context.created_at),
    },
    guards: {
      hasDeadline: ({ context }) => context.deadline !== null,
      accepted: ({ context, event }) => judge(context, true, event).ok,
      /** A ballot that is accepted and, with the ones before it, decides under the rule. */
      decisive: ({ context, event }) => {
        const verdict = judge(context, true, event);
        if (!verdict.ok) return false;
        const ballots = { ...context.ballots, [verdict.statement.signer]: ballotOf(verdict.statement) };
        return evaluate(context, ballots, { reason: 'votes', at: verdict.statement.ts }, false) !== null;
      },
      fromHome: ({ context, event }) => event.from === context.home,
      isInternalEvent: ({ event }) => event.type.startsWith('xstate.'),
    },
    actions: {
      recordPost: assign(({ context, event }) => {
        const verdict = judge(context, true, event);
        if (!verdict.ok) return {};
        const s = verdict.statement;
        const quote = typeof s.body['quote'] === 'string' ? s.body['quote'] : null;
        return { posts: [...context.posts, { id: s.id, author: s.signer, quote }] };
      }),
      appendPost: emit(({ context, event }) => {
        const verdict = verifyEvent(verify, event, context.address);
        const s = verdict.ok ? verdict.statement : undefined;
        const post = context.posts[context.posts.length - 1] as PostSummary;
        return {
          type: 'anx.append' as const,
          collection: 'posts',
          value: {
            ...post,
            ts: s?.ts ?? event.ts ?? 0,
            text: String(s?.body['text'] ?? ''),
            mentions: isStringList(s?.body['mentions'], MAX_MENTIONS) ? s?.body['mentions'] : [],
            statement: s?.raw ?? null,
          },
        };
      }),
      recordBallot: assign(({ context, event }) => {
        const verdict = judge(context, true, event);
        if (!verdict.ok) return {};
        return { ballots: { ...context.ballots, [verdict.statement.signer]: ballotOf(verdict.statement) } };
      }),
      recordClose: assign(({ context, event }) => {
        const verdict = judge(context, true, event);
        return verdict.ok ? { closed_by: verdict.statement.signer } : {};
      }),
      conclude: assign(({ context, event }, params: { reason: 'votes' | 'deadline' | 'closed' }) => {
        const verdict =
          params.reason === 'deadline' ? undefined : verifyEvent(verify, event, context.address);
        const at =
          params.reason === 'deadline'
            ? (context.deadline ?? 0)
            : verdict?.ok === true
              ? verdict.statement.ts
              : (event.ts ?? 0);
        return { conclusion: evaluate(context, context.ballots, { reason: params.reason, at }, true) };
      }),
      recordArchive: assign(({ event }) => {
        const ref = (event.body as { ref?: DiscussionContext['archive'] } | undefined)?.ref ?? null;
        return { archive: ref };
      }),
      announce: emit(({ context, event }, params: { status: string }) => {
        const last =
          params.status === 'discussion.posted' ? context.posts[context.posts.length - 1] : undefined;
        const verdict = verifyEvent(verify, event, context.address);
        const s = verdict.ok ? verdict.statement : undefined;
        let notify: Notice | Notice[] | undefined;
        if (last !== undefined && s !== undefined) {
          const mentioned = isStringList(s.body['mentions'], MAX_MENTIONS) ? s.body['mentions'] : [];
          const post = {
            id: last.id,
            author: last.author,
            quote: last.quote,
            text: String(s.body['text'] ?? ''),
            ts: s.ts,
          };
          const body = {
            discussion_id: context.discussion_id,
            home: context.home,
            topic: context.topic,
            post,
            discussion: discussionView(context, 'open'),
          };
          notify = [
            {
              from: context.home,
              to: recipients(last.author, context.participants).filter((d) => !mentioned.includes(d)),
              type: 'discussion.posted',
              body,
            },
            { from: context.home, to: recipients(last.author, mentioned), type: 'mention', body },
          ];
        }
        return {
          type: 'anx.event' as const,
          kind: 'status' as const,
          payload: {
            status: params.status,
            discussion_id: context.discussion_id,
            id: event.id ?? null,
            by: s?.signer ?? null,
            statement_id: s?.id ?? null,
            ...(last === undefined ? {} : { post_id: last.id }),
            ...(params.status === 'discussion.voted' && s !== undefined ? { option: s.body['option'] } : {}),
            ...(notify === undefined ? {} : { notify }),
          },
        };
      }),
      announceConclusion: emit(({ context }) => ({
        type: 'anx.event' as const,
        kind: 'status' as const,
        payload: {
          status: 'discussion.concluded',
          discussion_id: context.discussion_id,
          conclusion: context.conclusion,
          notify: {
            from: context.home,
            to: recipients(undefined, context.participants),
            type: 'discussion.concluded',
            body: {
              discussion_id: context.discussion_id,
              home: context.home,
              topic: context.topic,
              conclusion: context.conclusion,
              discussion: discussionView(context, 'concluded'),
            },
          } satisfies Notice,
        },
      })),
      announceArchive: emit(({ context }) => ({
        type: 'anx.event' as const,
        kind: 'status' as const,
        payload: {
          status: 'discussion.archived',
          discussion_id: context.discussion_id,
          ref: context.archive,
        },
      })),
      refuse: emit(({ context, event }, params: { open: boolean }) => {
        const verdict = judge(context, params.open, event);
        const problem = verdict.ok
          ? { code: 'CONFLICT', reason: `${event.type} does not apply now` }
          : verdict.problem;
        return {
          type: 'anx.event' as const,
          kind: 'error' as const,
          payload: refusalPayload(
            'discussion',
            context.home,
            { discussion_id: context.discussion_id },
            event,
            problem,
          ),
        };
      }),
    },
  }).createMachine({
    id: 'discussion',
    context: ({ input }) => {
      const b = input.open.body;
      const signer = input.open.signer;
      const participants = [...new Set([signer, ...(b['participants'] as string[])])];
      return {
        discussion_id: input.discussion_id,
        address: input.address,
        home: signer,
        topic: String(b['topic']),
        enclave_id: typeof b['enclave_id'] === 'string' ? b['enclave_id'] : null,
        participants,
        rule: (b['rule'] as VoteRule | undefined) ?? 'majority',
        leader: typeof b['leader'] === 'string' ? b['leader'] : signer,
        options: isStringList(b['options'], 16) ? b['options'] : ['yes', 'no'],
        deadline: typeof b['deadline'] === 'number' ? b['deadline'] : null,
        created_at: input.created_at,
        posts: [],
        ballots: {},
        conclusion: null,
        closed_by: null,
        archive: null,
        opened: { id: input.open.id, statement: input.open.raw },
      };
    },
    entry: emit(({ context }) => ({
      type: 'anx.event' as const,
      kind: 'status' as const,
      payload: {
        status: 'discussion.opened',
        discussion_id: context.discussion_id,
        by: context.home,
        deadline: context.deadline,
        notify: {
          from: context.home,
          to: recipients(context.home, context.participants),
          type: 'discussion.opened',
          body: {
            discussion_id: context.discussion_id,
            home: context.home,
            discussion: discussionView(context, 'open'),
          },
        } satisfies Notice,
      },
    })),
    initial: 'open',
    states: {
      open: {
        initial: 'choosing',
        states: {
          choosing: { always: [{ guard: 'hasDeadline', target: 'timed' }, { target: 'untimed' }] },
          // Entered once and never re-entered while open, so the deadline timer is armed once.
          timed: {
            after: {
              deadline: {
                target: '#discussion.concluded',
                actions: { type: 'conclude', params: { reason: 'deadline' } },
              },
            },
          },
          untimed: {},
        },
        on: {
          'discussion.post': [
            {
              guard: 'accepted',
              actions: [
                'recordPost',
                'appendPost',
                { type: 'announce', params: { status: 'discussion.posted' } },
              ],
            },
            refuse(true),
          ],
          'discussion.vote': [
            {
              guard: 'decisive',
              target: 'concluded',
              actions: [
                'recordBallot',
                { type: 'announce', params: { status: 'discussion.voted' } },
                { type: 'conclude', params: { reason: 'votes' } },
              ],
            },
            {
              guard: 'accepted',
              actions: ['recordBallot', { type: 'announce', params: { status: 'discussion.voted' } }],
            },
            refuse(true),
          ],
          'discussion.close': [
            {
              guard: 'accepted',
              target: 'concluded',
              actions: [
                'recordClose',
                { type: 'announce', params: { status: 'discussion.closed' } },
                { type: 'conclude', params: { reason: 'closed' } },
              ],
            },
            refuse(true),
          ],
          '*': [{ guard: 'isInternalEvent' }, refuse(true)],
        },
      },
      concluded: {
        entry: 'announceConclusion',
        on: {
          'discussion.archived': [
            { guard: 'fromHome', target: 'archived', actions: ['recordArchive', 'announceArchive'] },
            refuse(false),
          ],
          '*': [{ guard: 'isInternalEvent' }, refuse(false)],
        },
      },
      archived: {
        on: { '*': [{ guard: 'isInternalEvent' }, refuse(false)] },
      },
    },
  });
}
