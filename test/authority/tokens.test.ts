// Capability tokens: issue, delegate, check; every refusal code; forged and widened chains; revocation rules; audit of refusals.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { canonicalize, toB64u, utf8 } from '../../runtime/authority/canonical.ts';
import { type Revocation, revocationSigningInput } from '../../runtime/authority/revocation.ts';
import { encodeToken, TOKEN_PREFIX, type TokenLink } from '../../runtime/authority/tokens.ts';
import type { ManualClock } from '../../runtime/clock.ts';
import type { Host } from '../../runtime/host.ts';
import { cleanupTempDirs } from '../helpers/tmp.ts';
import {
  chain3 as chain3Of,
  closeHosts,
  codeOf,
  forgeChain,
  forgeLink,
  HOUR,
  identities,
  type LinkFields,
  openHost,
  T0,
} from './tokens-fixture.ts';

let host: Host;
let clock: ManualClock;
let owner: string;
let b: string;
let c: string;
let d: string;

beforeEach(async () => {
  ({ host, clock } = await openHost());
  [owner, b, c, d] = (await identities(host, 4)) as [string, string, string, string];
});

afterEach(async () => {
  await closeHosts();
  cleanupTempDirs();
});

const req = (actor: string, over: Record<string, unknown> = {}) => ({
  actor,
  owner,
  resource: 'vault:enc-1/notes',
  action: 'vault.put',
  ...over,
});

/** The owner grants b `vault.put` on `vault:enc-1`. */
function putGrant() {
  return host.authority.tokens.issue({
    issuer: owner,
    audience: b,
    resource: 'vault:enc-1',
    actions: ['vault.put'],
  });
}

const chain3 = (): string => chain3Of(host, [owner, b, c, d]);

describe('capability tokens', () => {
  it('grants a root token to its audience for the resource, sub-paths and listed actions', () => {
    const { token, grant } = host.authority.tokens.issue({
      issuer: owner,
      audience: b,
      resource: 'vault:enc-1',
      actions: ['vault.put', 'vault.get'],
      ttlMs: HOUR,
    });
    expect(token.startsWith(TOKEN_PREFIX)).toBe(true);
    expect(grant).toMatchObject({
      owner,
      issuer: owner,
      holder: b,
      resource: 'vault:enc-1',
      actions: ['vault.get', 'vault.put'],
    });
    expect(grant.expiresAt).toBe(T0 + HOUR);
    const ok = host.authority.tokens.check(token, req(b));
    expect(ok.id).toBe(grant.id);
    expect(codeOf(() => host.authority.tokens.check(token, req(b, { resource: 'vault:enc-1' })))).toBe(
      'ALLOWED',
    );
    expect(codeOf(() => host.authority.tokens.check(token, req(b, { resource: 'vault:enc-10' })))).toBe(
      'ANX_TOKEN_SCOPE',
    );
  });

  it('lets a three-link chain that only narrows reach its last holder, and nobody else', () => {
    const token = chain3();
    const grant = host.authority.tokens.check(token, req(d));
    expect(grant.chain).toHaveLength(3);
    expect(grant).toMatchObject({
      owner,
      issuer: c,
      holder: d,
      actions: ['vault.put'],
      expiresAt: T0 + HOUR,
    });
    expect(codeOf(() => host.authority.tokens.check(token, req(c)))).toBe('ANX_TOKEN_AUDIENCE');
    expect(codeOf(() => host.authority.tokens.check(token, req(d, { action: 'vault.get' })))).toBe(
      'ANX_TOKEN_SCOPE',
    );
    expect(codeOf(() => host.authority.tokens.check(token, req(d, { resource: 'vault:enc-1/other' })))).toBe(
      'ANX_TOKEN_SCOPE',
    );
  });

  it('refuses a chain that does not start at the resource owner', () => {
    const { token } = host.authority.tokens.issue({
      issuer: b,
      audience: c,
      resource: 'vault:enc-1',
      actions: ['vault.put'],
    });
    expect(codeOf(() => host.authority.tokens.check(token, req(c)))).toBe('ANX_TOKEN_SCOPE');
    expect(codeOf(() => host.authority.tokens.check(token, req(c, { owner: b })))).toBe('ALLOWED');
  });

  it('refuses expired and not-yet-valid tokens by the host clock or the given time', () => {
    const t = host.authority.tokens;
    const { token } = t.issue({
      issuer: owner,
      audience: b,
      resource: 'vault:enc-1',
      actions: ['vault.put'],
      ttlMs: HOUR,
    });
    clock.advance(HOUR);
    expect(codeOf(() => t.check(token, req(b)))).toBe('ANX_TOKEN_EXPIRED');
    expect(codeOf(() => t.check(token, req(b, { now: T0 + HOUR - 1 })))).toBe('ALLOWED');
    const later = t.issue({
      issuer: owner,
      audience: b,
      resource: 'vault:enc-1',
      actions: ['vault.put'],
      notBefore: clock.now() + HOUR,
      ttlMs: HOUR,
    });
    expect(codeOf(() => t.check(later.token, req(b)))).toBe('ANX_TOKEN_NOT_YET_VALID');
    clock.advance(HOUR);
    expect(codeOf(() => t.check(later.token, req(b)))).toBe('ALLOWED');
  });

  it('enforces constraints on every use: context values, stages and bytes written', () => {
    const t = host.authority.tokens;
    const { token } = t.issue({
      issuer: owner,
      audience: b,
      resource: 'vault:enc-1',
      actions: ['vault.put'],
      constraints: { ctx: { run_id: 'run-1' }, stages: ['implement', 'review'], max_bytes: 1_000 },
    });
    const ok = { context: { run_id: 'run-1', stage: 'review' }, bytes: 10 };
    expect(codeOf(() => t.check(token, req(b, ok)))).toBe('ALLOWED');
    expect(
      codeOf(() => t.check(token, req(b, { ...ok, context: { run_id: 'run-2', stage: 'review' } }))),
    ).toBe('ANX_TOKEN_SCOPE');
    expect(
      codeOf(() => t.check(token, req(b, { ...ok, context: { run_id: 'run-1', stage: 'deploy' } }))),
    ).toBe('ANX_TOKEN_SCOPE');
    expect(codeOf(() => t.check(token, req(b, { ...ok, bytes: 1_001 })))).toBe('ANX_TOKEN_SCOPE');
    expect(codeOf(() => t.check(token, req(b, { context: ok.context })))).toBe('ANX_TOKEN_SCOPE');
  });

  it('refuses to sign a delegation that would widen its parent, and audits the refusal', () => {
    const t = host.authority.tokens;
    const { token } = t.issue({
      issuer: owner,
      audience: b,
      resource: 'vault:enc-1/notes',
      actions: ['vault.put'],
      constraints: { max_bytes: 100 },
      ttlMs: HOUR,
    });
    expect(
      codeOf(() => t.delegate({ parent: token, audience: c, actions: ['vault.put', 'vault.delete'] })),
    ).toBe('ANX_TOKEN_WIDENED');
    expect(codeOf(() => t.delegate({ parent: token, audience: c, resource: 'vault:enc-1' }))).toBe(
      'ANX_TOKEN_WIDENED',
    );
    expect(codeOf(() => t.delegate({ parent: token, audience: c, constraints: { max_bytes: 101 } }))).toBe(
      'ANX_TOKEN_WIDENED',
    );
    expect(codeOf(() => t.delegate({ parent: token, audience: c, expiresAt: T0 + 2 * HOUR }))).toBe(
      'ANX_TOKEN_WIDENED',
    );
    // Constraints given are merged over the parent's: dropping one is impossible through the API.
    const narrowed = t.delegate({ parent: token, audience: c, constraints: { stages: ['x'] } });
    expect(narrowed.grant.constraints).toEqual({ max_bytes: 100, stages: ['x'] });
    const denials = host.authority.audit.list({ action: 'token.delegate', decision: 'deny' });
    expect(denials).toHaveLength(4);
    expect(denials.every((e) => e.code === 'ANX_TOKEN_WIDENED' && e.actor === b)).toBe(true);
  });

  it('refuses forged chains that widen, even when every signature is genuine', () => {
    const base: LinkFields = {
      iss: owner,
      aud: b,
      res: 'vault:enc-1/notes',
      act: ['vault.put'],
      cst: { max_bytes: 10 },
      nbf: T0,
      exp: T0 + HOUR,
    };
    const cases: Array<Partial<LinkFields>> = [
      { act: ['vault.delete', 'vault.put'] },
      { act: ['*'] },
      { res: 'vault:enc-1' },
      { res: '*' },
      { cst: {} },
      { cst: { max_bytes: 11 } },
      { exp: T0 + 2 * HOUR },
      { nbf: T0 - 1 },
    ];
    for (const widen of cases) {
      const token = forgeChain(host, [base, { ...base, iss: b, aud: c, ...widen }]);
      expect(codeOf(() => host.authority.tokens.check(token, req(c, { bytes: 1 })))).toBe(
        'ANX_TOKEN_WIDENED',
      );
    }
    const fine = forgeChain(host, [base, { ...base, iss: b, aud: c }]);
    expect(codeOf(() => host.authority.tokens.check(fine, req(c, { bytes: 1 })))).toBe('ALLOWED');
  });

  it('refuses chains whose links do not follow each other', () => {
    const base = { iss: owner, aud: b, res: 'vault:enc-1', act: ['vault.put'], nbf: T0, exp: T0 + HOUR };
    // Link 1 signed by someone the root did not grant to.
    const skipped = forgeChain(host, [base, { ...base, iss: c, aud: d }]);
    expect(codeOf(() => host.authority.tokens.check(skipped, req(d)))).toBe('ANX_TOKEN_INVALID');
    // Link 1 pointing at another parent.
    const root = forgeLink(host, base);
    const other = forgeLink(host, base);
    const child = forgeLink(host, { ...base, iss: b, aud: c }, other);
    expect(codeOf(() => host.authority.tokens.check(encodeToken([root, child]), req(c)))).toBe(
      'ANX_TOKEN_INVALID',
    );
    // A root that names a parent.
    expect(codeOf(() => host.authority.tokens.check(encodeToken([child]), req(c, { owner: b })))).toBe(
      'ANX_TOKEN_INVALID',
    );
  });

  it('refuses tampered, malformed and oversized tokens with ANX_TOKEN_INVALID', () => {
    const { token } = putGrant();
    const links = JSON.parse(
      Buffer.from(token.slice(TOKEN_PREFIX.length), 'base64url').toString(),
    ) as TokenLink[];
    const link = links[0] as TokenLink;
    const reencode = (l: unknown[]) => TOKEN_PREFIX + toB64u(utf8(canonicalize(l)));
    const bad: unknown[] = [
      '',
      'anx2.abc',
      `${TOKEN_PREFIX}!!!`,
      `${TOKEN_PREFIX}${toB64u(utf8('not json'))}`,
      reencode([]),
      reencode([{ ...link, act: ['vault.delete'] }]),
      reencode([{ ...link, exp: link.exp + 1 }]),
      reencode([{ ...link, cst: { max_bytes: 5 } }]),
      reencode([{ ...link, cst: { quota: 5 }, cth: link.cth }]),
      reencode([{ ...link, extra: 1 }]),
      reencode([{ ...link, v: 2 }]),
      reencode([{ ...link, aud: 'did:key:z6Mk' }]),
      reencode([{ ...link, nonce: 'short' }]),
      reencode(Array.from({ length: 9 }, () => link)),
      `${TOKEN_PREFIX}${toB64u(utf8(JSON.stringify([link], null, 1)))}`,
      TOKEN_PREFIX + 'A'.repeat(40_000),
      42,
      null,
    ];
    for (const t of bad)
      expect(codeOf(() => host.authority.tokens.check(t as string, req(b)))).toBe('ANX_TOKEN_INVALID');
    expect(codeOf(() => host.authority.tokens.check(token, req(b)))).toBe('ALLOWED');
  });

  it('revokes a link and every delegation under it, by an issuer at or above that link only', async () => {
    const t = host.authority.tokens;
    const token = chain3();
    const links = t.inspect(token).links;
    // d holds the token but issued nothing in it: it cannot revoke.
    await expect(t.revoke({ token, by: d })).rejects.toMatchObject({ code: 'ANX_REQUEST_INVALID' });
    // A revocation of link 0 signed by c (who issued only link 2) is stored but has no effect.
    const tid = t.inspect(token).chain[0] as string;
    const unsigned: Omit<Revocation, 'sig'> = {
      v: 1,
      tid,
      iss: c,
      ts: clock.now(),
      exp: links[0]?.exp as number,
    };
    const sig = toB64u(host.keystore.sign(c, revocationSigningInput(unsigned)));
    expect(await host.authority.revocations.add({ ...unsigned, sig })).toBe(true);
    expect(codeOf(() => t.check(token, req(d)))).toBe('ALLOWED');
    // b (issuer of link 1) revokes link 1: the whole chain below it is refused.
    await t.revoke({ token, by: b, linkIndex: 1, reason: 'left the team' });
    expect(codeOf(() => t.check(token, req(d)))).toBe('ANX_TOKEN_REVOKED');
    // ...and so is delegating it further.
    expect(codeOf(() => t.delegate({ parent: token, audience: c }))).toBe('ANX_TOKEN_REVOKED');
    const record = host.authority.audit.list({ action: 'token.revoke' })[0];
    expect(record).toMatchObject({ decision: 'allow', actor: b, principal: owner, reason: 'left the team' });
  });

  it('refuses revocations that are not signed by their issuer', async () => {
    const { token, grant } = putGrant();
    const unsigned: Omit<Revocation, 'sig'> = {
      v: 1,
      tid: grant.id,
      iss: owner,
      ts: clock.now(),
      exp: grant.expiresAt,
    };
    const forged = { ...unsigned, sig: toB64u(host.keystore.sign(b, revocationSigningInput(unsigned))) };
    await expect(host.authority.revocations.add(forged)).rejects.toMatchObject({
      code: 'ANX_REVOCATION_INVALID',
    });
    await expect(host.authority.revocations.add({ ...forged, tid: 'x' })).rejects.toMatchObject({
      code: 'ANX_REVOCATION_INVALID',
    });
    // What other hosts would refuse is not signed here either.
    await expect(
      host.authority.revocations.revoke({ tid: 'x', by: owner, exp: grant.expiresAt }),
    ).rejects.toMatchObject({ code: 'ANX_REVOCATION_INVALID' });
    await expect(
      host.authority.revocations.revoke({
        tid: grant.id,
        by: owner,
        exp: grant.expiresAt,
        reason: 'r'.repeat(1_025),
      }),
    ).rejects.toMatchObject({ code: 'ANX_REVOCATION_INVALID' });
    expect(host.authority.revocations.has(grant.id)).toBe(false);
    expect(codeOf(() => host.authority.tokens.check(token, req(b)))).toBe('ALLOWED');
  });

  it('fails closed when the revocation list cannot be read', () => {
    const { token } = putGrant();
    host.authority.revocations.setUnavailable('test: store unreadable');
    expect(codeOf(() => host.authority.tokens.check(token, req(b)))).toBe('ANX_REVOCATION_UNAVAILABLE');
    host.authority.revocations.setUnavailable(undefined);
    expect(codeOf(() => host.authority.tokens.check(token, req(b)))).toBe('ALLOWED');
  });

  it('fails closed when the LMDB environment holding the list is closed under it', async () => {
    const { token } = putGrant();
    await host.authority.audit.flush();
    // Reading a closed environment throws: the check must refuse, not allow.
    await host.store.root.close();
    expect(codeOf(() => host.authority.tokens.check(token, req(b), { audit: false }))).toBe(
      'ANX_REVOCATION_UNAVAILABLE',
    );
  });

  it('audits every refused check with the requested action and code', () => {
    const { token } = putGrant();
    expect(codeOf(() => host.authority.tokens.check(token, req(c)))).toBe('ANX_TOKEN_AUDIENCE');
    const denial = host.authority.audit.list({ action: 'token.check' })[0];
    expect(denial).toMatchObject({
      decision: 'deny',
      actor: c,
      principal: owner,
      code: 'ANX_TOKEN_AUDIENCE',
      details: { requested: 'vault.put' },
    });
    expect(codeOf(() => host.authority.tokens.check(token, req(c), { audit: false }))).toBe(
      'ANX_TOKEN_AUDIENCE',
    );
    expect(host.authority.audit.list({ action: 'token.check' })).toHaveLength(1);
  });

  it('refuses to issue while the host is frozen, and says what to do', async () => {
    await host.authority.freeze.freeze('operator');
    expect(() =>
      host.authority.tokens.issue({ issuer: owner, audience: b, resource: 'r', actions: ['a'] }),
    ).toThrow(/frozen/);
    await host.authority.freeze.thaw('operator');
    expect(
      codeOf(() =>
        host.authority.tokens.issue({ issuer: owner, audience: b, resource: 'r', actions: ['a'] }),
      ),
    ).toBe('ALLOWED');
  });

  it('rejects bad issue requests with typed request errors', () => {
    const t = host.authority.tokens;
    const stranger = 'did:agentnexus:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK';
    const bad: Array<Record<string, unknown>> = [
      { issuer: stranger, audience: b, resource: 'r', actions: ['a'] },
      { issuer: owner, audience: 'bob', resource: 'r', actions: ['a'] },
      { issuer: owner, audience: b, resource: 'has space', actions: ['a'] },
      { issuer: owner, audience: b, resource: 'r', actions: [] },
      { issuer: owner, audience: b, resource: 'r', actions: ['Bad Action'] },
      { issuer: owner, audience: b, resource: 'r', actions: ['a'], ttlMs: -1 },
      { issuer: owner, audience: b, resource: 'r', actions: ['a'], constraints: { ctx: { nope: 'x' } } },
    ];
    for (const r of bad) expect(codeOf(() => t.issue(r as never))).toBe('ANX_REQUEST_INVALID');
  });
});
