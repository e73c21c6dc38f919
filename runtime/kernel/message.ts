// The kernel's view of an envelope (DESIGN §4 wire names) and its in-process msgpack codec.
import { randomBytes } from 'node:crypto';
import { Packr } from 'msgpackr';

/** Correlation ids an envelope may carry. */
export interface EnvelopeContext {
  session_id?: string;
  run_id?: string;
  enclave_id?: string;
  task_id?: string;
  stage?: string;
}

/**
 * An envelope as actors see it. Inside one host the kernel is trusted, so in-process envelopes carry
 * no signature; crossing a host boundary they are signed or sealed (see `runtime/envelope`).
 */
export interface KernelEnvelope {
  v: 1;
  id: string;
  type: string;
  from: string;
  to: string;
  ts: number;
  exp?: number;
  thread?: string;
  reply?: string;
  ctx?: EnvelopeContext;
  actor?: string;
  cap?: unknown;
  body?: unknown;
  sig?: Uint8Array;
}

// Plain maps, no record extension: the bytes are readable by any msgpack implementation.
const packr = new Packr({ useRecords: false, moreTypes: false, bundleStrings: false });

export function encodeKernelEnvelope(env: KernelEnvelope): Uint8Array {
  return packr.pack(env);
}

export function decodeKernelEnvelope(bytes: Uint8Array): KernelEnvelope {
  return packr.unpack(bytes) as KernelEnvelope;
}

let idPool = Buffer.alloc(0);
let idOffset = 0;
const idBytes = Buffer.alloc(16);

/**
 * A new message id: 16 bytes as base64url (22 characters), the first 6 the creation time in
 * milliseconds (big-endian), the other 10 random. Ids made close together share their leading
 * characters, so the receivers' dedupe index (`[to, id]`, kept a day) takes them at neighbouring keys:
 * fully random ids land each on a page of its own in that large B-tree, and a commit of a thousand
 * messages copied and wrote about a thousand pages. The time is no secret (every envelope carries
 * `ts` in the clear); 80 random bits keep ids of one millisecond apart. The first character is `A`
 * (the time's top six bits) until the year 2109, so an id never begins with `-` and a CLI does not
 * take it for an option. Random bytes are drawn in blocks because one `randomBytes` call per message
 * would dominate in-process delivery.
 */
export function newMessageId(): string {
  if (idOffset + 10 > idPool.length) {
    idPool = randomBytes(10 * 1024);
    idOffset = 0;
  }
  idBytes.writeUIntBE(Date.now(), 0, 6);
  idPool.copy(idBytes, 6, idOffset, idOffset + 10);
  idOffset += 10;
  return idBytes.toString('base64url');
}

/** The header fields of a wire envelope that the kernel keeps (`runtime/envelope` owns the wire type). */
type WireHeader = Omit<KernelEnvelope, 'v' | 'body' | 'sig'>;

/**
 * The in-process envelope for an accepted wire envelope, or for a checked session envelope (the
 * kernel's own form, decoded from a peer): the same header, with the decoded body in place of the
 * body bytes, and nothing else of what was decoded (no signature: inside the host the kernel is
 * trusted; no field the kernel does not know, such as a forged `items`).
 */
export function kernelEnvelopeFromWire(wire: WireHeader, body: unknown): KernelEnvelope {
  const env: KernelEnvelope = {
    v: 1,
    id: wire.id,
    type: wire.type,
    from: wire.from,
    to: wire.to,
    ts: wire.ts,
  };
  if (body !== undefined) env.body = body;
  if (wire.exp !== undefined) env.exp = wire.exp;
  if (wire.thread !== undefined) env.thread = wire.thread;
  if (wire.reply !== undefined) env.reply = wire.reply;
  if (wire.ctx !== undefined) env.ctx = wire.ctx;
  if (wire.actor !== undefined) env.actor = wire.actor;
  if (wire.cap !== undefined) env.cap = wire.cap;
  return env;
}
