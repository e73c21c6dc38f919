// Writes test/vectors/capability-tokens.json once; tests/authority/tokens-vectors.test.ts checks it and never regenerates.
// Run: npx tsx test/authority/tokens-vectors-generate.ts
import { writeFileSync } from 'node:fs';
import { canonicalize, toB64u, toHex } from '../../runtime/authority/canonical.ts';
import {
  REVOCATION_SIG_DOMAIN,
  type Revocation,
  revocationSigningInput,
} from '../../runtime/authority/revocation.ts';
import {
  constraintsHash,
  encodeToken,
  linkId,
  linkSigningInput,
  TOKEN_SIG_DOMAIN,
  type TokenConstraints,
  type TokenLink,
} from '../../runtime/authority/tokens.ts';
import { nobleSuite } from '../../runtime/crypto/index.ts';
import { type Identity, identityFromSeed } from '../../runtime/identity/keys.ts';

const suite = nobleSuite;
const T = 1_767_225_600_000; // 2026-01-01T00:00:00Z
const H = 3_600_000;

const seed = (start: number) => Uint8Array.from({ length: 32 }, (_, i) => start + i);
const people: Record<string, Identity> = {
  owner: identityFromSeed(seed(1), suite),
  bob: identityFromSeed(seed(0x41), suite),
  carol: identityFromSeed(seed(0x81), suite),
  dave: identityFromSeed(seed(0xc1), suite),
};
const did = (name: string) => (people[name] as Identity).did;

interface Spec {
  iss: string;
  aud: string;
  res: string;
  act: string[];
  cst?: TokenConstraints;
  nbf?: number;
  exp: number;
}

let nonceCounter = 0;
function link(spec: Spec, parent: TokenLink | undefined, signer = spec.iss): TokenLink {
  nonceCounter++;
  const cst = spec.cst ?? {};
  const unsigned = {
    v: 1 as const,
    iss: did(spec.iss),
    aud: did(spec.aud),
    res: spec.res,
    act: [...spec.act].sort(),
    cst,
    cth: constraintsHash(suite, cst),
    nbf: spec.nbf ?? T,
    exp: spec.exp,
    nonce: toB64u(Uint8Array.from({ length: 16 }, (_, i) => (nonceCounter * 16 + i) & 0xff)),
    prf: parent === undefined ? null : linkId(suite, parent),
  };
  return {
    ...unsigned,
    sig: toB64u(suite.sign((people[signer] as Identity).seed, linkSigningInput(unsigned))),
  };
}

function chain(specs: Spec[]): TokenLink[] {
  const out: TokenLink[] = [];
  for (const s of specs) out.push(link(s, out[out.length - 1]));
  return out;
}

function explain(links: TokenLink[]) {
  return links.map((l) => {
    const { sig: _sig, ...unsigned } = l;
    return {
      unsignedCanonicalJson: canonicalize(unsigned),
      signingInputHex: toHex(linkSigningInput(l)),
      constraintsCanonicalJson: canonicalize(l.cst),
      cth: l.cth,
      sig: l.sig,
      id: linkId(suite, l),
    };
  });
}

function revocation(name: string, tid: string, exp: number, reason?: string): Revocation {
  const unsigned = {
    v: 1 as const,
    tid,
    iss: did(name),
    ts: T + H,
    exp,
    ...(reason === undefined ? {} : { reason }),
  };
  return {
    ...unsigned,
    sig: toB64u(suite.sign((people[name] as Identity).seed, revocationSigningInput(unsigned))),
  };
}

const root: Spec = {
  iss: 'owner',
  aud: 'bob',
  res: 'vault:enc-1',
  act: ['vault.get', 'vault.put'],
  exp: T + 4 * H,
};
const mid: Spec = {
  iss: 'bob',
  aud: 'carol',
  res: 'vault:enc-1/notes',
  act: ['vault.get', 'vault.put'],
  cst: { max_bytes: 4096 },
  exp: T + 2 * H,
};
const leaf: Spec = {
  iss: 'carol',
  aud: 'dave',
  res: 'vault:enc-1/notes',
  act: ['vault.put'],
  cst: { max_bytes: 1024, ctx: { run_id: 'run-7' } },
  exp: T + H,
};
const three = chain([root, mid, leaf]);
const single = chain([root]);
const request = {
  actor: did('dave'),
  owner: did('owner'),
  resource: 'vault:enc-1/notes/todo.md',
  action: 'vault.put',
  now: T + 10 * 60_000,
  context: { run_id: 'run-7' },
  bytes: 512,
};

const widenedAction = chain([root, { ...mid, act: ['vault.delete', 'vault.get'] }]);
const widenedExpiry = chain([root, { ...mid, exp: T + 5 * H }]);
const droppedConstraint = chain([root, mid, { ...leaf, cst: { ctx: { run_id: 'run-7' } } }]);
const tampered = three.map((l, i) => (i === 2 ? { ...l, act: ['vault.delete', 'vault.put'] } : l));
const brokenPrf = [three[0] as TokenLink, { ...(three[1] as TokenLink) }, link(leaf, single[0])];
const wrongSigner = [single[0] as TokenLink, link(mid, single[0], 'carol')];

const vectors = {
  description:
    'AgentNexus capability token v1 test vectors: canonical JSON (RFC 8785) links, Ed25519 signatures over "anx-cap-v1" 0x00 canonical-json, link ids, narrowing rules and refusal codes. See docs/capability-tokens.md.',
  version: 1,
  identities: Object.fromEntries(
    Object.entries(people).map(([name, p]) => [
      name,
      { seedHex: toHex(p.seed), publicKeyHex: toHex(p.publicKey), did: p.did },
    ]),
  ),
  constants: {
    tokenPrefix: 'anx1.',
    linkSignatureDomainHex: toHex(new TextEncoder().encode(`${TOKEN_SIG_DOMAIN}\0`)),
    revocationSignatureDomainHex: toHex(new TextEncoder().encode(`${REVOCATION_SIG_DOMAIN}\0`)),
  },
  valid: [
    {
      name: 'root grant used by its audience on a sub-resource',
      token: encodeToken(single),
      links: explain(single),
      request: {
        actor: did('bob'),
        owner: did('owner'),
        resource: 'vault:enc-1/notes',
        action: 'vault.get',
        now: T + 60_000,
      },
      grant: {
        id: linkId(suite, single[0] as TokenLink),
        owner: did('owner'),
        holder: did('bob'),
        actions: ['vault.get', 'vault.put'],
        expiresAt: T + 4 * H,
      },
    },
    {
      name: 'three-link chain that only narrows',
      token: encodeToken(three),
      links: explain(three),
      request,
      grant: {
        id: linkId(suite, three[2] as TokenLink),
        owner: did('owner'),
        holder: did('dave'),
        actions: ['vault.put'],
        expiresAt: T + H,
      },
    },
  ],
  invalid: [
    {
      name: 'delegation adds an action',
      token: encodeToken(widenedAction),
      request: { ...request, actor: did('carol'), action: 'vault.get', context: {} },
      code: 'ANX_TOKEN_WIDENED',
    },
    {
      name: 'delegation outlives its parent',
      token: encodeToken(widenedExpiry),
      request: { ...request, actor: did('carol'), context: {} },
      code: 'ANX_TOKEN_WIDENED',
    },
    {
      name: 'delegation drops a constraint',
      token: encodeToken(droppedConstraint),
      request,
      code: 'ANX_TOKEN_WIDENED',
    },
    { name: 'a signed field was changed', token: encodeToken(tampered), request, code: 'ANX_TOKEN_INVALID' },
    {
      name: 'prf does not name the link before',
      token: encodeToken(brokenPrf),
      request,
      code: 'ANX_TOKEN_INVALID',
    },
    {
      name: 'link signed by someone other than the previous audience',
      token: encodeToken(wrongSigner),
      request: { ...request, actor: did('carol'), context: {} },
      code: 'ANX_TOKEN_INVALID',
    },
    {
      name: 'expired',
      token: encodeToken(three),
      request: { ...request, now: T + H },
      code: 'ANX_TOKEN_EXPIRED',
    },
    {
      name: 'not yet valid',
      token: encodeToken(three),
      request: { ...request, now: T - 1 },
      code: 'ANX_TOKEN_NOT_YET_VALID',
    },
    {
      name: 'presented by someone else',
      token: encodeToken(three),
      request: { ...request, actor: did('carol') },
      code: 'ANX_TOKEN_AUDIENCE',
    },
    {
      name: 'chain does not start at the owner',
      token: encodeToken(three),
      request: { ...request, owner: did('bob') },
      code: 'ANX_TOKEN_SCOPE',
    },
    {
      name: 'action not granted',
      token: encodeToken(three),
      request: { ...request, action: 'vault.get' },
      code: 'ANX_TOKEN_SCOPE',
    },
    {
      name: 'resource outside the grant',
      token: encodeToken(three),
      request: { ...request, resource: 'vault:enc-1/code' },
      code: 'ANX_TOKEN_SCOPE',
    },
    {
      name: 'context constraint not met',
      token: encodeToken(three),
      request: { ...request, context: { run_id: 'run-8' } },
      code: 'ANX_TOKEN_SCOPE',
    },
    {
      name: 'writes more bytes than allowed',
      token: encodeToken(three),
      request: { ...request, bytes: 1025 },
      code: 'ANX_TOKEN_SCOPE',
    },
    {
      name: 'middle link revoked by its issuer',
      token: encodeToken(three),
      request,
      revocations: [revocation('bob', linkId(suite, three[1] as TokenLink), mid.exp, 'rotated')],
      code: 'ANX_TOKEN_REVOKED',
    },
  ],
  ineffectiveRevocations: [
    {
      name: 'revocation of the root by a later issuer has no effect',
      token: encodeToken(three),
      request,
      revocations: [revocation('carol', linkId(suite, three[0] as TokenLink), root.exp)],
    },
  ],
};

const file = new URL('../vectors/capability-tokens.json', import.meta.url);
writeFileSync(file, `${JSON.stringify(vectors, null, 2)}\n`);
process.stdout.write(`wrote ${file.pathname}\n`);
