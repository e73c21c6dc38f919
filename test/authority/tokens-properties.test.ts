// Properties of delegation (fast-check): no delegation, honest or forged, lets anyone do anything its parent did not allow.
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TokenError } from '../../runtime/authority/errors.ts';
import type { TokenConstraints, TokenGrant, TokenRequest } from '../../runtime/authority/tokens.ts';
import { isAnxError } from '../../runtime/errors.ts';
import type { Host } from '../../runtime/host.ts';
import { cleanupTempDirs } from '../helpers/tmp.ts';
import { closeHosts, forgeChain, HOUR, identities, type LinkFields, openHost, T0 } from './tokens-fixture.ts';

let host: Host;
let dids: string[];

beforeAll(async () => {
  ({ host } = await openHost());
  dids = await identities(host, 4);
});

afterAll(async () => {
  await closeHosts();
  cleanupTempDirs();
});

const ACTIONS = ['vault.get', 'vault.put', 'vault.delete', 'run.abort', 'dispatch'];
const RESOURCES = [
  '*',
  'vault:e1',
  'vault:e1/notes',
  'vault:e1/notes/a.md',
  'vault:e1/code',
  'vault:e2',
  'run:r1',
];
const STAGES = ['design', 'implement', 'review'];

const actionsArb = fc.oneof(
  fc.constant<string[]>(['*']),
  fc.uniqueArray(fc.constantFrom(...ACTIONS), { minLength: 1, maxLength: 4 }),
);
const constraintsArb: fc.Arbitrary<TokenConstraints> = fc.record(
  {
    ctx: fc.record({ run_id: fc.constantFrom('r1', 'r2') }, { requiredKeys: [] }),
    stages: fc.uniqueArray(fc.constantFrom(...STAGES), { minLength: 1, maxLength: 3 }),
    max_bytes: fc.integer({ min: 0, max: 2_000 }),
  },
  { requiredKeys: [] },
);
const requestArb: fc.Arbitrary<Req> = fc.record({
  aim: fc.boolean(),
  resource: fc.constantFrom(...RESOURCES.filter((r) => r !== '*'), 'vault:e1/notes/b.md', 'vault:e10'),
  action: fc.constantFrom(...ACTIONS),
  // Mostly requests that can meet constraints, so that many are allowed and the property has teeth.
  run: fc.option(fc.constantFrom('r1', 'r2'), { nil: undefined, freq: 8 }),
  stage: fc.option(fc.constantFrom(...STAGES, 'deploy'), { nil: undefined, freq: 8 }),
  bytes: fc.option(fc.integer({ min: 0, max: 2_500 }), { nil: undefined, freq: 8 }),
  offset: fc.integer({ min: 0, max: 2 * HOUR }),
});

interface Req {
  /** Aim the request at what the token under test grants (else it is random): gives the property allowed cases to bite on. */
  aim: boolean;
  resource: string;
  action: string;
  run: string | undefined;
  stage: string | undefined;
  bytes: number | undefined;
  offset: number;
}

function requestOf(r: Req, actor: string, target?: TokenGrant): TokenRequest {
  let { resource, action, run, stage, bytes, offset } = r;
  if (r.aim && target !== undefined) {
    resource = target.resource === '*' ? 'vault:e1/x' : `${target.resource}/x`;
    if (!target.actions.includes('*')) action = target.actions[offset % target.actions.length] as string;
    run = target.constraints.ctx?.run_id ?? run;
    const stages = target.constraints.stages;
    stage = stages === undefined ? stage : stages[offset % stages.length];
    if (target.constraints.max_bytes !== undefined)
      bytes = Math.min(bytes ?? 0, target.constraints.max_bytes);
    offset = Math.max(target.notBefore - T0, Math.min(offset, target.expiresAt - T0 - 1));
  }
  const context = {
    ...(run === undefined ? {} : { run_id: run }),
    ...(stage === undefined ? {} : { stage }),
  };
  return {
    actor,
    owner: dids[0] as string,
    resource,
    action,
    now: T0 + offset,
    context,
    ...(bytes === undefined ? {} : { bytes }),
  };
}

function allows(token: string, request: TokenRequest): boolean {
  try {
    host.authority.tokens.check(token, request, { audit: false });
    return true;
  } catch (err) {
    if (err instanceof TokenError) return false;
    throw err;
  }
}

describe('delegation never widens a grant', () => {
  it('delegate() either refuses with ANX_TOKEN_WIDENED or yields a token allowing nothing its parent did not', () => {
    const [owner, b, c] = dids as [string, string, string];
    const seen = { refused: 0, allowed: 0 };
    fc.assert(
      fc.property(
        fc.constantFrom(...RESOURCES),
        actionsArb,
        constraintsArb,
        fc.integer({ min: 1, max: 3 * HOUR }),
        fc.option(fc.constantFrom(...RESOURCES), { nil: undefined, freq: 2 }),
        fc.option(actionsArb, { nil: undefined, freq: 2 }),
        fc.option(constraintsArb, { nil: undefined, freq: 2 }),
        fc.option(fc.integer({ min: 1, max: 4 * HOUR }), { nil: undefined, freq: 2 }),
        fc.array(requestArb, { minLength: 20, maxLength: 20 }),
        (res, act, cst, ttl, childRes, childAct, childCst, childTtl, requests) => {
          const parent = host.authority.tokens.issue({
            issuer: owner,
            audience: b,
            resource: res,
            actions: act,
            constraints: cst,
            notBefore: T0,
            expiresAt: T0 + ttl,
          }).token;
          let child: string;
          let target: TokenGrant;
          try {
            ({ token: child, grant: target } = host.authority.tokens.delegate({
              parent,
              audience: c,
              ...(childRes === undefined ? {} : { resource: childRes }),
              ...(childAct === undefined ? {} : { actions: childAct }),
              ...(childCst === undefined ? {} : { constraints: childCst }),
              ...(childTtl === undefined ? {} : { expiresAt: T0 + childTtl }),
            }));
          } catch (err) {
            expect(isAnxError(err) ? err.code : err).toMatch(
              /^ANX_(TOKEN_WIDENED|TOKEN_EXPIRED|REQUEST_INVALID)$/,
            );
            seen.refused++;
            return;
          }
          for (const r of requests) {
            if (!allows(child, requestOf(r, c, target))) continue;
            seen.allowed++;
            expect(allows(parent, requestOf(r, b, target))).toBe(true);
          }
        },
      ),
      { numRuns: 150 },
    );
    // Not vacuous: both widening attempts and working delegations came up.
    expect(seen.refused).toBeGreaterThan(0);
    expect(seen.allowed).toBeGreaterThan(0);
  });

  it('a forged second link accepted by check() never allows more than its parent, whatever it claims', () => {
    const [owner, b, c] = dids as [string, string, string];
    const linkArb = fc.record({
      res: fc.constantFrom(...RESOURCES),
      act: actionsArb,
      cst: constraintsArb,
      nbf: fc.integer({ min: 0, max: HOUR }),
      len: fc.integer({ min: 1, max: 3 * HOUR }),
    });
    const seen = { widened: 0, allowed: 0 };
    fc.assert(
      fc.property(
        linkArb,
        linkArb,
        fc.boolean(),
        fc.array(requestArb, { minLength: 20, maxLength: 20 }),
        (p, random, copyParent, requests) => {
          // Half the forged links start as a copy of the parent's fields (then random fields are mixed in),
          // so that both accepted and widening forgeries come up often.
          const q = copyParent
            ? {
                ...p,
                ...(random.nbf > HOUR / 2 ? { act: random.act } : {}),
                ...(random.len < HOUR ? { cst: random.cst } : {}),
              }
            : random;
          const root: LinkFields = {
            iss: owner,
            aud: b,
            res: p.res,
            act: p.act,
            cst: p.cst,
            nbf: T0 + p.nbf,
            exp: T0 + p.nbf + p.len,
          };
          const forged: LinkFields = {
            iss: b,
            aud: c,
            res: q.res,
            act: q.act,
            cst: q.cst,
            nbf: T0 + q.nbf,
            exp: T0 + q.nbf + q.len,
          };
          const parent = forgeChain(host, [root]);
          const chain = forgeChain(host, [root, forged]);
          try {
            host.authority.tokens.decode(chain);
          } catch (err) {
            if (isAnxError(err, 'ANX_TOKEN_WIDENED')) seen.widened++;
          }
          for (const r of requests) {
            if (!allows(chain, requestOf(r, c))) continue;
            seen.allowed++;
            expect(allows(parent, requestOf(r, b))).toBe(true);
          }
        },
      ),
      // Both kinds of forgery must come up at least once whatever the seed: enough runs that they always do.
      { numRuns: 300 },
    );
    expect(seen.widened).toBeGreaterThan(0);
    expect(seen.allowed).toBeGreaterThan(0);
  });

  it("any change to a token's text makes it invalid, never different", () => {
    const [owner, b] = dids as [string, string];
    const { token } = host.authority.tokens.issue({
      issuer: owner,
      audience: b,
      resource: 'vault:e1',
      actions: ['vault.get'],
      notBefore: T0,
      expiresAt: T0 + HOUR,
    });
    const request = { actor: b, owner, resource: 'vault:e1', action: 'vault.get', now: T0 };
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: token.length - 1 }),
        fc.integer({ min: 0, max: alphabet.length - 1 }),
        (at, pick) => {
          const ch = alphabet[pick] as string;
          fc.pre(token[at] !== ch);
          const mutated = token.slice(0, at) + ch + token.slice(at + 1);
          let code = 'ALLOWED';
          try {
            host.authority.tokens.check(mutated, request, { audit: false });
          } catch (err) {
            code = isAnxError(err) ? err.code : String(err);
          }
          expect(code).toMatch(/^ANX_TOKEN_/);
        },
      ),
      { numRuns: 300 },
    );
  });
});
