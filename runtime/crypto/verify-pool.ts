// Ed25519 verification off the main thread: a small pool of worker threads that verifies signatures
// in batches (libsodium when installed, node:crypto otherwise) and answers exactly as the node suite.
import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { acceptableEd25519Public, smallOrderEncoding } from './ed25519-checks.ts';
import { nodeSuite } from './node.ts';
import type { CryptoSuite } from './suite.ts';

/** One signature to verify. */
export interface VerifyItem {
  publicKey: Uint8Array;
  message: Uint8Array;
  signature: Uint8Array;
}

/** Options of `VerifyPool`. */
export interface VerifyPoolOptions {
  /** Worker threads (default: the machine's parallelism, at most 4). 0 verifies on the calling thread. */
  threads?: number;
  /** Verifies what the pool cannot (a worker that died, a pool with 0 threads). Default: the node suite. */
  fallback?: CryptoSuite;
  /** `sodium` (default when the sodium-native package loads) or `node` (node:crypto in the workers). */
  engine?: 'sodium' | 'node';
  /** @internal The workers' script (tests give one that dies). */
  source?: string;
}

// Runs in each worker as a CommonJS script. A batch is one transferred buffer of records
// [u32 message length][32-byte key][64-byte signature][message]; the answer is one byte per record.
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
let verify;
if (workerData.sodium) {
  const sodium = require(workerData.sodium);
  verify = (key, sig, msg) => sodium.crypto_sign_verify_detached(sig, msg, key);
} else {
  const crypto = require('node:crypto');
  const prefix = Buffer.from('302a300506032b6570032100', 'hex');
  const keys = new Map();
  verify = (key, sig, msg) => {
    const id = Buffer.from(key).toString('base64');
    let object = keys.get(id);
    if (object === undefined) {
      object = crypto.createPublicKey({ key: Buffer.concat([prefix, key]), format: 'der', type: 'spki' });
      if (keys.size >= 1024) keys.delete(keys.keys().next().value);
      keys.set(id, object);
    }
    return crypto.verify(null, msg, object, sig);
  };
}
parentPort.on('message', ({ id, buffer, count }) => {
  const bytes = new Uint8Array(buffer);
  const view = new DataView(buffer);
  const verdicts = new Uint8Array(count);
  let at = 0;
  for (let i = 0; i < count; i++) {
    const length = view.getUint32(at, true);
    const key = bytes.subarray(at + 4, at + 36);
    const sig = bytes.subarray(at + 36, at + 100);
    const msg = bytes.subarray(at + 100, at + 100 + length);
    at += 100 + length;
    try { verdicts[i] = verify(key, sig, msg) ? 1 : 0; } catch { verdicts[i] = 0; }
  }
  parentPort.postMessage({ id, verdicts }, [verdicts.buffer]);
});
`;

/** The answers of one `verifyAll` call, resolved when the last one is in. */
interface Group {
  verdicts: boolean[];
  left: number;
  resolve: (verdicts: boolean[]) => void;
}

interface Pending {
  item: VerifyItem;
  group: Group;
  index: number;
}

function settle({ group, index }: Pending, ok: boolean): void {
  group.verdicts[index] = ok;
  if (--group.left === 0) group.resolve(group.verdicts);
}

interface Lane {
  worker: Worker;
  /** Batches sent and not answered, by id. */
  inFlight: Map<number, Pending[]>;
}

/** Fewer items than this go to one worker; more are split across the workers. */
const SPLIT_AT = 8;
/** A batch is sent once it holds this many items, without waiting for the end of the turn. */
const BATCH_MAX = 32;
/** Workers that die this many times turn the pool into a synchronous verifier for good. */
const MAX_RESTARTS = 3;

let sodiumPath: string | null | undefined;

/** Where the sodium-native package is, or null when it is not installed or does not load here. */
function sodiumModule(): string | null {
  if (sodiumPath === undefined) {
    try {
      const require = createRequire(import.meta.url);
      const path = require.resolve('sodium-native');
      const sodium = require(path) as { crypto_sign_verify_detached?: unknown };
      sodiumPath = typeof sodium.crypto_sign_verify_detached === 'function' ? path : null;
    } catch {
      sodiumPath = null;
    }
  }
  return sodiumPath;
}

/**
 * Verifies Ed25519 signatures on worker threads, so a burst of verifications (tokens presented to
 * the local API, say) neither blocks the event loop nor is limited to one core. Calls made in one
 * turn of the event loop go out as one batch per worker. The verdicts are the node suite's: keys
 * that are non-canonical or of small order are refused before any thread sees them, and the rare
 * signature whose R is of small order (which libsodium refuses and RFC 8032 allows) is verified by
 * the node suite. Idle workers do not keep the process alive.
 *
 * @example
 * ```ts
 * const ok = await sharedVerifyPool().verify(publicKey, message, signature);
 * ```
 */
export class VerifyPool {
  readonly threads: number;
  readonly engine: 'sodium' | 'node';
  readonly #fallback: CryptoSuite;
  readonly #sodium: string | null;
  readonly #source: string;
  #lanes: Lane[] = [];
  #queue: Pending[] = [];
  #flushing = false;
  #nextBatch = 1;
  #next = 0;
  #restarts = 0;
  #closed = false;

  constructor(options: VerifyPoolOptions = {}) {
    this.threads = Math.max(0, Math.floor(options.threads ?? Math.min(4, availableParallelism())));
    this.#fallback = options.fallback ?? nodeSuite;
    this.#source = options.source ?? WORKER_SOURCE;
    const sodium = options.engine === 'node' ? null : sodiumModule();
    this.#sodium = sodium;
    this.engine = sodium === null ? 'node' : 'sodium';
  }

  /** Verifies one signature; false on any malformed input, never rejects. */
  async verify(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): Promise<boolean> {
    return (await this.verifyAll([{ publicKey, message, signature }]))[0] === true;
  }

  /** Verifies several signatures at once; the answers come in the order of `items`. */
  verifyAll(items: readonly VerifyItem[]): Promise<boolean[]> {
    const verdicts: boolean[] = new Array(items.length).fill(false);
    const remote: number[] = [];
    for (let i = 0; i < items.length; i++) {
      const local = this.#local(items[i] as VerifyItem);
      if (local === undefined) remote.push(i);
      else verdicts[i] = local;
    }
    if (remote.length === 0) return Promise.resolve(verdicts);
    return new Promise((resolve) => {
      const group: Group = { verdicts, left: remote.length, resolve };
      for (const index of remote) {
        this.#queue.push({ item: items[index] as VerifyItem, group, index });
        // A long burst goes out in parts, so the workers start while this thread prepares the rest.
        if (this.#queue.length >= BATCH_MAX) this.#flush();
      }
      if (this.#queue.length > 0 && !this.#flushing) {
        this.#flushing = true;
        queueMicrotask(() => {
          this.#flushing = false;
          this.#flush();
        });
      }
    });
  }

  /** Threads that died (or could not start); at three the pool verifies on the calling thread for good. */
  get restarts(): number {
    return this.#restarts;
  }

  /** Stops the workers; verifications asked afterwards run on the calling thread. */
  async close(): Promise<void> {
    this.#closed = true;
    const lanes = this.#lanes;
    this.#lanes = [];
    for (const lane of lanes) this.#settleLocally(lane);
    await Promise.all(lanes.map((lane) => lane.worker.terminate()));
  }

  /** The verdict when it needs no worker (malformed input, or the pool cannot help), else undefined. */
  #local(item: VerifyItem): boolean | undefined {
    const { publicKey, message, signature } = item;
    if (
      !(publicKey instanceof Uint8Array) ||
      publicKey.length !== 32 ||
      !(signature instanceof Uint8Array) ||
      signature.length !== 64 ||
      !(message instanceof Uint8Array) ||
      !acceptableEd25519Public(publicKey)
    )
      return false;
    if (!this.#usable()) return this.#fallback.verify(publicKey, message, signature);
    // libsodium refuses a small-order R that OpenSSL and the noble suite accept: those few go local.
    if (this.engine === 'sodium' && smallOrderEncoding(signature.subarray(0, 32)))
      return this.#fallback.verify(publicKey, message, signature);
    return undefined;
  }

  #flush(): void {
    const queue = this.#queue;
    this.#queue = [];
    if (queue.length === 0) return;
    while (this.#usable() && this.#lanes.length < this.threads) {
      try {
        this.#lanes.push(this.#spawn());
      } catch {
        // No thread to be had (a resource limit, an embedder without workers): verify here.
        this.#restarts++;
      }
    }
    const lanes = this.#lanes;
    if (!this.#usable() || lanes.length === 0) {
      for (const pending of queue) this.#settleHere(pending);
      return;
    }
    const parts = queue.length < SPLIT_AT ? 1 : lanes.length;
    const size = Math.ceil(queue.length / parts);
    for (let start = 0; start < queue.length; start += size) {
      const lane = lanes[this.#next++ % lanes.length] as Lane;
      this.#send(lane, queue.slice(start, start + size));
    }
  }

  #send(lane: Lane, batch: Pending[]): void {
    let total = 0;
    for (const p of batch) total += 100 + p.item.message.length;
    const buffer = new ArrayBuffer(total);
    const bytes = new Uint8Array(buffer);
    const view = new DataView(buffer);
    let at = 0;
    for (const { item } of batch) {
      view.setUint32(at, item.message.length, true);
      bytes.set(item.publicKey, at + 4);
      bytes.set(item.signature, at + 36);
      bytes.set(item.message, at + 100);
      at += 100 + item.message.length;
    }
    const id = this.#nextBatch++;
    if (lane.inFlight.size === 0) lane.worker.ref();
    lane.inFlight.set(id, batch);
    lane.worker.postMessage({ id, buffer, count: batch.length }, [buffer]);
  }

  #spawn(): Lane {
    const worker = new Worker(this.#source, { eval: true, workerData: { sodium: this.#sodium } });
    const lane: Lane = { worker, inFlight: new Map() };
    worker.unref();
    worker.on('message', ({ id, verdicts }: { id: number; verdicts: Uint8Array }) => {
      const batch = lane.inFlight.get(id);
      if (batch === undefined) return;
      lane.inFlight.delete(id);
      if (lane.inFlight.size === 0) worker.unref();
      for (let i = 0; i < batch.length; i++) settle(batch[i] as Pending, verdicts[i] === 1);
    });
    const lost = () => {
      if (!this.#lanes.includes(lane)) return;
      this.#lanes = this.#lanes.filter((l) => l !== lane);
      this.#restarts++;
      this.#settleLocally(lane);
    };
    worker.on('error', lost);
    worker.on('exit', lost);
    return lane;
  }

  /** Whether work still goes to threads: not closed, threads wanted, and they have not kept dying. */
  #usable(): boolean {
    return !this.#closed && this.threads > 0 && this.#restarts < MAX_RESTARTS;
  }

  #settleHere(pending: Pending): void {
    const { publicKey, message, signature } = pending.item;
    settle(pending, this.#fallback.verify(publicKey, message, signature));
  }

  /** Answers a lane's unanswered batches on this thread (a worker died or the pool closed). */
  #settleLocally(lane: Lane): void {
    for (const batch of lane.inFlight.values()) for (const pending of batch) this.#settleHere(pending);
    lane.inFlight.clear();
  }
}

let shared: VerifyPool | undefined;

/** The process's verification pool, started on first use. */
export function sharedVerifyPool(): VerifyPool {
  shared ??= new VerifyPool();
  return shared;
}
