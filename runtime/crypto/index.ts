// Public entry of the crypto kernel: the suite interface, both suites, key conversion and the default pick.
import { describeValue } from '../errors.ts';
import { CryptoError } from './errors.ts';
import { createNobleSuite, nobleSuite } from './noble.ts';
import { createNodeSuite, type NodeSuiteOptions, nodeSuite } from './node.ts';
import type { CryptoSuite } from './suite.ts';

export { ed25519PublicToX25519, ed25519SeedToX25519Private } from './convert.ts';
export { DecryptError } from './errors.ts';
export type { CryptoSuite, NodeSuiteOptions };
export { CryptoError, createNobleSuite, createNodeSuite, nobleSuite, nodeSuite };

/** Environment variable that forces a suite: `node` or `noble`. */
export const CRYPTO_SUITE_ENV = 'ANX_CRYPTO_SUITE';

let nodeWorks: boolean | undefined;

// Some Node builds (or embedders) ship an OpenSSL without Ed25519; try one round trip once.
function nodeEd25519Works(): boolean {
  if (nodeWorks === undefined) {
    try {
      const seed = new Uint8Array(32).fill(7);
      const message = Uint8Array.of(1, 2, 3);
      const probe = createNodeSuite({ cacheSize: 1 });
      nodeWorks = probe.verify(probe.ed25519PublicKey(seed), message, probe.sign(seed, message));
    } catch {
      nodeWorks = false;
    }
  }
  return nodeWorks;
}

/**
 * The suite the runtime should use: `ANX_CRYPTO_SUITE=node|noble` when set, else the node:crypto
 * suite when its Ed25519 works, else the noble suite. Any other value of the variable is a `CryptoError`. Code that must run without node:crypto
 * (the browser playground) imports `noble.ts` directly instead of this entry.
 *
 * @example
 * ```ts
 * const suite = defaultSuite();
 * const sig = suite.sign(seed, message);
 * ```
 */
export function defaultSuite(env: Record<string, string | undefined> = process.env): CryptoSuite {
  const forced = env[CRYPTO_SUITE_ENV];
  if (forced === 'noble') return nobleSuite;
  if (forced === 'node') return nodeSuite;
  if (forced !== undefined && forced !== '') {
    throw new CryptoError(`${CRYPTO_SUITE_ENV} expected "node" or "noble", got ${describeValue(forced)}`, {
      hint: `unset ${CRYPTO_SUITE_ENV} or set it to node or noble`,
    });
  }
  return nodeEd25519Works() ? nodeSuite : nobleSuite;
}
