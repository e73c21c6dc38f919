// Artifacts larger than one relay frame between a remote worker and the home of its run: chunks, their staging at the home, and the limits.
import { createHash } from 'node:crypto';
import type { Database, Key } from 'lmdb';
import { AnxError, describeValue } from '../runtime/errors.ts';
import type { ActorSystem } from '../runtime/kernel/actor-system.ts';
import { TeamworkInputError } from './errors.ts';

/**
 * Bytes of content in one chunk (the last one of a transfer is shorter): with its envelope a chunk
 * fits one relay frame (1 MiB). Chunk `i` of a transfer holds bytes `[i * REMOTE_CHUNK_BYTES, …)`.
 */
export const REMOTE_CHUNK_BYTES = 256 * 1024;

/** Largest delivery carried inside its signed statement (statements are at most 64 KiB); larger ones go in chunks. */
export const REMOTE_INLINE_BYTES = 32 * 1024;

/** Default largest artifact read or delivered between hosts (`ANX_REMOTE_ARTIFACT_MAX_BYTES` changes it). */
export const REMOTE_ARTIFACT_MAX_BYTES = 64 * 1024 * 1024;

/** The environment variable a daemon reads its limit from (bytes). */
export const REMOTE_ARTIFACT_MAX_ENV = 'ANX_REMOTE_ARTIFACT_MAX_BYTES';

/** Chunk requests in flight at once, each waiting for its answer. */
export const TRANSFER_WINDOW = 4;

/** A partly received delivery is dropped this long after its last chunk, or as soon as its task is over. */
export const TRANSFER_IDLE_MS = 15 * 60_000;

/** How often the home looks for transfers to drop. */
const SWEEP_EVERY_MS = 60_000;

/** What a transfer is: the SHA-256 (lowercase hex) and size of the whole content, and its number of chunks. */
export interface TransferHead {
  sha256: string;
  size: number;
  count: number;
}

/** One chunk as its signed statement describes it: the transfer, the chunk's index and the SHA-256 of its bytes. */
export interface ChunkClaim extends TransferHead {
  index: number;
  chunk_sha256: string;
}

/** An artifact over the limit for transfers between hosts (`ANX_ARTIFACT_TOO_LARGE`), refused before anything is sent or written. */
export class ArtifactTooLargeError extends AnxError {
  constructor(what: string, size: number, limit: number) {
    super(
      'ANX_ARTIFACT_TOO_LARGE',
      `${what} is ${size} bytes, over the ${limit}-byte limit of artifacts between hosts (${REMOTE_ARTIFACT_MAX_ENV})`,
      {
        hint: `split it into several artifacts, raise ${REMOTE_ARTIFACT_MAX_ENV} on both hosts (and the vault limit), or run the worker on the run’s host`,
      },
    );
  }
}

/** A chunk or a reassembled transfer whose bytes do not match what was signed for it (`ANX_TRANSFER_MISMATCH`); nothing is written. */
export class TransferMismatchError extends AnxError {
  constructor(message: string) {
    super('ANX_TRANSFER_MISMATCH', message, {
      hint: 'the content changed or was altered on the way; deliver (or read) it again',
    });
  }
}

/** A delivery whose chunks have not all arrived (or were dropped as stale) (`ANX_TRANSFER_INCOMPLETE`). */
export class TransferIncompleteError extends AnxError {
  constructor(message: string) {
    super('ANX_TRANSFER_INCOMPLETE', message, { hint: 'send the missing chunks, then the delivery again' });
  }
}

/** The limit a host applies to artifacts between hosts: `ANX_REMOTE_ARTIFACT_MAX_BYTES`, or 64 MiB. */
export function remoteArtifactLimit(env: Record<string, string | undefined> = process.env): number {
  const raw = env[REMOTE_ARTIFACT_MAX_ENV];
  if (raw === undefined || raw === '') return REMOTE_ARTIFACT_MAX_BYTES;
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n < REMOTE_CHUNK_BYTES)
    throw new TeamworkInputError(
      `${REMOTE_ARTIFACT_MAX_ENV} expected a whole number of bytes of at least ${REMOTE_CHUNK_BYTES}, got ${describeValue(raw)}`,
    );
  return n;
}

export function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** How many chunks content of `size` bytes travels in (at least one). */
export function chunkCount(size: number): number {
  return Math.max(1, Math.ceil(size / REMOTE_CHUNK_BYTES));
}

/** The bytes of chunk `index` of `content`. */
export function chunkOf(content: Uint8Array, index: number): Uint8Array {
  return content.subarray(index * REMOTE_CHUNK_BYTES, (index + 1) * REMOTE_CHUNK_BYTES);
}

export function headOf(content: Uint8Array): TransferHead {
  return { sha256: sha256Hex(content), size: content.byteLength, count: chunkCount(content.byteLength) };
}

/**
 * Checks the fields of a transfer as they came over the wire: a SHA-256, a size within `limit`, and
 * the number of chunks that size takes.
 */
export function checkHead(value: unknown, limit: number, what: string): TransferHead {
  const h = value as Partial<TransferHead> | null;
  if (h === null || typeof h !== 'object' || typeof h.sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(h.sha256))
    throw new TeamworkInputError(`${what} expected {sha256 (64 lowercase hex digits), size, count}`);
  if (!Number.isSafeInteger(h.size) || (h.size as number) < 0)
    throw new TeamworkInputError(`${what}.size expected a byte count, got ${describeValue(h.size)}`);
  const size = h.size as number;
  if (size > limit) throw new ArtifactTooLargeError(what, size, limit);
  if (h.count !== chunkCount(size))
    throw new TransferMismatchError(
      `${what} of ${size} bytes travels in ${chunkCount(size)} chunks of ${REMOTE_CHUNK_BYTES} bytes, not ${JSON.stringify(h.count)}`,
    );
  return { sha256: h.sha256, size, count: h.count as number };
}

/** Checks that `data` is chunk `index` of the transfer as its claim describes it. */
export function checkChunk(
  head: TransferHead,
  index: unknown,
  data: unknown,
  chunkSha?: unknown,
): Uint8Array {
  if (!Number.isInteger(index) || (index as number) < 0 || (index as number) >= head.count)
    throw new TransferMismatchError(
      `chunk index expected 0 to ${head.count - 1}, got ${describeValue(index)}`,
    );
  if (!(data instanceof Uint8Array))
    throw new TransferMismatchError(`chunk ${index} expected its bytes in "data"`);
  const i = index as number;
  const expected = Math.min(REMOTE_CHUNK_BYTES, head.size - i * REMOTE_CHUNK_BYTES);
  if (data.byteLength !== Math.max(0, expected))
    throw new TransferMismatchError(
      `chunk ${i} of ${head.count} expected ${Math.max(0, expected)} bytes, got ${data.byteLength}`,
    );
  if (chunkSha !== undefined && sha256Hex(data) !== chunkSha)
    throw new TransferMismatchError(
      `chunk ${i} of ${head.sha256} does not hash to the SHA-256 signed for it`,
    );
  return data;
}

/** Concatenates chunks and checks the whole against the transfer's size and SHA-256. */
export function assemble(head: TransferHead, chunks: readonly Uint8Array[], what: string): Uint8Array {
  const content = new Uint8Array(Buffer.concat(chunks));
  if (content.byteLength !== head.size || sha256Hex(content) !== head.sha256)
    throw new TransferMismatchError(
      `${what}: the ${content.byteLength} bytes received do not hash to ${head.sha256} (${head.size} bytes)`,
    );
  return content;
}

/** A staged transfer, as the home keeps it between chunks. */
interface Staged extends TransferHead {
  /** Indexes received so far. */
  received: number[];
  /** When its last chunk came (host clock). */
  touched: number;
}

/**
 * The home's chunks of deliveries still arriving, in LMDB: one transfer per (worker, task) at a time (a new
 * content hash for the task drops the old one), committed with the request cursor so a restart resumes
 * where it stood. A transfer goes when it is delivered, when its task is no longer open, or
 * `TRANSFER_IDLE_MS` after its last chunk, so what a worker leaves half-sent never stays.
 */
export class TransferStaging {
  private readonly heads: Database<unknown, Key>;
  private readonly chunks: Database<unknown, Key>;
  /** Heads written but not committed yet (null: removed): a chunk staged in the same commit sees the one before. */
  private readonly unsaved = new Map<string, Staged | null>();
  private sweepHandle: unknown;
  private closed = false;

  constructor(
    private readonly system: ActorSystem,
    /** Whether the task is still open for the worker: a transfer of a task that is over is dropped. */
    private readonly open: (worker: string, taskId: string) => boolean,
  ) {
    this.heads = system.store.root.openDB({ name: 'worker_transfers', useRecords: false } as never);
    this.chunks = system.store.root.openDB({ name: 'worker_transfer_chunks', useRecords: false } as never);
    this.schedule();
  }

  /** Stages one chunk (a chunk sent again is a no-op); its writes join the next commit. */
  put(worker: string, taskId: string, head: TransferHead, index: number, data: Uint8Array): void {
    let staged = this.head(worker, taskId);
    if (staged !== undefined && staged.sha256 !== head.sha256) {
      this.drop(worker, taskId);
      staged = undefined;
    }
    if (staged !== undefined && staged.size !== head.size)
      throw new TransferMismatchError(
        `chunk ${index} names ${head.size} bytes for ${head.sha256}, earlier chunks ${staged.size}`,
      );
    const received = [...(staged?.received ?? [])];
    if (!received.includes(index)) {
      // A copy: the bytes may be a view of the inbox record they came in.
      this.system.commits.put(this.chunks, [worker, taskId, index], new Uint8Array(data));
      received.push(index);
    }
    this.setHead(worker, taskId, { ...head, received, touched: this.system.clock.now() });
  }

  /** The whole content of a staged transfer, checked against its SHA-256; a mismatch drops it. */
  take(worker: string, taskId: string, head: TransferHead): Uint8Array {
    const staged = this.head(worker, taskId);
    const what = `the delivery of ${head.sha256} for task ${taskId}`;
    if (staged === undefined || staged.sha256 !== head.sha256 || staged.received.length < head.count)
      throw new TransferIncompleteError(
        `${what}: ${staged?.sha256 === head.sha256 ? staged.received.length : 0} of ${head.count} chunks received`,
      );
    const parts: Uint8Array[] = [];
    for (let i = 0; i < head.count; i++) {
      const part = this.chunks.get([worker, taskId, i]) as Uint8Array | undefined;
      if (part === undefined) throw new TransferIncompleteError(`${what}: chunk ${i} is missing`);
      parts.push(part);
    }
    try {
      return assemble(head, parts, what);
    } catch (err) {
      this.drop(worker, taskId);
      throw err;
    }
  }

  /** Drops the staged transfer of a task (its writes join the next commit). */
  drop(worker: string, taskId: string): void {
    const staged = this.head(worker, taskId);
    if (staged === undefined) return;
    for (const i of staged.received) this.system.commits.remove(this.chunks, [worker, taskId, i]);
    this.setHead(worker, taskId, null);
  }

  private head(worker: string, taskId: string): Staged | undefined {
    const unsaved = this.unsaved.get(`${worker}\u0000${taskId}`);
    if (unsaved !== undefined) return unsaved ?? undefined;
    return this.heads.get([worker, taskId]) as Staged | undefined;
  }

  private setHead(worker: string, taskId: string, value: Staged | null): void {
    const k = `${worker}\u0000${taskId}`;
    this.unsaved.set(k, value);
    if (value === null) this.system.commits.remove(this.heads, [worker, taskId]);
    else this.system.commits.put(this.heads, [worker, taskId], value);
    this.system.commits.afterCommit(() => {
      if (this.unsaved.get(k) === value) this.unsaved.delete(k);
    });
  }

  /** Drops transfers idle for `TRANSFER_IDLE_MS` or whose task is over; resolves with how many, once committed. */
  async sweep(): Promise<number> {
    const now = this.system.clock.now();
    let dropped = 0;
    for (const { key, value } of this.heads.getRange({})) {
      const [worker, taskId] = key as [string, string];
      if ((value as Staged).touched + TRANSFER_IDLE_MS > now && this.open(worker, taskId)) continue;
      this.drop(worker, taskId);
      dropped++;
    }
    if (dropped > 0) await this.system.commits.flush();
    return dropped;
  }

  /** Transfers staged now: worker, task, and how many of their chunks arrived. */
  list(): Array<{ worker: string; task_id: string; sha256: string; size: number; received: number }> {
    return [...this.heads.getRange({})].map(({ key, value }) => {
      const s = value as Staged;
      const [worker, task_id] = key as [string, string];
      return { worker, task_id, sha256: s.sha256, size: s.size, received: s.received.length };
    });
  }

  close(): void {
    this.closed = true;
    this.system.clock.clearTimeout(this.sweepHandle);
  }

  private schedule(): void {
    this.sweepHandle = this.system.clock.setTimeout(() => {
      if (this.closed) return;
      void this.sweep().then(
        () => this.schedule(),
        () => this.schedule(),
      );
    }, SWEEP_EVERY_MS);
  }
}
