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

/**
 * A new message id: 16 random bytes as base64url (22 characters). Random bytes are drawn in
 * blocks because one `randomBytes` call per message would dominate in-process delivery. An id
 * never begins with `-` (the first six bits are never 62), so a CLI does not take it for an option.
 */
export function newMessageId(): string {
  if (idOffset + 16 > idPool.length) {
    idPool = randomBytes(16 * 1024);
    idOffset = 0;
  }
  if (((idPool[idOffset] as number) & 0xfc) === 0xf8) idPool[idOffset] = (idPool[idOffset] as number) ^ 0x04;
  const id = idPool.toString('base64url', idOffset, idOffset + 16);
  idOffset += 16;
  return id;
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
