// Session-mode frames on the wire: hello, accept and data, as fixed binary layouts (docs/protocol.md, "Session mode").
import { SessionFrameError } from './errors.ts';

export const FRAME_HELLO = 0x01;
export const FRAME_ACCEPT = 0x02;
export const FRAME_DATA = 0x03;

export const SID_BYTES = 16;
/** Bytes of a data frame before the ciphertext: type, sid, epoch (u32be), counter (u64be). */
export const DATA_HEADER_BYTES = 1 + SID_BYTES + 4 + 8;
const TAG_BYTES = 16;
const MAX_DID_BYTES = 256;

export interface HelloFrame {
  sid: Uint8Array;
  ts: number;
  epk: Uint8Array;
  sig: Uint8Array;
  from: string;
  to: string;
}

export interface AcceptFrame {
  sid: Uint8Array;
  epk: Uint8Array;
  sig: Uint8Array;
}

export interface DataFrame {
  sid: Uint8Array;
  epoch: number;
  counter: bigint;
  /** The first `DATA_HEADER_BYTES` of the frame: the AEAD's associated data. */
  header: Uint8Array;
  ciphertext: Uint8Array;
}

const utf8 = new TextEncoder();

/** A copy of bytes[start, end): a Node Buffer's `slice` is a view, and transports reuse their buffers. */
function copy(bytes: Uint8Array, start: number, end: number): Uint8Array {
  return new Uint8Array(bytes.subarray(start, end));
}
const fromUtf8 = new TextDecoder('utf-8', { fatal: true });

/** hello = 0x01 || sid(16) || u64be(ts) || epk(32) || sig(64) || u16be(len) from || u16be(len) to */
export function encodeHello(h: HelloFrame): Uint8Array {
  const from = utf8.encode(h.from);
  const to = utf8.encode(h.to);
  const out = new Uint8Array(1 + 16 + 8 + 32 + 64 + 2 + from.length + 2 + to.length);
  const view = new DataView(out.buffer);
  let o = 0;
  out[o++] = FRAME_HELLO;
  out.set(h.sid, o);
  o += 16;
  view.setBigUint64(o, BigInt(h.ts));
  o += 8;
  out.set(h.epk, o);
  o += 32;
  out.set(h.sig, o);
  o += 64;
  view.setUint16(o, from.length);
  o += 2;
  out.set(from, o);
  o += from.length;
  view.setUint16(o, to.length);
  o += 2;
  out.set(to, o);
  return out;
}

/** accept = 0x02 || sid(16) || epk(32) || sig(64) */
export function encodeAccept(a: AcceptFrame): Uint8Array {
  const out = new Uint8Array(1 + 16 + 32 + 64);
  out[0] = FRAME_ACCEPT;
  out.set(a.sid, 1);
  out.set(a.epk, 17);
  out.set(a.sig, 49);
  return out;
}

/** The associated data and first bytes of a data frame. */
export function encodeDataHeader(sid: Uint8Array, epoch: number, counter: bigint): Uint8Array {
  const out = new Uint8Array(DATA_HEADER_BYTES);
  const view = new DataView(out.buffer);
  out[0] = FRAME_DATA;
  out.set(sid, 1);
  view.setUint32(17, epoch);
  view.setBigUint64(21, counter);
  return out;
}

/** The frame type byte, or a `SessionFrameError` for empty input. */
export function frameType(bytes: Uint8Array): number {
  if (!(bytes instanceof Uint8Array) || bytes.length === 0)
    throw new SessionFrameError('session frame expected at least 1 byte, got none');
  return bytes[0] as number;
}

function need(bytes: Uint8Array, n: number, what: string): void {
  if (bytes.length < n)
    throw new SessionFrameError(`${what} expected at least ${n} bytes, got ${bytes.length}`);
}

export function decodeHello(bytes: Uint8Array): HelloFrame {
  need(bytes, 1 + 16 + 8 + 32 + 64 + 4, 'hello frame');
  if (bytes[0] !== FRAME_HELLO) throw new SessionFrameError(`hello frame expected type 1, got ${bytes[0]}`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let o = 1;
  const sid = copy(bytes, o, o + 16);
  o += 16;
  const ts = view.getBigUint64(o);
  o += 8;
  if (ts > BigInt(Number.MAX_SAFE_INTEGER))
    throw new SessionFrameError('hello frame "ts" expected at most 2^53-1');
  const epk = copy(bytes, o, o + 32);
  o += 32;
  const sig = copy(bytes, o, o + 64);
  o += 64;
  const strings: string[] = [];
  for (const name of ['from', 'to']) {
    need(bytes, o + 2, 'hello frame');
    const len = view.getUint16(o);
    o += 2;
    if (len === 0 || len > MAX_DID_BYTES)
      throw new SessionFrameError(`hello frame "${name}" expected 1 to ${MAX_DID_BYTES} bytes, got ${len}`);
    need(bytes, o + len, 'hello frame');
    try {
      strings.push(fromUtf8.decode(bytes.subarray(o, o + len)));
    } catch {
      throw new SessionFrameError(`hello frame "${name}" expected UTF-8 text`);
    }
    o += len;
  }
  if (o !== bytes.length) throw new SessionFrameError(`hello frame has ${bytes.length - o} trailing bytes`);
  return { sid, ts: Number(ts), epk, sig, from: strings[0] as string, to: strings[1] as string };
}

export function decodeAccept(bytes: Uint8Array): AcceptFrame {
  if (bytes.length !== 113)
    throw new SessionFrameError(`accept frame expected 113 bytes, got ${bytes.length}`);
  if (bytes[0] !== FRAME_ACCEPT) throw new SessionFrameError(`accept frame expected type 2, got ${bytes[0]}`);
  return { sid: copy(bytes, 1, 17), epk: copy(bytes, 17, 49), sig: copy(bytes, 49, 113) };
}

export function decodeData(bytes: Uint8Array): DataFrame {
  need(bytes, DATA_HEADER_BYTES + TAG_BYTES, 'data frame');
  if (bytes[0] !== FRAME_DATA) throw new SessionFrameError(`data frame expected type 3, got ${bytes[0]}`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return {
    sid: bytes.subarray(1, 17),
    epoch: view.getUint32(17),
    counter: view.getBigUint64(21),
    header: bytes.subarray(0, DATA_HEADER_BYTES),
    ciphertext: bytes.subarray(DATA_HEADER_BYTES),
  };
}

/** The session id as text (map keys, messages). */
export function sidText(sid: Uint8Array): string {
  return Buffer.from(sid.buffer, sid.byteOffset, sid.byteLength).toString('hex');
}
