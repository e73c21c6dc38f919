// Bench group 'crypto': our suites against raw node:crypto with pre-imported keys, measured in the same run.
import {
  createCipheriv,
  createDecipheriv,
  createPrivateKey,
  createPublicKey,
  sign as rawSign,
  verify as rawVerify,
} from 'node:crypto';
import { createNobleSuite, createNodeSuite } from '../../runtime/crypto/index.ts';
import { type BenchGroup, type BenchResult, median, opsPerSecond, withRatio } from './harness.ts';

const REPEATS = 3;
const MS = 600;
// About the size of an envelope's signing input.
const MESSAGE_BYTES = 256;

function fmt(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

/** Runs each contender `REPEATS` times, interleaved so drift on a noisy machine hits all alike; medians. */
function race(contenders: Record<string, () => void>, ms: number, batch: number): Record<string, number> {
  const samples: Record<string, number[]> = {};
  for (let r = 0; r < REPEATS; r++) {
    for (const [name, fn] of Object.entries(contenders)) {
      const list = samples[name] ?? [];
      list.push(opsPerSecond(fn, ms, batch));
      samples[name] = list;
    }
  }
  const out: Record<string, number> = {};
  for (const [name, values] of Object.entries(samples)) out[name] = median(values);
  return out;
}

function ratioResult(id: string, ours: number, raw: number): BenchResult {
  const value = raw === 0 ? 0 : ours / raw;
  return {
    id,
    value,
    unit: 'ratio',
    raw,
    ratio: value,
    note: `ours ${fmt(ours)} ops/s vs raw ${fmt(raw)} ops/s`,
  };
}

/** Ed25519 sign/verify and AES-256-GCM through our suites, each next to the raw node:crypto figure. */
export const cryptoGroup: BenchGroup = {
  name: 'crypto',
  async run(log) {
    const node = createNodeSuite();
    const noble = createNobleSuite();
    const seed = node.randomBytes(32);
    const message = node.randomBytes(MESSAGE_BYTES);
    const publicKey = node.ed25519PublicKey(seed);
    const signature = node.sign(seed, message);

    // The raw layer: key objects imported once, as a careful hand-written caller would.
    const privateKeyObject = createPrivateKey({
      key: Buffer.concat([Buffer.from('302e020100300506032b657004220420', 'hex'), seed]),
      format: 'der',
      type: 'pkcs8',
    });
    const publicKeyObject = createPublicKey(privateKeyObject);
    if (
      !rawVerify(null, message, publicKeyObject, signature) ||
      !node.verify(publicKey, message, signature)
    ) {
      throw new Error('crypto bench: raw node:crypto and the node suite disagree on a signature');
    }

    log(
      `crypto: Ed25519 sign/verify of ${MESSAGE_BYTES} bytes, node suite vs raw node:crypto (${REPEATS}×${MS} ms)`,
    );
    const ed = race(
      {
        rawSign: () => rawSign(null, message, privateKeyObject),
        oursSign: () => node.sign(seed, message),
        rawVerify: () => rawVerify(null, message, publicKeyObject, signature),
        oursVerify: () => node.verify(publicKey, message, signature),
      },
      MS,
      50,
    );
    const rawSignPerS = ed['rawSign'] ?? 0;
    const oursSignPerS = ed['oursSign'] ?? 0;
    const rawVerifyPerS = ed['rawVerify'] ?? 0;
    const oursVerifyPerS = ed['oursVerify'] ?? 0;

    log('crypto: Ed25519 through the noble suite');
    const nobleSignPerS = opsPerSecond(() => noble.sign(seed, message), 800, 5);
    const nobleVerifyPerS = opsPerSecond(() => noble.verify(publicKey, message, signature), 800, 2);

    log('crypto: AES-256-GCM encrypt+decrypt of 1 KiB, node suite vs raw node:crypto');
    const key = node.randomBytes(32);
    const nonce = node.randomBytes(12);
    const plaintext = node.randomBytes(1024);
    const aad = node.randomBytes(32);
    const aead = race(
      {
        raw: () => {
          const cipher = createCipheriv('aes-256-gcm', key, nonce, { authTagLength: 16 });
          cipher.setAAD(aad);
          const body = Buffer.concat([cipher.update(plaintext), cipher.final()]);
          const decipher = createDecipheriv('aes-256-gcm', key, nonce, { authTagLength: 16 });
          decipher.setAuthTag(cipher.getAuthTag());
          decipher.setAAD(aad);
          decipher.update(body);
          decipher.final();
        },
        ours: () => node.aesGcmDecrypt(key, nonce, node.aesGcmEncrypt(key, nonce, plaintext, aad), aad),
      },
      400,
      50,
    );
    const rawAeadPerS = aead['raw'] ?? 0;
    const oursAeadPerS = aead['ours'] ?? 0;

    const rawNote = 'raw = node:crypto with pre-imported KeyObjects, same run';
    return [
      ratioResult('crypto.sign_ratio', oursSignPerS, rawSignPerS),
      ratioResult('crypto.verify_ratio', oursVerifyPerS, rawVerifyPerS),
      withRatio('crypto.sign_per_s', oursSignPerS, 'ops/s', rawSignPerS, rawNote),
      withRatio('crypto.verify_per_s', oursVerifyPerS, 'ops/s', rawVerifyPerS, rawNote),
      withRatio('crypto.noble_sign_per_s', nobleSignPerS, 'ops/s', rawSignPerS, `noble suite; ${rawNote}`),
      withRatio(
        'crypto.noble_verify_per_s',
        nobleVerifyPerS,
        'ops/s',
        rawVerifyPerS,
        `noble suite; ${rawNote}`,
      ),
      withRatio(
        'crypto.aead_1k_per_s',
        oursAeadPerS,
        'ops/s',
        rawAeadPerS,
        'one op = encrypt + decrypt of 1 KiB with 32-byte AAD; raw = createCipheriv/createDecipheriv, same run',
      ),
    ];
  },
};
