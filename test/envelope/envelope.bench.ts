// Bench group 'envelope': codec, signing and receive throughput as ratios against raw msgpackr and raw Ed25519.
// Run alone: npx tsx test/envelope/envelope.bench.ts
import { pathToFileURL } from 'node:url';
import { Packr } from 'msgpackr';
import { ed25519SeedToX25519Private } from '../../runtime/crypto/convert.ts';
import { nodeSuite } from '../../runtime/crypto/node.ts';
import {
  acceptEnvelope,
  createEnvelope,
  decodeBody,
  decodeEnvelope,
  type Envelope,
  encodeBody,
  encodeEnvelope,
  type ReplayGuard,
  seal,
  signEnvelope,
} from '../../runtime/envelope/index.ts';
import { identityFromSeed } from '../../runtime/identity/keys.ts';
import { type BenchGroup, type BenchResult, median, opsPerSecond, withRatio } from '../bench/harness.ts';

const REPEATS = 3;
const MS = 600;

// Interleaved repeats so that drift on a noisy machine hits every contender alike; medians.
function race(contenders: Record<string, () => void>): Record<string, number> {
  const samples: Record<string, number[]> = {};
  for (let r = 0; r < REPEATS; r++) {
    for (const [name, fn] of Object.entries(contenders)) {
      samples[name] = [...(samples[name] ?? []), opsPerSecond(fn, MS, 100)];
    }
  }
  return Object.fromEntries(Object.entries(samples).map(([k, v]) => [k, median(v)]));
}

/** The 'envelope' bench group, for `npm run bench`. */
export const envelopeGroup: BenchGroup = {
  name: 'envelope',
  async run(log) {
    const alice = identityFromSeed(new Uint8Array(32).fill(1), nodeSuite);
    const bob = identityFromSeed(new Uint8Array(32).fill(2), nodeSuite);
    const payload = {
      title: 'review the spec',
      text: 'x'.repeat(1100),
      refs: [{ enclave_id: 'demo', key: 'design/spec.md', version: 3, hash: 'ab'.repeat(16) }],
    };
    const env = signEnvelope(
      createEnvelope({
        type: 'task.propose',
        from: alice.did,
        to: bob.did,
        ctx: { run_id: 'r1' },
        body: payload,
      }),
      alice.seed,
      nodeSuite,
    );
    const bytes = encodeEnvelope(env);
    log(`envelope of ${bytes.length} bytes`);
    // The raw layer: the same envelope as one plain msgpack object, payload inline.
    const rawPackr = new Packr({ useRecords: false });
    const rawObject = { ...env, body: payload };

    const codec = race({
      raw: () => {
        rawPackr.unpack(rawPackr.pack(rawObject));
      },
      envelope: () => {
        decodeEnvelope(encodeEnvelope(env));
      },
      withBody: () => {
        const e: Envelope = { ...env, body: encodeBody(payload) };
        decodeBody(decodeEnvelope(encodeEnvelope(e)).body);
      },
    });

    const seedRaw = alice.seed;
    const unsigned = { ...env, sig: undefined };
    const sign = race({
      raw: () => {
        nodeSuite.sign(seedRaw, bytes.subarray(0, 256));
      },
      envelope: () => {
        signEnvelope(unsigned, alice.seed, nodeSuite);
      },
    });

    const noGuard: ReplayGuard = { seen: () => false, remember: () => {} };
    const pub = alice.publicKey;
    const sig = env.sig as Uint8Array;
    const sealedBytes = encodeEnvelope(
      seal(env, { senderSeed: alice.seed, recipientDid: bob.did, suite: nodeSuite }),
    );
    const bobX = ed25519SeedToX25519Private(bob.seed);
    const receive = race({
      raw: () => {
        nodeSuite.verify(pub, bytes.subarray(0, 256), sig);
      },
      plain: () => {
        acceptEnvelope(bytes, { suite: nodeSuite, guard: noGuard, windowMs: Number.MAX_SAFE_INTEGER });
      },
      sealed: () => {
        acceptEnvelope(sealedBytes, {
          suite: nodeSuite,
          guard: noGuard,
          windowMs: Number.MAX_SAFE_INTEGER,
          recipientX25519Private: bobX,
        });
      },
    });

    const n = (x: number | undefined) => x ?? 0;
    const results: BenchResult[] = [
      withRatio(
        'envelope.codec',
        n(codec.envelope),
        'ops/s',
        n(codec.raw),
        'encode+decode, body bytes as is',
      ),
      withRatio(
        'envelope.codec+body',
        n(codec.withBody),
        'ops/s',
        n(codec.raw),
        'also encodes and decodes the payload',
      ),
      withRatio('envelope.sign', n(sign.envelope), 'ops/s', n(sign.raw), 'raw: Ed25519 sign of 256 bytes'),
      withRatio(
        'envelope.accept',
        n(receive.plain),
        'ops/s',
        n(receive.raw),
        'raw: Ed25519 verify of 256 bytes',
      ),
      withRatio(
        'envelope.accept.sealed',
        n(receive.sealed),
        'ops/s',
        n(receive.raw),
        'verify + X25519 + HKDF + GCM',
      ),
    ];
    return results;
  },
};

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const results = await envelopeGroup.run((line) => process.stderr.write(`${line}\n`));
  for (const r of results) {
    process.stdout.write(
      `${r.id.padEnd(24)} ${Math.round(r.value).toLocaleString('en-US').padStart(10)} ${r.unit}  raw ${Math.round(
        r.raw ?? 0,
      )
        .toLocaleString('en-US')
        .padStart(10)}  ratio ${(r.ratio ?? 0).toFixed(2)}  ${r.note ?? ''}\n`,
    );
  }
}
