// The SDK's Discussions (`client.discussions`) and the unread view of the inbox, as the client's identity, over either mode.
import type { DiscussionView, OpenRequest, Post } from '../../actors/discussions.ts';
import { markRead, type UnreadPage, unread } from '../../actors/unread.ts';
import type { VoteRule } from '../../machines/discussion.ts';
import type { Host } from '../../runtime/host.ts';
import type { ApiClient } from '../api/client.ts';
import { SdkArgumentError } from './errors.ts';
import { requireDid, requireString } from './validate.ts';

export type Discussion = DiscussionView;
export type { Post, UnreadPage, VoteRule };

/** What a request on a discussion of another host resolves with: it was sent to the creator. */
export interface ForwardedDiscussionRequest {
  forwarded: true;
  discussion_id: string;
  home: string;
  id: string;
}

export interface OpenOptions {
  topic: string;
  /** The other participants (the client's identity takes part as the creator). */
  participants: string[];
  rule?: VoteRule;
  leader?: string;
  /** Ballot options; default yes, no. */
  options?: string[];
  /** End of voting. */
  deadline?: Date | number;
  /** The Enclave whose vault receives the conclusion (the creator needs write there). */
  enclaveId?: string;
  id?: string;
}

type Answer = Promise<Discussion | ForwardedDiscussionRequest>;

/**
 * Discussions, acting as the client's identity: posts, quoted replies and ballots are statements signed by
 * it. `@DID` or `@name` in a post notifies that identity with a `mention` notice.
 *
 * @example
 * ```ts
 * const d = await alice.discussions.open({ topic: 'Ship on Friday?', participants: [bob.did], rule: 'unanimous' });
 * const first = await alice.discussions.post(d.discussion_id, 'Ready, @bob?');
 * await bob.discussions.reply(d.discussion_id, first.posts_list?.[0]?.id ?? '', 'Yes');
 * await alice.discussions.vote(d.discussion_id, 'yes');
 * await bob.discussions.vote(d.discussion_id, 'yes'); // concluded: decided "yes"
 * ```
 */
export interface DiscussionsApi {
  open(options: OpenOptions): Promise<Discussion>;
  post(discussionId: string, text: string, options?: { mentions?: string[]; home?: string }): Answer;
  /** A post that quotes `postId`. */
  reply(
    discussionId: string,
    postId: string,
    text: string,
    options?: { mentions?: string[]; home?: string },
  ): Answer;
  /** A signed ballot for one of the options (one per participant, final). */
  vote(discussionId: string, option: string, options?: { home?: string }): Answer;
  /** Ends voting now (the creator or the leader). */
  close(discussionId: string, options?: { home?: string }): Answer;
  get(discussionId: string): Promise<Discussion>;
  list(options?: { state?: string; all?: boolean }): Promise<Discussion[]>;
}

/** How discussion and unread calls travel: the local API, or the host in this process. */
export interface DiscussionTransport {
  open(request: OpenRequest): Promise<Discussion>;
  change(id: string, as: string, op: 'posts' | 'votes' | 'close', body: Record<string, unknown>): Answer;
  get(id: string): Promise<Discussion>;
  list(filter: { did?: string; state?: string }): Promise<Discussion[]>;
  unread(did: string, options: { limit?: number; mentionsOnly?: boolean }): Promise<UnreadPage>;
  markRead(
    did: string,
    through: number | undefined,
  ): Promise<{ unread: number; mentions: number; read_through: number; marked: number }>;
}

export function discussionApiTransport(api: ApiClient): DiscussionTransport {
  const enc = encodeURIComponent;
  return {
    open: (request) => api.post('/v1/discussions', request),
    change: (id, as, op, body) => api.post(`/v1/discussions/${enc(id)}/${op}`, { as, ...body }),
    get: (id) => api.get(`/v1/discussions/${enc(id)}`),
    list: async (filter) => {
      const q = new URLSearchParams();
      if (filter.did !== undefined) q.set('as', filter.did);
      if (filter.state !== undefined) q.set('state', filter.state);
      return (await api.get<{ discussions: Discussion[] }>(`/v1/discussions${q.size > 0 ? `?${q}` : ''}`))
        .discussions;
    },
    unread: (did, options) => {
      const q = new URLSearchParams();
      if (options.limit !== undefined) q.set('limit', String(options.limit));
      if (options.mentionsOnly === true) q.set('mentions', '1');
      return api.get(`/v1/inbox/${enc(did)}/unread${q.size > 0 ? `?${q}` : ''}`);
    },
    markRead: (did, through) =>
      api.post(`/v1/inbox/${enc(did)}/read`, through === undefined ? {} : { through }),
  };
}

export function discussionHostTransport(host: Host): DiscussionTransport {
  const d = host.teamwork.discussions;
  return {
    open: (request) => d.open(request),
    change: (id, as, op, body) => {
      const home = typeof body['home'] === 'string' ? { home: body['home'] } : {};
      if (op === 'votes') return d.vote(id, as, body['option'] as string, home);
      if (op === 'close') return d.close(id, as, home);
      const options: { quote?: string; mentions?: string[]; home?: string } = { ...home };
      if (typeof body['quote'] === 'string') options.quote = body['quote'];
      if (Array.isArray(body['mentions'])) options.mentions = body['mentions'] as string[];
      return d.post(id, as, body['text'] as string, options);
    },
    get: async (id) => d.get(id),
    list: async (filter) => d.list(filter),
    unread: async (did, options) => unread(host.system, did, options),
    markRead: (did, through) => markRead(host.system, did, through),
  };
}

function homeOf(options: { home?: string } | undefined): { home?: string } {
  return options?.home === undefined ? {} : { home: requireDid('options.home', options.home) };
}

function mentionsOf(options: { mentions?: string[] } | undefined): { mentions?: string[] } {
  if (options?.mentions === undefined) return {};
  if (!Array.isArray(options.mentions))
    throw new SdkArgumentError('options.mentions', 'a list of DIDs', options.mentions);
  return { mentions: options.mentions.map((m, i) => requireDid(`options.mentions[${i}]`, m)) };
}

/** The `discussions` namespace of a client acting as `did`, with argument checks at the edge. */
export function discussionsApi(
  did: string,
  transport: () => DiscussionTransport,
  ensureOpen: (operation: string) => void,
): DiscussionsApi {
  const id = (value: unknown) => requireString('discussionId', value, 'a discussion id');
  return {
    open: async (options) => {
      ensureOpen('discussions.open()');
      if (options === null || typeof options !== 'object')
        throw new SdkArgumentError('options', '{ topic, participants, rule?, deadline?, ... }', options);
      if (!Array.isArray(options.participants))
        throw new SdkArgumentError('options.participants', 'a list of DIDs', options.participants);
      const request: OpenRequest = {
        as: did,
        topic: requireString('options.topic', options.topic, 'a topic'),
        participants: options.participants.map((p, i) => requireDid(`options.participants[${i}]`, p)),
      };
      if (options.rule !== undefined) request.rule = options.rule;
      if (options.leader !== undefined) request.leader = requireDid('options.leader', options.leader);
      if (options.options !== undefined) {
        if (!Array.isArray(options.options))
          throw new SdkArgumentError(
            'options.options',
            'a list of choices, e.g. ["yes", "no"]',
            options.options,
          );
        request.options = options.options.map((o, i) =>
          requireString(`options.options[${i}]`, o, 'a choice'),
        );
      }
      if (options.deadline !== undefined) {
        const ms = options.deadline instanceof Date ? options.deadline.getTime() : options.deadline;
        if (typeof ms !== 'number' || !Number.isFinite(ms))
          throw new SdkArgumentError('options.deadline', 'a Date or ms since the epoch', options.deadline);
        request.deadline = ms;
      }
      if (options.enclaveId !== undefined)
        request.enclave_id = requireString('options.enclaveId', options.enclaveId);
      if (options.id !== undefined) request.id = requireString('options.id', options.id);
      return transport().open(request);
    },
    post: async (discussionId, text, options) => {
      ensureOpen('discussions.post()');
      const body = {
        text: requireString('text', text, 'the text of the post'),
        ...mentionsOf(options),
        ...homeOf(options),
      };
      return transport().change(id(discussionId), did, 'posts', body);
    },
    reply: async (discussionId, postId, text, options) => {
      ensureOpen('discussions.reply()');
      const body = {
        text: requireString('text', text, 'the text of the post'),
        quote: requireString('postId', postId, 'the id of the post replied to'),
        ...mentionsOf(options),
        ...homeOf(options),
      };
      return transport().change(id(discussionId), did, 'posts', body);
    },
    vote: async (discussionId, option, options) => {
      ensureOpen('discussions.vote()');
      return transport().change(id(discussionId), did, 'votes', {
        option: requireString('option', option, 'one of the options'),
        ...homeOf(options),
      });
    },
    close: async (discussionId, options) => {
      ensureOpen('discussions.close()');
      return transport().change(id(discussionId), did, 'close', homeOf(options));
    },
    get: async (discussionId) => {
      ensureOpen('discussions.get()');
      return transport().get(id(discussionId));
    },
    list: async (options) => {
      ensureOpen('discussions.list()');
      const filter: { did?: string; state?: string } = options?.all === true ? {} : { did };
      if (options?.state !== undefined) filter.state = requireString('options.state', options.state);
      return transport().list(filter);
    },
  };
}
