// An established session: one AES-256-GCM key per direction, counters as nonces, rekeying, replay and reorder refusal.
import type { CryptoSuite } from '../crypto/suite.ts';
import { SessionDecryptError, SessionFrameError, SessionReorderError, SessionReplayError } from './errors.ts';
import { DATA_HEADER_BYTES, type DataFrame, decodeData, encodeDataHeader } from './frame.ts';
import type { SessionKeys } from './handshake.ts';

/** HKDF info of the next epoch's key: ASCII `anx-session-rekey`, 0x00, then u32be(next epoch). */
export function rekeyInfo(epoch: number): Uint8Array {
  const prefix = new TextEncoder().encode('anx-session-rekey\0');
  const out = new Uint8Array(prefix.length + 4);
  out.set(prefix, 0);
  new DataView(out.buffer).setUint32(prefix.length, epoch);
  return out;
}

/** The key of epoch `epoch + 1`: HKDF-SHA256(IKM = key of `epoch`, salt = empty, info = rekeyInfo(epoch + 1)). */
export function nextEpochKey(suite: CryptoSuite, key: Uint8Array, epoch: number): Uint8Array {
  return suite.hkdfSha256(key, new Uint8Array(0), rekeyInfo(epoch + 1), 32);
}

/** The AES-GCM nonce of a frame: u32be(epoch) || u64be(counter). */
export function frameNonce(epoch: number, counter: bigint): Uint8Array {
  const out = new Uint8Array(12);
  const view = new DataView(out.buffer);
  view.setUint32(0, epoch);
  view.setBigUint64(4, counter);
  return out;
}

export interface SessionOptions {
  /** Messages after which the sender moves to the next epoch's key. Default 2^20. */
  rekeyMessages?: number;
  /** Plaintext bytes after which the sender moves to the next epoch's key. Default 2^30. */
  rekeyBytes?: number;
  /**
   * `strict`: each frame must carry exactly the next counter (data: order kept, gaps refused);
   * `monotonic`: counters must only grow (acknowledgements: losses allowed). Default strict.
   */
  receiveOrder?: 'strict' | 'monotonic';
}

/**
 * Both directions of one session between two DIDs. `seal` makes the next data frame; `open` checks
 * a received one and returns its plaintext, refusing replays (`SessionReplayError`), gaps and
 * reordering (`SessionReorderError`, strict order) and forgeries (`SessionDecryptError`). The
 * receive counter moves only after a frame authenticated, so a forged frame cannot desynchronise it.
 *
 * @example
 * ```ts
 * const session = new Session(suite, keys);
 * transport.sendToDid(peer, session.seal(payload));
 * const plaintext = peerSession.open(frameBytes);
 * ```
 */
export class Session {
  readonly sid: Uint8Array;
  private sendKey: Uint8Array;
  private sendEpoch = 0;
  private sendCounter = 0n;
  private sentInEpoch = 0;
  private sentBytesInEpoch = 0;
  private receiveKey: Uint8Array;
  private receiveEpoch = 0;
  private nextReceive = 0n;
  private readonly rekeyMessages: number;
  private readonly rekeyBytes: number;
  private readonly strict: boolean;

  constructor(
    private readonly suite: CryptoSuite,
    readonly keys: SessionKeys,
    options: SessionOptions = {},
  ) {
    this.sid = keys.sid;
    this.sendKey = keys.sendKey;
    this.receiveKey = keys.receiveKey;
    this.rekeyMessages = options.rekeyMessages ?? 2 ** 20;
    this.rekeyBytes = options.rekeyBytes ?? 2 ** 30;
    this.strict = (options.receiveOrder ?? 'strict') === 'strict';
  }

  /** The peer's DID. */
  get peer(): string {
    return this.keys.role === 'initiator' ? this.keys.responder : this.keys.initiator;
  }

  get epoch(): { send: number; receive: number } {
    return { send: this.sendEpoch, receive: this.receiveEpoch };
  }

  /** Frames sealed so far (the next send counter). */
  get sent(): bigint {
    return this.sendCounter;
  }

  /** Encrypts one message into a data frame: header (type, sid, epoch, counter) || AES-256-GCM(ciphertext || tag). */
  seal(plaintext: Uint8Array): Uint8Array {
    if (this.sentInEpoch >= this.rekeyMessages || this.sentBytesInEpoch >= this.rekeyBytes) this.rekeySend();
    const counter = this.sendCounter++;
    this.sentInEpoch++;
    this.sentBytesInEpoch += plaintext.length;
    const header = encodeDataHeader(this.sid, this.sendEpoch, counter);
    const sealed = this.suite.aesGcmEncrypt(
      this.sendKey,
      frameNonce(this.sendEpoch, counter),
      plaintext,
      header,
    );
    const out = new Uint8Array(DATA_HEADER_BYTES + sealed.length);
    out.set(header, 0);
    out.set(sealed, DATA_HEADER_BYTES);
    return out;
  }

  /** Checks and decrypts one data frame (bytes, or already decoded). */
  open(input: Uint8Array | DataFrame): Uint8Array {
    const frame = input instanceof Uint8Array ? decodeData(input) : input;
    if (!sameSid(frame.sid, this.sid))
      throw new SessionFrameError('data frame expected this session id, got another');
    if (frame.counter < this.nextReceive) throw new SessionReplayError(frame.counter, this.nextReceive);
    if (this.strict && frame.counter > this.nextReceive)
      throw new SessionReorderError(frame.counter, this.nextReceive);
    let key: Uint8Array;
    if (frame.epoch === this.receiveEpoch) key = this.receiveKey;
    else if (frame.epoch === this.receiveEpoch + 1)
      key = nextEpochKey(this.suite, this.receiveKey, this.receiveEpoch);
    else throw new SessionReorderError(frame.counter, this.nextReceive);
    let plaintext: Uint8Array;
    try {
      plaintext = this.suite.aesGcmDecrypt(
        key,
        frameNonce(frame.epoch, frame.counter),
        frame.ciphertext,
        frame.header,
      );
    } catch (cause) {
      throw new SessionDecryptError('data frame does not authenticate under the session key', cause);
    }
    if (frame.epoch !== this.receiveEpoch) {
      this.receiveKey.fill(0);
      this.receiveKey = key;
      this.receiveEpoch = frame.epoch;
    }
    this.nextReceive = frame.counter + 1n;
    return plaintext;
  }

  /** Erases the keys. */
  destroy(): void {
    this.sendKey.fill(0);
    this.receiveKey.fill(0);
  }

  private rekeySend(): void {
    const next = nextEpochKey(this.suite, this.sendKey, this.sendEpoch);
    this.sendKey.fill(0);
    this.sendKey = next;
    this.sendEpoch++;
    this.sentInEpoch = 0;
    this.sentBytesInEpoch = 0;
  }
}

function sameSid(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
