// Shared setup of the authority tests: hosts in temp dirs on a manual clock, and hand-built (possibly hostile) token links.

import { toB64u } from '../../runtime/authority/canonical.ts';
import {
  constraintsHash,
  encodeToken,
  linkId,
  linkSigningInput,
  type TokenConstraints,
  type TokenLink,
} from '../../runtime/authority/tokens.ts';
import { ManualClock } from '../../runtime/clock.ts';
import { isAnxError } from '../../runtime/errors.ts';
import { Host } from '../../runtime/host.ts';
import { tempDir } from '../helpers/tmp.ts';

export const T0 = 1_800_000_000_000;
export const HOUR = 60 * 60_000;

const opened: Host[] = [];

/** The code of the `AnxError` that `fn` throws, or `ALLOWED` when it returns. */
export function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    if (isAnxError(err)) return err.code;
    throw err;
  }
  return 'ALLOWED';
}

/** The code of the `AnxError` that `fn` rejects (or throws) with, or `ALLOWED` when it resolves. */
export async function codeOfAsync(fn: () => Promise<unknown> | unknown): Promise<string> {
  try {
    await fn();
  } catch (err) {
    if (isAnxError(err)) return err.code;
    throw err;
  }
  return 'ALLOWED';
}

/** Opens a host on a manual clock (fsync off: throwaway data). */
export async function openHost(options: { dir?: string; clock?: ManualClock } = {}): Promise<{
  host: Host;
  clock: ManualClock;
  dir: string;
}> {
  const clock = options.clock ?? new ManualClock(T0);
  const dir = options.dir ?? tempDir('anx-auth-');
  const host = await Host.open({ dataDir: dir, clock, noSync: true });
  opened.push(host);
  return { host, clock, dir };
}

export async function closeHost(host: Host): Promise<void> {
  const i = opened.indexOf(host);
  if (i >= 0) opened.splice(i, 1);
  await host.close();
}

export async function closeHosts(): Promise<void> {
  for (const host of opened.splice(0)) await host.close().catch(() => {});
}

/** Local identities named a, b, c... */
export async function identities(host: Host, n: number): Promise<string[]> {
  const out: string[] = [];
  for (let i = 0; i < n; i++)
    out.push((await host.createIdentity({ name: String.fromCharCode(97 + i) })).did);
  return out;
}

export interface LinkFields {
  iss: string;
  aud: string;
  res: string;
  act: string[];
  cst?: TokenConstraints;
  nbf: number;
  exp: number;
}

/**
 * Signs a link with the host's key for `iss`, with no narrowing check: what a malicious delegator
 * holding a real key could produce.
 */
export function forgeLink(host: Host, fields: LinkFields, parent?: TokenLink): TokenLink {
  const cst = fields.cst ?? {};
  const unsigned = {
    v: 1 as const,
    iss: fields.iss,
    aud: fields.aud,
    res: fields.res,
    act: [...new Set(fields.act)].sort(),
    cst,
    cth: constraintsHash(host.suite, cst),
    nbf: fields.nbf,
    exp: fields.exp,
    nonce: toB64u(host.suite.randomBytes(16)),
    prf: parent === undefined ? null : linkId(host.suite, parent),
  };
  return { ...unsigned, sig: toB64u(host.keystore.sign(fields.iss, linkSigningInput(unsigned))) };
}

/**
 * The first two links of a genuine chain, fresh at every call: `owner` grants `b` get and put on
 * `vault:enc-1` (4 h), `b` narrows it to `vault:enc-1/notes` for `c` (2 h).
 */
export function chain2(host: Host, [owner, b, c]: readonly string[]): string {
  const t = host.authority.tokens;
  const root = t.issue({
    issuer: owner as string,
    audience: b as string,
    resource: 'vault:enc-1',
    actions: ['vault.get', 'vault.put'],
    ttlMs: 4 * HOUR,
  });
  return t.delegate({
    parent: root.token,
    audience: c as string,
    resource: 'vault:enc-1/notes',
    ttlMs: 2 * HOUR,
  }).token;
}

/** `c` narrows `parent` (a `chain2`) to put for `d` (1 h): the third link. */
export function delegatePut(host: Host, parent: string, d: string): string {
  return host.authority.tokens.delegate({ parent, audience: d, actions: ['vault.put'], ttlMs: HOUR }).token;
}

/** A genuine 3-link chain: `chain2` to `c`, then `delegatePut` to `d`. */
export function chain3(host: Host, dids: readonly string[]): string {
  return delegatePut(host, chain2(host, dids), dids[3] as string);
}

/** A forged chain as token text. */
export function forgeChain(host: Host, links: LinkFields[]): string {
  const out: TokenLink[] = [];
  for (const fields of links) out.push(forgeLink(host, fields, out[out.length - 1]));
  return encodeToken(out);
}
