// Token checks with signatures verified on worker threads: the same grants, refusals and audit records as the synchronous check; prepared tokens need no signature work at the point of use.
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { canonicalize, toB64u, utf8 } from '../../runtime/authority/canonical.ts';
import { TokenService } from '../../runtime/authority/index.ts';
import { TOKEN_PREFIX, type TokenLink } from '../../runtime/authority/tokens.ts';
import type { CryptoSuite } from '../../runtime/crypto/suite.ts';
import { VerifyPool } from '../../runtime/crypto/verify-pool.ts';
import type { Host } from '../../runtime/host.ts';
import { cleanupTempDirs } from '../helpers/tmp.ts';
import {
  chain3 as chain3Of,
  closeHosts,
  codeOf,
  codeOfAsync,
  forgeChain,
  HOUR,
  identities,
  openHost,
  T0,
} from './tokens-fixture.ts';

let host: Host;
let owner: string;
let b: string;
let c: string;
let d: string;
const pool = new VerifyPool({ threads: 2 });

beforeEach(async () => {
  ({ host } = await openHost());
  [owner, b, c, d] = (await identities(host, 4)) as [string, string, string, string];
});

afterEach(async () => {
  await closeHosts();
  cleanupTempDirs();
});

afterAll(async () => {
  await pool.close();
});

const req = (actor: string) => ({ actor, owner, resource: 'vault:enc-1/notes/a.md', action: 'vault.put' });

/** A service over the host's state whose suite counts signature verifications. */
function countingService(): { service: TokenService; verifies: () => number } {
  let count = 0;
  const suite: CryptoSuite = {
    ...host.suite,
    verify: (k, m, s) => {
      count++;
      return host.suite.verify(k, m, s);
    },
  };
  const service = new TokenService({
    suite,
    clock: host.clock,
    signer: host.keystore,
    revocations: host.authority.revocations,
    audit: host.authority.audit,
    freeze: host.authority.freeze,
    verifyPool: pool,
  });
  return { service, verifies: () => count };
}

const chain3 = (): string => chain3Of(host, [owner, b, c, d]);

/** Re-encodes a token's links with each link's JSON keys in reverse order (same content, not canonical). */
function reversedKeys(token: string): string {
  const links = JSON.parse(
    Buffer.from(token.slice(TOKEN_PREFIX.length), 'base64url').toString(),
  ) as TokenLink[];
  const reversed = links.map((l) => Object.fromEntries(Object.entries(l).reverse()));
  return TOKEN_PREFIX + toB64u(utf8(JSON.stringify(reversed)));
}

describe('TokenService.checkAsync', () => {
  it('grants what check grants, and nothing to anybody else', async () => {
    const token = chain3();
    const { service } = countingService();
    const grant = await service.checkAsync(token, req(d));
    expect(grant).toEqual(host.authority.tokens.check(token, req(d)));
    expect(grant.chain).toHaveLength(3);
    expect(await codeOfAsync(() => service.checkAsync(token, req(c)))).toBe('ANX_TOKEN_AUDIENCE');
  });

  it('refuses every bad token with the code check gives, and audits the refusal', async () => {
    const good = chain3();
    const links = JSON.parse(
      Buffer.from(good.slice(TOKEN_PREFIX.length), 'base64url').toString(),
    ) as TokenLink[];
    const reencode = (l: unknown[]) => TOKEN_PREFIX + toB64u(utf8(canonicalize(l)));
    const forgedSig = links.map((l, i) => (i === 2 ? { ...l, sig: links[0]?.sig } : l));
    const widened = forgeChain(host, [
      { iss: owner, aud: b, res: 'vault:enc-1', act: ['vault.put'], nbf: T0 - HOUR, exp: T0 + HOUR },
      {
        iss: b,
        aud: d,
        res: 'vault:enc-1',
        act: ['vault.put', 'vault.delete'],
        nbf: T0 - HOUR,
        exp: T0 + HOUR,
      },
    ]);
    const stray = `${good.slice(0, -1)}${good.endsWith('A') ? 'B' : 'A'}`;
    const bad = [
      reencode(forgedSig),
      reencode([links[0], links[2]]),
      reversedKeys(good),
      widened,
      stray,
      `${TOKEN_PREFIX}${toB64u(utf8(JSON.stringify(links, null, 1)))}`,
      'anx1.',
    ];
    const { service } = countingService();
    for (const token of bad) {
      const sync = codeOf(() => host.authority.tokens.check(token, req(d), { audit: false }));
      expect(sync).not.toBe('ALLOWED');
      const before = host.authority.audit.list({ action: 'token.check' }).length;
      expect(await codeOfAsync(() => service.checkAsync(token, req(d)))).toBe(sync);
      expect(host.authority.audit.list({ action: 'token.check' })).toHaveLength(before + 1);
    }
    let message = '';
    await service.checkAsync(bad[0] as string, req(d), { audit: false }).catch((e: Error) => {
      message = e.message;
    });
    expect(message).toMatch(/token link 2: the signature does not verify/);
  });

  it('checks hundreds of distinct chains at once, each on its own merits', async () => {
    const { service } = countingService();
    const tokens = Array.from({ length: 120 }, () => chain3());
    tokens[37] = reversedKeys(tokens[37] as string);
    const codes = await Promise.all(tokens.map((t) => codeOfAsync(() => service.checkAsync(t, req(d)))));
    expect(codes.filter((code) => code === 'ALLOWED')).toHaveLength(119);
    expect(codes[37]).toBe('ANX_TOKEN_INVALID');
  });
});

describe('TokenService.prepare', () => {
  it('verifies the signatures ahead, so the check at the point of use verifies none', async () => {
    const { service, verifies } = countingService();
    const token = chain3();
    await service.prepare(token);
    expect(verifies()).toBe(0);
    expect(service.check(token, req(d)).holder).toBe(d);
    expect(verifies()).toBe(0);
  });

  it('never throws, and leaves a bad token to be refused and audited by the check', async () => {
    const { service } = countingService();
    const token = reversedKeys(chain3());
    await expect(service.prepare(token)).resolves.toBeUndefined();
    await expect(service.prepare(42)).resolves.toBeUndefined();
    const before = host.authority.audit.list({ action: 'token.check' }).length;
    expect(codeOf(() => service.check(token, req(d)))).toBe('ANX_TOKEN_INVALID');
    expect(host.authority.audit.list({ action: 'token.check' })).toHaveLength(before + 1);
  });

  it('remembers a refusal, so a token whose signature failed on the pool is not verified again at its check', async () => {
    const { service, verifies } = countingService();
    const good = chain3();
    const links = JSON.parse(
      Buffer.from(good.slice(TOKEN_PREFIX.length), 'base64url').toString(),
    ) as TokenLink[];
    const forged =
      TOKEN_PREFIX +
      toB64u(utf8(canonicalize(links.map((l, i) => (i === 2 ? { ...l, sig: links[0]?.sig } : l)))));
    await service.prepare(forged);
    const before = host.authority.audit.list({ action: 'token.check' }).length;
    expect(() => service.check(forged, req(d))).toThrow(/token link 2: the signature does not verify/);
    expect(verifies()).toBe(0);
    expect(host.authority.audit.list({ action: 'token.check' })).toHaveLength(before + 1);
    // The genuine token is not tarred with it.
    expect(service.check(good, req(d)).holder).toBe(d);
  });
});
