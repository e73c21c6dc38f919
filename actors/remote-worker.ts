// Workers on another host than their run: assignments leave from the run's coordinator DID, and the worker's reads and answers come back to it as signed requests.
import type { Database, Key } from 'lmdb';
import { isArtifactRef } from '../machines/playbook/compile.ts';
import type { ArtifactRef } from '../machines/playbook/definition.ts';
import type { CryptoSuite } from '../runtime/crypto/suite.ts';
import { AnxError, describeValue } from '../runtime/errors.ts';
import type { EventV1 } from '../runtime/events/event.ts';
import type { Keystore } from '../runtime/identity/keystore.ts';
import type { ActorSystem, RemoteRouter } from '../runtime/kernel/actor-system.ts';
import { encodeKernelEnvelope, type KernelEnvelope } from '../runtime/kernel/message.ts';
import { type ArtifactContent, toRef } from '../runtime/vault/types.ts';
import { derivedId, signStatement, statementVerifier } from './collab.ts';
import type { Enclaves } from './enclaves.ts';
import { TaskNotRunningError, TeamworkInputError } from './errors.ts';
import type { InboxRecord, InboxTap } from './inbox-tap.ts';
import { type PlaybookRuns, runAddress, runStateOf } from './playbook-run.ts';
import {
  ArtifactTooLargeError,
  assemble,
  checkChunk,
  checkHead,
  chunkCount,
  chunkOf,
  headOf,
  REMOTE_CHUNK_BYTES,
  REMOTE_INLINE_BYTES,
  remoteArtifactLimit,
  sha256Hex,
  TRANSFER_WINDOW,
  TransferMismatchError,
  TransferStaging,
} from './remote-transfer.ts';
import { RemoteSigner } from './vault-service.ts';
import type { Delivery, StageProgress, StageTask, WorkerRuntime } from './worker-runtime.ts';

/** Requests a worker sends to the home DID of its run (docs/protocol.md, "Workers on another host"). */
export const WORKER_REQUESTS = [
  'worker.read',
  'worker.deliver',
  'worker.chunk',
  'worker.reject',
  'worker.fail',
  'worker.progress',
] as const;

export type WorkerRequestType = (typeof WORKER_REQUESTS)[number];

/** What the home answers each request with (`reply` names the request's id). */
export const WORKER_ANSWER = 'worker.answer';

/** How long a worker waits for its home's answer before giving up on the call (the request stays queued). */
const ANSWER_TIMEOUT_MS = 60_000;

/** The home of a run refused a worker's request: the code and reason it answered with. */
export class WorkerHomeRefusedError extends AnxError {
  constructor(code: string, message: string, hint?: string) {
    super(code, message, hint === undefined ? undefined : { hint });
  }
}

/** A request whose signature does not verify, or whose signer is not the DID that sent it. */
export class ForgedSenderError extends AnxError {
  constructor(message: string) {
    super('ANX_FORBIDDEN_SENDER', message, {
      hint: 'a worker signs each request with its own key; nobody can answer for another DID',
    });
  }
}

/** The home of a run did not answer in time (`ANX_WORKER_HOME_TIMEOUT`). */
export class WorkerHomeTimeoutError extends AnxError {
  constructor(home: string, type: string, timeoutMs: number) {
    super('ANX_WORKER_HOME_TIMEOUT', `${home} did not answer ${type} within ${timeoutMs} ms`, {
      hint: 'the request stays queued for the home host; check that it is running and joined to the relay',
    });
  }
}

/** An open task of a remote worker, as the home keeps it until the task stops running. */
interface TrackedTask {
  worker: string;
  home: string;
}

interface Answer {
  from: string;
  body: Record<string, unknown>;
  /** Where the answer sits in the worker's inbox. */
  seq: number;
}

/** How long the home keeps content of a chunked read for the chunk requests that follow. */
const READ_CACHE_MS = 60_000;

/** The answer body of an error, as the worker sees it again. */
function refusal(err: unknown): Record<string, unknown> {
  if (err instanceof AnxError)
    return {
      ok: false,
      code: err.code,
      message: err.message,
      ...(err.hint === undefined ? {} : { hint: err.hint }),
    };
  return { ok: false, code: 'ANX_WORKER_HOME_FAILED', message: (err as Error)?.message ?? String(err) };
}

/**
 * Runs `each` for indexes 0 to `count - 1`, at most `TRANSFER_WINDOW` at a time, and gives the results
 * in index order; after a failure no new index starts and the first error is thrown.
 */
async function inWindow<T>(count: number, each: (index: number) => Promise<T>): Promise<T[]> {
  const out = new Array<T>(count);
  let next = 0;
  let failed = false;
  const lane = async () => {
    while (!failed && next < count) {
      const index = next++;
      try {
        out[index] = await each(index);
      } catch (err) {
        failed = true;
        throw err;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(TRANSFER_WINDOW, count) }, lane));
  return out;
}

/**
 * The home side, on the host where runs live:
 *
 * - **assignments out**: a run's `stage.assign` and `stage.cancel` for a DID of another host leave as
 *   envelopes from the run's coordinator DID (the relay carries only DID-to-DID mail), and each such task
 *   is tracked until it stops running; when the run moves on without an answer (a timeout, a takeover), the
 *   worker is told with a `stage.cancel`, so its handler's signal fires.
 * - **requests in**: `worker.*` requests reaching a local DID are verified (the statement's signer must be the
 *   DID that sent it), checked (member of the run's Enclave with the permission, the task its open
 *   assignment), carried out as that DID and answered with `worker.answer`. Handled once each, in order:
 *   a cursor per DID, committed with the answer, outlives restarts.
 * - **large artifacts**: a delivery over `REMOTE_INLINE_BYTES` comes as `worker.chunk` requests first, staged
 *   here (committed with the cursor) until its `worker.deliver` names the whole content's SHA-256; a read
 *   over `REMOTE_CHUNK_BYTES` is answered with the transfer's size and hash, and its chunks one request each.
 */
export class WorkerHome {
  private readonly tracked: Database<unknown, Key>;
  /**
   * What `tracked` holds (with what is staged for it), by run then task: read once at start, so the status
   * events of the many runs with no remote task cost no read.
   */
  private readonly trackedByRun = new Map<string, Map<string, TrackedTask>>();
  private readonly watched = new Set<string>();
  private readonly unwatch: Array<() => void> = [];
  private readonly unsubscribe: () => void;
  private readonly verify;
  private queue: Promise<void> = Promise.resolve();
  private closed = false;
  /** Deliveries whose chunks are still arriving. */
  readonly staging: TransferStaging;
  /** Content of recent chunked reads, by ref: a chunk request does not read and hash the artifact again. */
  private readonly readCache = new Map<string, { content: Uint8Array; at: number }>();

  constructor(
    private readonly system: ActorSystem,
    private readonly keystore: Keystore,
    private readonly tap: InboxTap,
    private readonly runs: PlaybookRuns,
    private readonly enclaves: Enclaves,
    private readonly workers: WorkerRuntime,
    suite: CryptoSuite,
    /** Largest artifact read or delivered between hosts, in bytes. */
    readonly limit = remoteArtifactLimit(),
  ) {
    this.tracked = system.store.root.openDB({ name: 'worker_remote', useRecords: false } as never);
    for (const { key, value } of this.tracked.getRange({}))
      this.track(...(key as [string, string]), value as TrackedTask);
    this.staging = new TransferStaging(system, (worker, taskId) =>
      runs.isRunningTask(taskId.slice(0, Math.max(0, taskId.indexOf('/'))), taskId, worker),
    );
    this.verify = statementVerifier(suite);
    this.unsubscribe = system.events.subscribe((events) => this.onEvents(events));
    for (const record of keystore.list()) this.watch(record.did);
  }

  /**
   * Wraps the kernel's remote router: mail of a run to a DID of another host leaves as the run's coordinator.
   * Runs again for every outbox entry replayed after a restart, so the rewrite needs no state of its own.
   */
  router(inner: RemoteRouter): RemoteRouter {
    return {
      route: (env, bytes, outboxKey) => {
        const rewritten = this.asCoordinator(env);
        if (rewritten === undefined) return inner.route(env, bytes, outboxKey);
        return inner.route(rewritten, encodeKernelEnvelope(rewritten), outboxKey);
      },
    };
  }

  private asCoordinator(env: KernelEnvelope): KernelEnvelope | undefined {
    if (!env.from.startsWith('run/') || (env.type !== 'stage.assign' && env.type !== 'stage.cancel'))
      return undefined;
    const runId = env.from.slice('run/'.length);
    let coordinator: string;
    try {
      coordinator = this.runs.context(runId).context.coordinator;
    } catch {
      return undefined;
    }
    const taskId = (env.body as { task_id?: unknown } | null)?.task_id;
    if (typeof taskId === 'string') {
      if (env.type === 'stage.assign') {
        const task: TrackedTask = { worker: env.to, home: coordinator };
        this.system.commits.put(this.tracked, [runId, taskId], task);
        this.track(runId, taskId, task);
      } else this.untrack(runId, taskId);
    }
    this.watch(coordinator);
    // The worker's host checks that the coordinator may give it work: a token from its Owner goes along.
    const cap = env.type === 'stage.assign' ? this.runs.assignToken(runId, env.to) : undefined;
    return { ...env, from: coordinator, ...(cap === undefined ? {} : { cap }) };
  }

  close(): void {
    this.closed = true;
    this.unsubscribe();
    this.staging.close();
    for (const u of this.unwatch) u();
  }

  private watch(did: string): void {
    if (this.watched.has(did) || !this.keystore.has(did)) return;
    this.watched.add(did);
    this.unwatch.push(
      this.tap.watch(did, WORKER_REQUESTS, (home, record) => {
        this.queue = this.queue.then(() => this.handle(home, record)).catch(() => {});
      }),
    );
  }

  private onEvents(events: readonly EventV1[]): void {
    for (const e of events) {
      if (e.kind === 'message' && e.actor !== undefined && !this.watched.has(e.actor)) {
        const type = (e.payload as { type?: unknown } | null)?.type;
        if ((WORKER_REQUESTS as readonly unknown[]).includes(type)) this.watch(e.actor);
        continue;
      }
      if (e.kind === 'status' && e.run_id !== undefined && e.actor === runAddress(e.run_id))
        this.checkTracked(e.run_id);
    }
  }

  /** Tasks of remote workers in this run that stopped running unanswered: their worker is told. */
  private checkTracked(runId: string): void {
    if (this.closed) return;
    const tasks = this.trackedByRun.get(runId);
    if (tasks === undefined) return;
    const cancels: KernelEnvelope[] = [];
    let ended: boolean | undefined;
    for (const [taskId, { worker, home }] of [...tasks]) {
      if (this.runs.isRunningTask(runId, taskId, worker)) continue;
      this.untrack(runId, taskId);
      // An ended run sends its own cancels; an answered task needs none.
      ended ??= ['aborted', 'failed', 'completed'].includes(runStateOf(this.runs.context(runId).value));
      if (ended || this.workers.answered(worker, taskId) !== undefined) continue;
      cancels.push(
        this.system.envelope({
          id: derivedId('stage.cancel', taskId),
          type: 'stage.cancel',
          from: home,
          to: worker,
          body: { run_id: runId, task_id: taskId, reason: 'the run moved on' },
          ctx: { run_id: runId, task_id: taskId },
        }),
      );
    }
    if (cancels.length > 0) void this.system.accept(cancels).catch(() => {});
  }

  private track(runId: string, taskId: string, task: TrackedTask): void {
    let tasks = this.trackedByRun.get(runId);
    if (tasks === undefined) {
      tasks = new Map();
      this.trackedByRun.set(runId, tasks);
    }
    tasks.set(taskId, task);
  }

  /** Stages the removal of a tracked task (and forgets it here at once). */
  private untrack(runId: string, taskId: string): void {
    this.system.commits.remove(this.tracked, [runId, taskId]);
    const tasks = this.trackedByRun.get(runId);
    if (tasks?.delete(taskId) === true && tasks.size === 0) this.trackedByRun.delete(runId);
  }

  private async handle(home: string, record: InboxRecord): Promise<void> {
    if (this.closed) return;
    const cursorKey = `worker.home.${home}`;
    if (record.seq <= ((this.system.store.meta.get(cursorKey) as number | undefined) ?? 0)) return;
    let body: Record<string, unknown>;
    try {
      body = { ok: true, ...(await this.carryOut(home, record)) };
    } catch (err) {
      body = refusal(err);
    }
    // A chunk's bytes now live in the staging (or were refused): its inbox record goes in the same commit.
    if (record.type === 'worker.chunk')
      this.system.commits.remove(this.system.store.records, ['inbox', home, record.seq]);
    this.system.commits.put(this.system.store.meta, cursorKey, record.seq);
    await this.system.accept([
      this.system.envelope({
        id: derivedId(WORKER_ANSWER, record.from, record.id),
        type: WORKER_ANSWER,
        from: home,
        to: record.from,
        reply: record.id,
        body,
        ...(record.ctx === undefined ? {} : { ctx: record.ctx }),
      }),
    ]);
  }

  /** Verifies the request's signature and sender, then does what it asks as that DID. */
  private async carryOut(home: string, record: InboxRecord): Promise<Record<string, unknown>> {
    const raw = (record.body as { statement?: unknown } | null)?.statement;
    const verdict = this.verify(raw, { subject: home, type: record.type });
    if (!verdict.ok)
      throw new ForgedSenderError(`${record.type} from ${record.from}: ${verdict.problem.reason}`);
    if (verdict.statement.signer !== record.from)
      throw new ForgedSenderError(
        `${record.type} was sent by ${record.from} but signed by ${verdict.statement.signer}`,
      );
    const signer = new RemoteSigner(record.from);
    const b = verdict.statement.body;
    const taskId = b['task_id'];
    const type = record.type as WorkerRequestType;
    if (typeof taskId !== 'string' || !taskId.includes('/'))
      throw new TeamworkInputError(
        `"task_id" expected a task id like RUN/STAGE/ATTEMPT, got ${describeValue(taskId)}`,
      );
    const runId = taskId.slice(0, taskId.indexOf('/'));
    if (!this.runs.has(runId)) throw new TaskNotRunningError(taskId, signer.did);
    // Only members act in the run's Enclave: reads and progress need read, answers write.
    const enclaveId = this.runs.context(runId).context.enclave_id;
    if (enclaveId !== null)
      this.enclaves.check(
        enclaveId,
        signer.did,
        type === 'worker.read' || type === 'worker.progress' ? 'read' : 'write',
      );
    if (type !== 'worker.read' && type !== 'worker.progress') {
      // Sent again (the worker restarted before the answer reached it): the first outcome stands.
      const done = this.workers.answered(signer.did, taskId);
      if (done !== undefined) {
        this.staging.drop(signer.did, taskId);
        return done.ref === undefined ? {} : { ref: done.ref };
      }
    }
    switch (type) {
      case 'worker.read':
        return this.read(signer, runId, taskId, b);
      case 'worker.chunk': {
        if (!this.runs.isRunningTask(runId, taskId, signer.did))
          throw new TaskNotRunningError(taskId, signer.did);
        const head = checkHead(b, this.limit, `the delivery for task ${taskId}`);
        const data = (record.body as { data?: unknown }).data;
        this.staging.put(
          signer.did,
          taskId,
          head,
          b['index'] as number,
          checkChunk(head, b['index'], data, String(b['chunk_sha256'])),
        );
        return { index: b['index'] };
      }
      case 'worker.deliver': {
        const delivery = { ...b } as unknown as Delivery;
        if (b['content'] !== undefined) {
          if (!this.runs.isRunningTask(runId, taskId, signer.did))
            throw new TaskNotRunningError(taskId, signer.did);
          const head = checkHead(b['content'], this.limit, `the delivery for task ${taskId}`);
          delivery.value = this.staging.take(signer.did, taskId, head);
        }
        const ref = await this.workers.deliverFor(signer, taskId, delivery);
        this.staging.drop(signer.did, taskId);
        return { ref };
      }
      case 'worker.reject':
        await this.workers.rejectFor(signer, taskId, b as { reason: string; target?: string });
        this.staging.drop(signer.did, taskId);
        return {};
      case 'worker.fail':
        await this.workers.failFor(signer, taskId, String(b['error']), { fatal: b['fatal'] === true });
        this.staging.drop(signer.did, taskId);
        return {};
      case 'worker.progress':
        await this.workers.progressFor(signer, taskId, b as unknown as StageProgress);
        return {};
      default:
        throw new TeamworkInputError(`"type" expected one of ${WORKER_REQUESTS.join(', ')}, got ${type}`);
    }
  }

  /**
   * A read: content of at most one chunk comes in the answer; larger content is announced as a transfer
   * (its SHA-256, size and chunk count), whose chunks the worker then asks for by the exact ref and index.
   */
  private async read(
    signer: RemoteSigner,
    runId: string,
    taskId: string,
    b: Record<string, unknown>,
  ): Promise<Record<string, unknown>> {
    const index = b['index'];
    if (index === undefined) {
      const found = await this.workers.readFor(
        signer,
        taskId,
        (b['ref'] as ArtifactRef | undefined) ?? (b['key'] as string),
        typeof b['version'] === 'number' ? b['version'] : undefined,
      );
      const size = found.content.byteLength;
      const what = `${found.meta.key} version ${found.meta.version}`;
      if (size > this.limit) throw new ArtifactTooLargeError(what, size, this.limit);
      if (size <= REMOTE_CHUNK_BYTES) return { meta: found.meta, content: found.content };
      this.remember(toRef(found.meta), found.content);
      return { meta: found.meta, transfer: { sha256: found.meta.hash, size, count: chunkCount(size) } };
    }
    const ref = b['ref'];
    if (!isArtifactRef(ref))
      throw new TeamworkInputError('"ref" expected the ArtifactRef of the version whose chunk is read');
    const cached = this.readCache.get(refKey(ref));
    let content =
      cached !== undefined && cached.at + READ_CACHE_MS >= this.system.clock.now()
        ? cached.content
        : undefined;
    if (content === undefined) {
      content = (await this.workers.readFor(signer, taskId, ref)).content;
      this.remember(ref, content);
    } else if (
      this.runs.context(runId).context.enclave_id !== ref.enclave_id ||
      !this.runs.isRunningTask(runId, taskId, signer.did)
    )
      // What readFor checks, for content already read: the run's Enclave, the worker's open task.
      throw new TaskNotRunningError(taskId, signer.did);
    const head = { sha256: ref.hash, size: content.byteLength, count: chunkCount(content.byteLength) };
    if (head.size > this.limit)
      throw new ArtifactTooLargeError(`${ref.key} version ${ref.version}`, head.size, this.limit);
    if (!Number.isInteger(index) || (index as number) < 0 || (index as number) >= head.count)
      throw new TeamworkInputError(
        `"index" expected a chunk index from 0 to ${head.count - 1}, got ${describeValue(index)}`,
      );
    return { chunk: { ...head, index }, data: chunkOf(content, index as number) };
  }

  /** Keeps content of a chunked read for its chunk requests: at most two artifacts, for a minute. */
  private remember(ref: ArtifactRef, content: Uint8Array): void {
    const now = this.system.clock.now();
    for (const [key, entry] of this.readCache)
      if (entry.at + READ_CACHE_MS < now || this.readCache.size >= 2) this.readCache.delete(key);
    this.readCache.set(refKey(ref), { content, at: now });
  }
}

/** The identity of an artifact version for the read cache. */
function refKey(ref: ArtifactRef): string {
  return `${ref.enclave_id}\u0000${ref.key}\u0000${ref.version}\u0000${ref.hash}`;
}

/**
 * The worker side, on the host of a worker DID whose run lives elsewhere: each read or answer is a
 * statement signed by the worker DID, sent to the DID that assigned the task, and resolves with the
 * home's `worker.answer` (or throws its refusal as `WorkerHomeRefusedError`). Each request is new; an
 * outcome sent again (the handler ran again after a restart) is recognised by its task at the home.
 * Content larger than one frame travels in chunks (`worker.chunk` out, chunked `worker.read` in), a few in
 * flight at a time, and is checked against its SHA-256 before it is handed over.
 */
export class WorkerLink {
  private readonly watched = new Map<string, () => void>();
  private readonly waiters = new Map<string, (answer: Answer) => void>();

  constructor(
    private readonly system: ActorSystem,
    private readonly keystore: Keystore,
    private readonly tap: InboxTap,
    private readonly timeoutMs = ANSWER_TIMEOUT_MS,
    /** Largest artifact read or delivered between hosts, in bytes. */
    readonly limit = remoteArtifactLimit(),
  ) {}

  async read(task: StageTask, keyOrRef: string | ArtifactRef, version?: number): Promise<ArtifactContent> {
    const answer = await this.request(task, 'worker.read', {
      ...(typeof keyOrRef === 'string' ? { key: keyOrRef } : { ref: keyOrRef }),
      ...(version === undefined ? {} : { version }),
    });
    const meta = answer['meta'] as ArtifactContent['meta'];
    if (answer['transfer'] === undefined) {
      const content = answer['content'];
      return { meta, content: content instanceof Uint8Array ? new Uint8Array(content) : new Uint8Array(0) };
    }
    const what = `${meta.key} version ${meta.version}`;
    const head = checkHead(answer['transfer'], this.limit, what);
    if (head.sha256 !== meta.hash)
      throw new TransferMismatchError(`${what}: the transfer names ${head.sha256}, the version ${meta.hash}`);
    const ref = toRef(meta);
    const parts = await inWindow(head.count, async (index) => {
      const got = await this.request(task, 'worker.read', { ref, index }, {}, true);
      const chunk = got['chunk'] as { sha256?: unknown; index?: unknown } | undefined;
      if (chunk?.sha256 !== head.sha256 || chunk.index !== index)
        throw new TransferMismatchError(`${what}: the answer to chunk ${index} is another chunk`);
      return new Uint8Array(checkChunk(head, index, got['data']));
    });
    return { meta, content: assemble(head, parts, what) };
  }

  async deliver(task: StageTask, delivery: Delivery): Promise<ArtifactRef> {
    const bytes =
      typeof delivery.value === 'string'
        ? new Uint8Array(Buffer.from(delivery.value, 'utf8'))
        : delivery.value;
    if (bytes.byteLength > this.limit)
      throw new ArtifactTooLargeError('"value"', bytes.byteLength, this.limit);
    const rest = {
      ...(delivery.kind === undefined ? {} : { kind: delivery.kind }),
      ...(delivery.key === undefined ? {} : { key: delivery.key }),
      ...(delivery.summary === undefined ? {} : { summary: delivery.summary }),
      ...(delivery.choice === undefined ? {} : { choice: delivery.choice }),
    };
    if (bytes.byteLength <= REMOTE_INLINE_BYTES)
      return (await this.request(task, 'worker.deliver', { value: delivery.value, ...rest }))[
        'ref'
      ] as ArtifactRef;
    // Chunks first, each signed with the transfer it belongs to; then the delivery naming the whole.
    const head = headOf(bytes);
    const send = () =>
      inWindow(head.count, async (index) => {
        const data = chunkOf(bytes, index);
        await this.request(task, 'worker.chunk', { ...head, index, chunk_sha256: sha256Hex(data) }, { data });
      });
    await send();
    try {
      return (await this.request(task, 'worker.deliver', { content: head, ...rest }))['ref'] as ArtifactRef;
    } catch (err) {
      // The home dropped what it had staged (it went stale, or its host lost it): send it all again, once.
      if (!(err instanceof AnxError) || err.code !== 'ANX_TRANSFER_INCOMPLETE') throw err;
      await send();
      return (await this.request(task, 'worker.deliver', { content: head, ...rest }))['ref'] as ArtifactRef;
    }
  }

  async reject(task: StageTask, rejection: { reason: string; target?: string }): Promise<void> {
    await this.request(task, 'worker.reject', {
      reason: rejection.reason,
      ...(rejection.target === undefined ? {} : { target: rejection.target }),
    });
  }

  async fail(task: StageTask, error: string, fatal: boolean): Promise<void> {
    await this.request(task, 'worker.fail', { error, ...(fatal ? { fatal: true } : {}) });
  }

  async progress(task: StageTask, progress: StageProgress): Promise<void> {
    await this.request(task, 'worker.progress', { kind: progress.kind, payload: progress.payload ?? null });
  }

  close(): void {
    for (const u of this.watched.values()) u();
  }

  /**
   * Sends one signed request and waits for its answer. `extra` travels beside the statement (a chunk's
   * bytes, bound to it by their signed hash); with `forget`, the answer leaves the inbox once read.
   */
  private async request(
    task: StageTask,
    type: WorkerRequestType,
    fields: Record<string, unknown>,
    extra: Record<string, unknown> = {},
    forget = false,
  ): Promise<Record<string, unknown>> {
    const home = task.home;
    if (home === undefined) throw new TeamworkInputError(`task ${task.task_id} runs on this host`);
    this.listen(task.did);
    const statement = signStatement(this.keystore, this.system.clock, task.did, type, home, {
      task_id: task.task_id,
      ...fields,
    });
    const env = this.system.envelope({
      type,
      from: task.did,
      to: home,
      body: { statement, ...extra },
      ctx: {
        run_id: task.run_id,
        task_id: task.task_id,
        ...(task.enclave_id === null ? {} : { enclave_id: task.enclave_id }),
      },
    });
    const answer = await this.answerTo(env, home, async () => {
      await this.system.accept([env]);
    });
    if (forget) this.system.commits.remove(this.system.store.records, ['inbox', task.did, answer.seq]);
    if (answer.body['ok'] !== true) {
      const code = typeof answer.body['code'] === 'string' ? answer.body['code'] : 'ANX_WORKER_HOME_FAILED';
      throw new WorkerHomeRefusedError(
        code,
        `${home} refused ${type} of task ${task.task_id}: ${String(answer.body['message'])}`,
        typeof answer.body['hint'] === 'string' ? answer.body['hint'] : undefined,
      );
    }
    return answer.body;
  }

  /** Registers the waiter before sending, so an answer committed at once is not missed. */
  private answerTo(env: KernelEnvelope, home: string, send: () => Promise<void>): Promise<Answer> {
    return new Promise<Answer>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters.delete(env.id);
        reject(new WorkerHomeTimeoutError(home, env.type, this.timeoutMs));
      }, this.timeoutMs);
      this.waiters.set(env.id, (answer) => {
        if (answer.from !== home) return;
        clearTimeout(timer);
        this.waiters.delete(env.id);
        resolve(answer);
      });
      send().catch((err) => {
        clearTimeout(timer);
        this.waiters.delete(env.id);
        reject(err);
      });
    });
  }

  private listen(did: string): void {
    if (this.watched.has(did)) return;
    this.watched.set(
      did,
      this.tap.watch(did, [WORKER_ANSWER], (_d, record) => {
        const reply = (record as InboxRecord & { reply?: string }).reply;
        if (typeof reply !== 'string') return;
        this.waiters.get(reply)?.({
          from: record.from,
          body: (record.body ?? {}) as Record<string, unknown>,
          seq: record.seq,
        });
      }),
    );
  }
}
