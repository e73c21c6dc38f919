// The published capability-token vectors (test/vectors/capability-tokens.json) checked byte for byte and verdict for verdict,
// with both crypto suites: another implementation can run the same checks.
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { canonicalize, toHex } from '../../runtime/authority/canonical.ts';
import type { Revocation } from '../../runtime/authority/revocation.ts';
import {
  constraintsHash,
  linkId,
  linkSigningInput,
  TOKEN_PREFIX,
  type TokenLink,
} from '../../runtime/authority/tokens.ts';
import { nobleSuite, nodeSuite } from '../../runtime/crypto/index.ts';
import { isAnxError } from '../../runtime/errors.ts';
import type { Host } from '../../runtime/host.ts';
import { cleanupTempDirs } from '../helpers/tmp.ts';
import { closeHosts, openHost } from './tokens-fixture.ts';

interface Vectors {
  identities: Record<string, { seedHex: string; did: string }>;
  constants: { tokenPrefix: string; linkSignatureDomainHex: string };
  valid: Array<{
    name: string;
    token: string;
    links: Array<{
      unsignedCanonicalJson: string;
      signingInputHex: string;
      constraintsCanonicalJson: string;
      cth: string;
      sig: string;
      id: string;
    }>;
    request: Record<string, unknown>;
    grant: Record<string, unknown>;
  }>;
  invalid: Array<{
    name: string;
    token: string;
    request: Record<string, unknown>;
    revocations?: Revocation[];
    code: string;
  }>;
  ineffectiveRevocations: Array<{
    name: string;
    token: string;
    request: Record<string, unknown>;
    revocations: Revocation[];
  }>;
}

const vectors = JSON.parse(
  readFileSync(new URL('../vectors/capability-tokens.json', import.meta.url), 'utf8'),
) as Vectors;
const linksOf = (token: string) =>
  JSON.parse(Buffer.from(token.slice(TOKEN_PREFIX.length), 'base64url').toString('utf8')) as TokenLink[];

// One host per case: revocations from one case must not leak into the next.
async function freshHost(): Promise<Host> {
  return (await openHost()).host;
}

function verdict(host: Host, token: string, request: Record<string, unknown>): string {
  try {
    host.authority.tokens.check(token, request as never, { audit: false });
    return 'ALLOWED';
  } catch (err) {
    if (isAnxError(err)) return err.code;
    throw err;
  }
}

let host: Host;
beforeAll(async () => {
  host = await freshHost();
});
afterAll(async () => {
  await closeHosts();
  cleanupTempDirs();
});

describe('capability token vectors', () => {
  it('match the constants', () => {
    expect(vectors.constants.tokenPrefix).toBe(TOKEN_PREFIX);
    expect(vectors.constants.linkSignatureDomainHex).toBe(toHex(new TextEncoder().encode('anx-cap-v1\0')));
  });

  for (const suite of [nodeSuite, nobleSuite]) {
    it(`reproduce every link byte for byte with the ${suite.name} suite`, () => {
      for (const v of vectors.valid) {
        const links = linksOf(v.token);
        expect(links).toHaveLength(v.links.length);
        links.forEach((link, i) => {
          const expected = v.links[i] as Vectors['valid'][number]['links'][number];
          const { sig: _sig, ...unsigned } = link;
          expect(canonicalize(unsigned)).toBe(expected.unsignedCanonicalJson);
          expect(toHex(linkSigningInput(link))).toBe(expected.signingInputHex);
          expect(canonicalize(link.cst)).toBe(expected.constraintsCanonicalJson);
          expect(constraintsHash(suite, link.cst)).toBe(expected.cth);
          expect(linkId(suite, link)).toBe(expected.id);
          const signer = Object.values(vectors.identities).find((p) => p.did === link.iss);
          const seed = new Uint8Array(Buffer.from(signer?.seedHex ?? '', 'hex'));
          expect(Buffer.from(suite.sign(seed, linkSigningInput(link))).toString('base64url')).toBe(
            expected.sig,
          );
        });
      }
    });
  }

  it('grant what the valid vectors say', () => {
    for (const v of vectors.valid) {
      const grant = host.authority.tokens.check(v.token, v.request as never, { audit: false });
      expect(grant, v.name).toMatchObject(v.grant);
    }
  });

  it('refuse each invalid vector with its code', async () => {
    for (const v of vectors.invalid) {
      const h = v.revocations === undefined ? host : await freshHost();
      for (const r of v.revocations ?? []) expect(await h.authority.revocations.add(r)).toBe(true);
      expect(verdict(h, v.token, v.request), v.name).toBe(v.code);
    }
  });

  it('ignore revocations by issuers below the revoked link', async () => {
    for (const v of vectors.ineffectiveRevocations) {
      const h = await freshHost();
      for (const r of v.revocations) expect(await h.authority.revocations.add(r)).toBe(true);
      expect(verdict(h, v.token, v.request), v.name).toBe('ALLOWED');
    }
  });
});
