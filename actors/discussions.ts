// Discussions on one host: Discussion actors at `discussion/<id>`, signed posts and ballots, mentions, and conclusions archived to an Enclave's vault.
import { createHash, randomBytes } from 'node:crypto';
import { mentions as textMentions } from '../machines/did.ts';
import {
  createDiscussionMachine,
  DISCUSSION_MACHINE_VERSION,
  type DiscussionContext,
  type DiscussionInput,
  discussionView,
  openingProblem,
  type VoteRule,
} from '../machines/discussion.ts';
import type { CryptoSuite } from '../runtime/crypto/suite.ts';
import { AnxError, describeValue, IdTakenError } from '../runtime/errors.ts';
import type { EventV1 } from '../runtime/events/event.ts';
import { isDid } from '../runtime/identity/did.ts';
import type { Keystore } from '../runtime/identity/keystore.ts';
import type { ActorSystem, MachineDefinition } from '../runtime/kernel/actor-system.ts';
import type { ArtifactRef } from '../runtime/vault/types.ts';
import {
  COLLAB_ID,
  CollabRefusedError,
  type CollabRelay,
  deliverStatement,
  derivedId,
  notLocal,
  signStatement,
  statementSigner,
  statementVerifier,
} from './collab.ts';
import type { Enclaves } from './enclaves.ts';
import type { VaultService } from './vault-service.ts';

export const DISCUSSION_KIND = 'discussion';

const DID_MENTION = /@(did:agentnexus:z[1-9A-HJ-NP-Za-km-z]{10,})/g;

/** The actor address of a discussion. */
export function discussionAddress(id: string): string {
  return `discussion/${id}`;
}

/** The vault key a discussion's conclusion is archived under. */
export function conclusionKey(id: string): string {
  return `discussions/${id}/conclusion.json`;
}

/** The Discussion machine bound to the kernel, verifying statements with `suite`. */
export function discussionActor(suite: CryptoSuite): MachineDefinition {
  return {
    kind: DISCUSSION_KIND,
    version: DISCUSSION_MACHINE_VERSION,
    machine: createDiscussionMachine(statementVerifier(suite)),
    input: (_address, init) => init as DiscussionInput,
  };
}

/** A discussion request that names something malformed. */
export class DiscussionInputError extends AnxError {
  constructor(message: string, hint?: string) {
    super('ANX_DISCUSSION_INVALID', message, hint === undefined ? undefined : { hint });
  }
}

export class DiscussionNotFoundError extends AnxError {
  constructor(id: string) {
    super(
      'ANX_DISCUSSION_NOT_FOUND',
      `no discussion ${describeValue(id)} on this host, and no notice of it`,
      {
        hint: 'list discussions with `anx-runtime discuss list`; for one on another host pass --home DID (its creator)',
      },
    );
  }
}

export interface OpenRequest {
  as: string;
  topic: string;
  participants: string[];
  rule?: VoteRule;
  leader?: string;
  options?: string[];
  /** Absolute deadline, ms since the epoch. */
  deadline?: number;
  /** The Enclave whose vault receives the conclusion. */
  enclave_id?: string;
  id?: string;
}

/** One post as `show` lists it. */
export interface Post {
  id: string;
  author: string;
  ts: number;
  text: string;
  quote: { id: string; author: string; text: string } | null;
  mentions: string[];
  statement: string | null;
}

export type DiscussionView = ReturnType<typeof discussionView> & {
  posts_list?: Post[];
  signed_ballots?: DiscussionContext['ballots'];
  replica?: boolean;
};

/**
 * Opens discussions as local identities and posts, votes and closes with statements signed by the acting
 * identity. A discussion lives on its creator's host; requests for one held elsewhere are sent to the
 * creator's DID. When a discussion with an Enclave concludes, its conclusion (with every signed ballot) is
 * written to `discussions/<id>/conclusion.json` in that Enclave's vault, as the creator.
 *
 * @example
 * ```ts
 * const d = await discussions.open({ as: alice, topic: 'Ship on Friday?', participants: [bob], rule: 'unanimous' });
 * await discussions.post(d.discussion_id, bob, 'Fine by me, @alice');
 * await discussions.vote(d.discussion_id, alice, 'yes');
 * await discussions.vote(d.discussion_id, bob, 'yes'); // concluded: decided "yes"
 * ```
 */
export class Discussions {
  private readonly unsubscribe: () => void;
  private readonly archiving = new Set<string>();
  private closed = false;

  constructor(
    private readonly system: ActorSystem,
    private readonly keystore: Keystore,
    private readonly enclaves: Enclaves,
    private readonly vault: VaultService,
    private readonly relay: CollabRelay,
    private readonly suite: CryptoSuite,
  ) {
    this.unsubscribe = system.events.subscribe((events) => this.onEvents(events));
    // Conclusions committed before a crash but not archived yet are archived once the host runs.
    setImmediate(() => {
      if (this.closed) return;
      for (const address of system.addresses(DISCUSSION_KIND)) {
        const info = system.info(address);
        if (info?.value === 'concluded') void this.archive(address.slice('discussion/'.length));
      }
    });
  }

  async open(request: OpenRequest): Promise<DiscussionView> {
    if (request === null || typeof request !== 'object')
      throw new DiscussionInputError('a discussion expected { as, topic, participants, ... }');
    this.requireLocal(request.as);
    const id = request.id ?? `disc-${randomBytes(6).toString('hex')}`;
    if (typeof id !== 'string' || !COLLAB_ID.test(id))
      throw new DiscussionInputError(
        `"id" expected [A-Za-z0-9] then up to 63 of [A-Za-z0-9_.-], got ${describeValue(id)}`,
      );
    const address = discussionAddress(id);
    if (this.system.has(address)) {
      // A retried opening (same id, creator and topic) answers with the discussion; anything else is a clash.
      const known = this.localAddress(id) === undefined ? undefined : this.get(id);
      if (known !== undefined && known.creator === request.as && known.topic === request.topic) return known;
      throw new IdTakenError(
        `"id" expected a new discussion id, but discussion ${id} exists with other content`,
      );
    }
    const body: Record<string, unknown> = {
      discussion_id: id,
      topic: request.topic,
      participants: request.participants,
    };
    for (const field of ['rule', 'leader', 'options', 'deadline', 'enclave_id'] as const)
      if (request[field] !== undefined) body[field] = request[field];
    const now = this.system.clock.now();
    const problem = openingProblem(body, request.as, now);
    if (problem !== null) throw new DiscussionInputError(problem);
    // The creator archives the conclusion: it must be able to write there.
    if (request.enclave_id !== undefined) this.enclaves.check(request.enclave_id, request.as, 'write');
    const raw = signStatement(this.keystore, this.system.clock, request.as, 'discussion.open', address, body);
    const checked = statementVerifier(this.suite)(raw, { subject: address, type: 'discussion.open' });
    if (!checked.ok) throw new CollabRefusedError('ANX_DISCUSSION_SIGNATURE_INVALID', checked.problem.reason);
    await this.system.spawn(DISCUSSION_KIND, address, {
      discussion_id: id,
      address,
      open: checked.statement,
      created_at: now,
    } satisfies DiscussionInput);
    return this.get(id);
  }

  /**
   * Posts `text` as `as`, quoting an earlier post when `quote` names one. `@DID` and `@name` of a local
   * identity in the text, and the DIDs in `mentions`, are notified with a `mention` notice.
   */
  post(
    id: string,
    as: string,
    text: string,
    options: { quote?: string; mentions?: string[]; home?: string } = {},
  ) {
    if (typeof text !== 'string') throw new DiscussionInputError(`"text" expected text, got ${typeof text}`);
    if (
      options.mentions !== undefined &&
      (!Array.isArray(options.mentions) || !options.mentions.every((m) => isDid(m)))
    )
      throw new DiscussionInputError(
        `"mentions" expected a list of DIDs, got ${describeValue(options.mentions)}`,
      );
    const mentioned = [...new Set([...(options.mentions ?? []), ...this.mentionsIn(text)])];
    const body: Record<string, unknown> = { text };
    if (options.quote !== undefined) body['quote'] = options.quote;
    if (mentioned.length > 0) body['mentions'] = mentioned;
    return this.act(id, as, 'discussion.post', body, options);
  }

  /** A signed ballot for one of the discussion's options. */
  vote(id: string, as: string, option: string, options: { home?: string } = {}) {
    if (typeof option !== 'string' || option.length === 0)
      throw new DiscussionInputError(
        `"option" expected one of the discussion's options, got ${describeValue(option)}`,
      );
    return this.act(id, as, 'discussion.vote', { option }, options);
  }

  /** Ends voting now (the creator or the leader): the rule is applied to the ballots cast. */
  close(id: string, as: string, options: { home?: string } = {}) {
    return this.act(id, as, 'discussion.close', {}, options);
  }

  /** Hands a statement signed elsewhere to the discussion; it checks it like any other. */
  submit(id: string, type: string, statement: string, options: { home?: string } = {}) {
    return this.route(
      id,
      statementSigner(statement, 'ANX_DISCUSSION_SIGNATURE_INVALID'),
      type,
      statement,
      options,
    );
  }

  /** The discussion with its posts (quoted text resolved) and signed ballots; elsewhere, its last notice. */
  get(id: string): DiscussionView {
    const address = this.localAddress(id);
    if (address === undefined) {
      const seen = this.relay.viewOf(id) as DiscussionView | undefined;
      if (seen === undefined) throw new DiscussionNotFoundError(String(id));
      return { ...seen, replica: true };
    }
    const snap = this.system.snapshot(address);
    const context = snap.context as DiscussionContext;
    const records = this.system
      .records('posts', address)
      .map(({ value }) => value as Omit<Post, 'quote'> & { quote: string | null });
    const byId = new Map(records.map((p) => [p.id, p]));
    const posts: Post[] = records.map((p) => {
      const quoted = p.quote === null ? undefined : byId.get(p.quote);
      return {
        ...p,
        quote:
          quoted === undefined
            ? null
            : { id: quoted.id, author: quoted.author, text: quoted.text.slice(0, 280) },
      };
    });
    return {
      ...discussionView(context, stateName(snap.value)),
      posts_list: posts,
      signed_ballots: context.ballots,
    };
  }

  list(filter: { did?: string; state?: string } = {}): DiscussionView[] {
    if (filter.state !== undefined && !(DISCUSSION_STATES as readonly string[]).includes(filter.state))
      throw new DiscussionInputError(
        `"state" expected one of ${DISCUSSION_STATES.join(', ')}, got ${describeValue(filter.state)}`,
      );
    const out: DiscussionView[] = [];
    for (const address of this.system.addresses(DISCUSSION_KIND)) {
      const snap = this.system.snapshot(address);
      const c = snap.context as DiscussionContext;
      const state = stateName(snap.value);
      if (filter.state !== undefined && state !== filter.state) continue;
      if (filter.did !== undefined && !c.participants.includes(filter.did)) continue;
      out.push(discussionView(c, state));
    }
    return out.sort((a, b) => b.created_at - a.created_at);
  }

  /** Stops archiving (the host is closing). */
  dispose(): void {
    this.closed = true;
    this.unsubscribe();
  }

  /** DIDs mentioned in `text`: `@did:agentnexus:…`, or `@name` of a local identity. */
  mentionsIn(text: string): string[] {
    const found = new Set<string>();
    for (const m of text.matchAll(DID_MENTION)) found.add(m[1] as string);
    for (const record of this.keystore.list()) {
      if (record.name !== undefined && record.name !== null && textMentions(text, record.did, record.name))
        found.add(record.did);
    }
    return [...found];
  }

  private async act(
    id: string,
    as: string,
    type: string,
    body: Record<string, unknown>,
    options: { home?: string },
  ) {
    this.requireLocal(as);
    if (typeof id !== 'string' || !COLLAB_ID.test(id))
      throw new DiscussionInputError(`"discussion_id" expected a discussion id, got ${describeValue(id)}`);
    const raw = signStatement(this.keystore, this.system.clock, as, type, discussionAddress(id), {
      discussion_id: id,
      ...body,
    });
    return this.route(id, as, type, raw, options);
  }

  private async route(id: string, from: string, type: string, statement: string, options: { home?: string }) {
    const forwarded = await deliverStatement(
      this.system,
      this.relay,
      {
        address: this.localAddress(id),
        id,
        idField: 'discussion_id',
        hint: 'see the discussion with `anx-runtime discuss show ID`',
        ...options,
      },
      { from, type, statement },
      () => new DiscussionNotFoundError(id),
    );
    return forwarded === undefined ? this.get(id) : { ...forwarded, discussion_id: id };
  }

  private onEvents(events: readonly EventV1[]): void {
    for (const e of events) {
      if (e.kind !== 'status' || e.actor === undefined || !e.actor.startsWith('discussion/')) continue;
      if ((e.payload as { status?: unknown } | null)?.status === 'discussion.concluded')
        void this.archive(e.actor.slice('discussion/'.length));
    }
  }

  /**
   * Writes the conclusion to the Enclave's vault as the creator and records the ref on the discussion.
   * Idempotent: a version with the same content is reused, and the record is sent under a derived id.
   */
  private async archive(id: string): Promise<void> {
    if (this.archiving.has(id) || this.closed) return;
    this.archiving.add(id);
    const address = discussionAddress(id);
    try {
      const snap = this.system.snapshot(address);
      const c = snap.context as DiscussionContext;
      if (snap.value !== 'concluded' || c.enclave_id === null || c.conclusion === null) return;
      const content = `${JSON.stringify(archiveDocument(c), null, 2)}\n`;
      const hash = createHash('sha256').update(content).digest('hex');
      const key = conclusionKey(id);
      let ref: ArtifactRef | undefined;
      const history = await this.vault.history(c.enclave_id, key, c.home).catch(() => []);
      const same = history.find((v) => v.hash === hash);
      if (same !== undefined) {
        ref = {
          enclave_id: same.enclave_id,
          key: same.key,
          version: same.version,
          hash: same.hash,
          size: same.size,
          summary: same.summary,
        };
      } else {
        const summary =
          c.conclusion.outcome === 'decided' ? `decided: ${c.conclusion.option}` : 'no decision';
        ref = await this.vault.put(
          c.enclave_id,
          key,
          { kind: 'discussion-conclusion', content, summary: `${c.topic.slice(0, 120)} — ${summary}` },
          c.home,
        );
      }
      await this.system.accept([
        this.system.envelope({
          id: derivedId('archive', id),
          type: 'discussion.archived',
          from: c.home,
          to: address,
          body: { ref },
        }),
      ]);
    } catch (err) {
      if (this.closed) return;
      await this.system
        .emitEvent({
          kind: 'error',
          actor: address,
          payload: {
            code: 'ANX_DISCUSSION_ARCHIVE_FAILED',
            discussion_id: id,
            reason: (err as Error)?.message ?? String(err),
          },
        })
        .catch(() => {});
    } finally {
      this.archiving.delete(id);
    }
  }

  private localAddress(id: string): string | undefined {
    if (typeof id !== 'string' || !COLLAB_ID.test(id)) return undefined;
    const address = discussionAddress(id);
    return this.system.info(address)?.kind === DISCUSSION_KIND ? address : undefined;
  }

  private requireLocal(did: unknown): asserts did is string {
    if (typeof did !== 'string' || !this.keystore.has(did)) throw new DiscussionInputError(...notLocal(did));
  }
}

/** `open` with its sub-state, or the top state. */
/** The states a discussion is listed in (the top-level states of its statechart). */
export const DISCUSSION_STATES = ['open', 'concluded', 'archived'] as const;

function stateName(value: unknown): string {
  return typeof value === 'string' ? value : (Object.keys(value as object)[0] ?? 'open');
}

/** What the vault keeps: the question, the rule, the conclusion and every signed ballot (sorted: same bytes every time). */
export function archiveDocument(c: DiscussionContext) {
  return {
    discussion_id: c.discussion_id,
    topic: c.topic,
    creator: c.home,
    participants: c.participants,
    rule: c.rule,
    leader: c.leader,
    options: c.options,
    deadline: c.deadline,
    opened: c.opened,
    closed_by: c.closed_by,
    posts: c.posts.length,
    conclusion: c.conclusion,
    ballots: Object.keys(c.ballots)
      .sort()
      .map((voter) => ({ voter, ...(c.ballots[voter] as DiscussionContext['ballots'][string]) })),
  };
}
