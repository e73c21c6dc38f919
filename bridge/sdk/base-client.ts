// What both SDK modes share: argument checks, the bounded message iterator and closing; subclasses only move data.
import type { ArtifactRef } from '../../machines/playbook/definition.ts';
import type { CardQuery } from '../relay/cards.ts';
import type {
  AnxClient,
  Artifact,
  InboxOptions,
  InboxPage,
  Message,
  MessagesOptions,
  RunStatus,
  SendOptions,
  SendResult,
  StageHandler,
  VaultPut,
} from './client.ts';
import {
  type AgentCard,
  type CardFields,
  checkCardFields,
  checkDiscoverQuery,
  type DiscoveredAgent,
  type DiscoverQuery,
} from './discover.ts';
import {
  type DiscussionsApi,
  type DiscussionTransport,
  discussionsApi,
  type UnreadPage,
} from './discussions.ts';
import { SdkArgumentError, SdkClosedError } from './errors.ts';
import {
  type OrchestrationTransport,
  type OwnerApi,
  orchestration,
  type SecretaryApi,
} from './orchestration.ts';
import { type TasksApi, type TaskTransport, tasksApi } from './tasks.ts';
import { type TokensApi, type TokenTransport, tokensApi } from './tokens.ts';
import {
  checkBody,
  checkHandler,
  checkInboxOptions,
  checkSendOptions,
  checkSeq,
  checkVaultPut,
  checkVersion,
  requireAddress,
  requireString,
} from './validate.ts';

/** Messages read per inbox request: the iterator never holds more than one page. */
const PAGE = 100;

export abstract class BaseClient implements AnxClient {
  abstract readonly mode: 'daemon' | 'embedded';
  private closed = false;
  private readonly wakers = new Set<() => void>();
  private readonly unregister = new Set<() => void>();

  readonly runs = {
    getStatus: async (runId: string): Promise<RunStatus> => {
      this.ensureOpen('runs.getStatus()');
      return this.runStatus(requireString('runId', runId, 'a run id'));
    },
  };

  readonly vault = {
    get: async (enclaveId: string, key: string, options?: { version?: number }): Promise<Artifact> => {
      this.ensureOpen('vault.get()');
      requireString('enclaveId', enclaveId, 'an Enclave id');
      requireString('key', key, 'a vault key');
      return this.vaultGet(enclaveId, key, checkVersion(options));
    },
    put: async (enclaveId: string, key: string, artifact: VaultPut): Promise<ArtifactRef> => {
      this.ensureOpen('vault.put()');
      requireString('enclaveId', enclaveId, 'an Enclave id');
      requireString('key', key, 'a vault key');
      checkVaultPut(artifact);
      return this.vaultPut(enclaveId, key, artifact);
    },
  };

  readonly owner: OwnerApi;
  readonly secretary: SecretaryApi;
  readonly tasks: TasksApi;
  readonly discussions: DiscussionsApi;
  readonly tokens: TokensApi;

  readonly worker = {
    onStage: (role: string, handler: StageHandler): (() => void) => {
      this.ensureOpen('worker.onStage()');
      requireString('role', role, 'a role name');
      checkHandler(handler);
      // The newest handler of a role answers its tasks; unregistering it hands them back to the one
      // before, and the role stops being served with its last handler (the same in both modes).
      let entry = this.stageRoles.get(role);
      if (entry === undefined) {
        const handlers: StageHandler[] = [];
        entry = { handlers, off: this.registerStage(role, (ctx) => (handlers.at(-1) as StageHandler)(ctx)) };
        this.stageRoles.set(role, entry);
      }
      const served = entry;
      served.handlers.push(handler);
      const unregister = () => {
        if (!this.unregister.delete(unregister)) return;
        served.handlers.splice(served.handlers.lastIndexOf(handler), 1);
        if (served.handlers.length === 0) {
          this.stageRoles.delete(role);
          served.off();
        }
      };
      this.unregister.add(unregister);
      return unregister;
    },
  };
  private readonly stageRoles = new Map<string, { handlers: StageHandler[]; off: () => void }>();

  constructor(
    readonly did: string,
    private readonly pollMs: number,
  ) {
    const { owner, secretary } = orchestration(
      () => this.orchestrationTransport(),
      (operation) => this.ensureOpen(operation),
    );
    this.owner = owner;
    this.secretary = secretary;
    this.tasks = tasksApi(
      did,
      () => this.taskTransport(),
      (operation) => this.ensureOpen(operation),
    );
    this.discussions = discussionsApi(
      did,
      () => this.discussionTransport(),
      (operation) => this.ensureOpen(operation),
    );
    this.tokens = tokensApi(
      did,
      () => this.tokenTransport(),
      (operation) => this.ensureOpen(operation),
    );
  }

  async unread(options?: { limit?: number; mentionsOnly?: boolean }): Promise<UnreadPage> {
    this.ensureOpen('unread()');
    const limit = options?.limit;
    if (limit !== undefined && (!Number.isInteger(limit) || limit < 1 || limit > 1000))
      throw new SdkArgumentError('options.limit', 'an integer from 1 to 1000', limit);
    return this.discussionTransport().unread(this.did, {
      ...(limit === undefined ? {} : { limit }),
      ...(options?.mentionsOnly === true ? { mentionsOnly: true } : {}),
    });
  }

  async markRead(through?: number) {
    this.ensureOpen('markRead()');
    return this.discussionTransport().markRead(this.did, checkSeq('through', through));
  }

  async send(to: string, body?: unknown, options?: SendOptions): Promise<SendResult> {
    this.ensureOpen('send()');
    requireAddress('to', to);
    checkSendOptions(options);
    checkBody(body);
    return this.deliver({
      to,
      ...(body === undefined ? {} : { body }),
      ...(options?.type === undefined ? {} : { type: options.type }),
      ...(options?.id === undefined ? {} : { id: options.id }),
    });
  }

  async inbox(options?: InboxOptions): Promise<InboxPage> {
    this.ensureOpen('inbox()');
    return this.readInbox(checkInboxOptions(options));
  }

  messages(options?: MessagesOptions): AsyncIterableIterator<Message> {
    this.ensureOpen('messages()');
    if (options !== undefined && (options === null || typeof options !== 'object'))
      throw new SdkArgumentError('options', 'an object', options);
    const afterSeq = checkSeq('afterSeq', options?.afterSeq);
    const signal = options?.signal;
    if (signal !== undefined && !(signal instanceof AbortSignal))
      throw new SdkArgumentError('signal', 'an AbortSignal', signal);
    // The starting point is read now, not at the first `next()`: a message that arrives between this call
    // and the first iteration is yielded, not skipped.
    const start = afterSeq === undefined ? this.lastSeq() : Promise.resolve(afterSeq);
    start.catch(() => {});
    return this.follow(start, signal);
  }

  async discover(query?: DiscoverQuery): Promise<DiscoveredAgent[]> {
    this.ensureOpen('discover()');
    return this.findCards(checkDiscoverQuery(query));
  }

  async publishCard(fields: CardFields): Promise<AgentCard> {
    this.ensureOpen('publishCard()');
    return this.storeCard(checkCardFields('card', fields));
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const off of [...this.unregister]) off();
    for (const wake of [...this.wakers]) wake();
    await this.shutdown();
  }

  protected abstract deliver(request: {
    to: string;
    body?: unknown;
    type?: string;
    id?: string;
  }): Promise<SendResult>;
  protected abstract readInbox(options: { afterSeq?: number; limit: number }): Promise<InboxPage>;
  protected abstract runStatus(runId: string): Promise<RunStatus>;
  protected abstract vaultGet(enclaveId: string, key: string, version: number | undefined): Promise<Artifact>;
  protected abstract vaultPut(enclaveId: string, key: string, artifact: VaultPut): Promise<ArtifactRef>;
  protected abstract orchestrationTransport(): OrchestrationTransport;
  protected abstract taskTransport(): TaskTransport;
  protected abstract discussionTransport(): DiscussionTransport;
  protected abstract tokenTransport(): TokenTransport;
  protected abstract registerStage(role: string, handler: StageHandler): () => void;
  protected abstract findCards(query: CardQuery): Promise<DiscoveredAgent[]>;
  protected abstract storeCard(fields: CardFields): Promise<AgentCard>;
  protected abstract shutdown(): Promise<void>;

  /** An error the message iterator waits out (a daemon restarting) instead of ending with it. */
  protected isTransient(_err: unknown): boolean {
    return false;
  }

  private ensureOpen(operation: string): void {
    if (this.closed) throw new SdkClosedError(operation);
  }

  private async *follow(start: Promise<number>, signal: AbortSignal | undefined): AsyncGenerator<Message> {
    const stopped = () => this.closed || signal?.aborted === true;
    let after: number;
    // A daemon that does not answer yet (restarting) is waited for here too: the starting point is
    // then the newest message once it answers.
    for (let first = start; ; first = this.lastSeq()) {
      try {
        after = await first;
        break;
      } catch (err) {
        if (stopped()) return;
        if (!this.isTransient(err)) throw err;
        await this.pause(signal);
        if (stopped()) return;
      }
    }
    while (!stopped()) {
      let page: InboxPage;
      try {
        page = await this.readInbox({ afterSeq: after, limit: PAGE });
      } catch (err) {
        if (stopped()) return;
        if (!this.isTransient(err)) throw err;
        await this.pause(signal);
        continue;
      }
      for (const message of page.messages) {
        after = message.seq;
        yield message;
        if (stopped()) return;
      }
      if (page.messages.length < PAGE) await this.pause(signal);
    }
  }

  /** The sequence number of the newest message now in the inbox (0 when empty), read page by page. */
  private async lastSeq(): Promise<number> {
    let after = 0;
    for (;;) {
      const { messages } = await this.readInbox({ afterSeq: after, limit: 1000 });
      const last = messages.at(-1);
      if (last === undefined) return after;
      after = last.seq;
      if (messages.length < 1000) return after;
    }
  }

  /** Waits one poll interval, or less when the client closes or the signal aborts. */
  private pause(signal: AbortSignal | undefined): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.wakers.delete(done);
        signal?.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(done, this.pollMs);
      this.wakers.add(done);
      signal?.addEventListener('abort', done, { once: true });
    });
  }
}
