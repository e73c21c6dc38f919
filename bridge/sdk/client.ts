// The one interface both SDK modes (daemon client and embedded host) implement, and the values it carries.
import type { ArtifactRef } from '../../machines/playbook/definition.ts';
import type {
  RemoteArtifact,
  RemoteStageContext,
  RemoteStageHandler,
  RemoteTask,
} from '../api/worker-client.ts';
import type { AgentCard, CardFields, DiscoveredAgent, DiscoverQuery } from './discover.ts';
import type { DiscussionsApi, UnreadPage } from './discussions.ts';
import type { OwnerApi, SecretaryApi } from './orchestration.ts';
import type { TasksApi } from './tasks.ts';
import type { TokensApi } from './tokens.ts';

/** A message in an identity's inbox, oldest first by `seq`. */
export interface Message {
  seq: number;
  id: string;
  type: string;
  from: string;
  ts: number;
  thread?: string;
  reply?: string;
  body: unknown;
}

export interface SendOptions {
  /** Lowercase message type such as `message` or `task.propose`; default `message`. */
  type?: string;
  /** Client-chosen id (16 to 64 characters of `[A-Za-z0-9_-]`): resending the same id is a no-op. */
  id?: string;
}

export interface SendResult {
  id: string;
  /** True when a message with this id had already been accepted. */
  duplicate: boolean;
}

export interface InboxPage {
  received: number;
  unread: number;
  messages: Message[];
}

export interface InboxOptions {
  /** Only messages after this sequence number. */
  afterSeq?: number;
  /** At most this many messages (1 to 1000; default 100). */
  limit?: number;
}

export interface MessagesOptions {
  /** Start after this sequence number; by default only messages arriving after the call are yielded. */
  afterSeq?: number;
  /** Stops the iteration when aborted. */
  signal?: AbortSignal;
}

/** An artifact read from an Enclave's vault. */
/** An artifact version read from an Enclave's vault: metadata and content. */
export type Artifact = RemoteArtifact;

export interface VaultPut {
  content: string | Uint8Array;
  /** Default `text`. */
  kind?: string;
  summary?: string;
}

/** A run's status as the daemon and the host report it. */
export interface RunStatus {
  run_id: string;
  state: string;
  playbook: { name: string; version: string; hash: string };
  objective: string;
  owner: string;
  coordinator: string;
  enclave_id: string | null;
  current: string | null;
  stages: unknown[];
  end_reason: string | null;
}

/** One stage assignment handed to a worker. */
export type StageTask = RemoteTask;

/** What a stage handler sees, the same in both modes. Exactly one of deliver, reject or fail settles it. */
export type StageContext = RemoteStageContext;

export type StageHandler = RemoteStageHandler;

/**
 * An agent's handle on anx, bound to one identity. `connect` returns it in either mode.
 *
 * @example
 * ```ts
 * const alice = await connect({ dataDir, name: 'Alice' });
 * await alice.send(bobDid, { text: 'hello' });
 * for await (const m of alice.messages()) {
 *   console.log(m.from, m.body);
 *   break;
 * }
 * await alice.close();
 * ```
 */
export interface AnxClient {
  /** `daemon` (local API of a running daemon) or `embedded` (a host in this process). */
  readonly mode: 'daemon' | 'embedded';
  /** The identity this client acts as. */
  readonly did: string;
  /** Sends `body` to a DID or actor address; durable when this resolves. */
  send(to: string, body?: unknown, options?: SendOptions): Promise<SendResult>;
  /** One page of the inbox, oldest first. */
  inbox(options?: InboxOptions): Promise<InboxPage>;
  /**
   * New messages as they arrive; ends on `close()` or when `signal` aborts. Reads the inbox in pages of
   * at most 100, so it never holds more than one page. In daemon mode a daemon that stops answering
   * is waited for (a restarted one is found through the data directory); other errors end the iteration.
   */
  messages(options?: MessagesOptions): AsyncIterableIterator<Message>;
  runs: {
    /** A run's status with its stage records. */
    getStatus(runId: string): Promise<RunStatus>;
  };
  vault: {
    /** An artifact of an Enclave this identity may read (latest version unless `version` is given). */
    get(enclaveId: string, key: string, options?: { version?: number }): Promise<Artifact>;
    /** Stores a new version of `key`, authored by this identity. */
    put(enclaveId: string, key: string, artifact: VaultPut): Promise<ArtifactRef>;
  };
  /**
   * Agents whose cards match every filter given: this host's identities, and with a relay the directory's.
   *
   * @example
   * ```ts
   * const reviewers = await client.discover({ capability: 'code.review', online: true });
   * ```
   */
  discover(query?: DiscoverQuery): Promise<DiscoveredAgent[]>;
  /** Signs and publishes this identity's agent card (fields not given are left empty). */
  publishCard(fields: CardFields): Promise<AgentCard>;
  /** Owner DIDs and the agents bound to them. */
  owner: OwnerApi;
  /** Secretaries: dispatch objectives for an Owner, abort them, read who does what. */
  secretary: SecretaryApi;
  worker: {
    /** Runs `handler` for each task of `role` assigned to this identity; returns a function that unregisters it. */
    onStage(role: string, handler: StageHandler): () => void;
  };
  /** The Action Layer: tasks proposed, claimed and moved by statements this identity signs. */
  tasks: TasksApi;
  /** Discussions: posts, quoted replies, signed ballots, conclusions. */
  discussions: DiscussionsApi;
  /** Capability tokens: issue, narrow and pass on, revoke, inspect and check grants as this identity. */
  tokens: TokensApi;
  /** Unread messages (after the read mark) with unread and mention counts; `mentionsOnly` keeps mentions. */
  unread(options?: { limit?: number; mentionsOnly?: boolean }): Promise<UnreadPage>;
  /** Marks the inbox read through `through` (default: the newest message). */
  markRead(
    through?: number,
  ): Promise<{ unread: number; mentions: number; read_through: number; marked: number }>;
  /** Stops workers and message iterators; an embedded client closes its host. */
  close(): Promise<void>;
}
