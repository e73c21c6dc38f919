// CLI commands of the authority layer: audit verify/list, freeze, thaw, token issue/delegate/revoke/inspect, trust show/attest.
import type { Command } from 'commander';
import { type ApiClient, DaemonNotRunningError } from '../../bridge/api/client.ts';
import type {
  AuditEntry,
  AuditVerifyResult,
  FreezeStatus,
  TokenGrant,
  TrustScore,
} from '../authority/index.ts';
import { TokenVerifier } from '../authority/tokens.ts';
import { nodeSuite } from '../crypto/node.ts';
import { AnxError } from '../errors.ts';
import { integerOption, parseDurationMs } from './args.ts';
import { EXIT } from './exit-codes.ts';
import { formatTable } from './format.ts';
import { secretArg } from './secret-arg.ts';

interface Helpers {
  client(cmd: Command): ApiClient;
  out(cmd: Command, json: unknown, text: () => string): void;
}

function parseTime(flag: string, value: string): number {
  const n = /^\d+$/.test(value) ? Number(value) : Date.parse(value);
  if (!Number.isSafeInteger(n) || n < 0)
    throw new AnxError(
      'ANX_ARGUMENT_INVALID',
      `${flag} expected an ISO time or ms since the epoch, got "${value}"`,
    );
  return n;
}

/** A token given as text, `@file`, or `-` (stdin). */
const tokenArg = (value: string): string => secretArg(value, 'the token');

const collect = (value: string, previous: string[] = []): string[] => [
  ...previous,
  ...value
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0),
];

interface GrantOptions {
  resource?: string;
  action?: string[];
  ttl?: string;
  expires?: string;
  notBefore?: string;
  ctx?: string[];
  stages?: string[];
  maxBytes?: number;
}

function grantOptions(cmd: Command): Command {
  return cmd
    .option(
      '--action <actions>',
      'allowed actions, comma-separated or repeated (e.g. vault.get,vault.put; * for all)',
      collect,
    )
    .option('--ttl <duration>', 'valid for this long from now (90s, 30m, 1h, 7d)')
    .option('--expires <time>', 'valid until this time (ISO 8601 or ms since the epoch)')
    .option('--not-before <time>', 'valid from this time (default now)')
    .option(
      '--ctx <key=value>',
      'limit to a context value (session_id, run_id, enclave_id, task_id, stage); repeatable',
      collect,
    )
    .option('--stages <stages>', 'limit to these stages (comma-separated)', collect)
    .option('--max-bytes <n>', 'limit each write to this many bytes', integerOption('--max-bytes'));
}

function grantBody(o: GrantOptions): Record<string, unknown> {
  // Both set the expiry: given together, one would silently win over the other.
  if (o.ttl !== undefined && o.expires !== undefined)
    throw new AnxError('ANX_ARGUMENT_INVALID', 'expected --ttl or --expires, not both', {
      hint: '--ttl 1h is valid for an hour from now; --expires 2030-01-01T00:00:00Z until that time',
    });
  const constraints: Record<string, unknown> = {};
  if (o.ctx !== undefined) {
    const ctx: Record<string, string> = {};
    for (const pair of o.ctx) {
      const at = pair.indexOf('=');
      if (at <= 0) throw new AnxError('ANX_ARGUMENT_INVALID', `--ctx expected key=value, got "${pair}"`);
      ctx[pair.slice(0, at)] = pair.slice(at + 1);
    }
    constraints['ctx'] = ctx;
  }
  if (o.stages !== undefined) constraints['stages'] = o.stages;
  if (o.maxBytes !== undefined) constraints['max_bytes'] = o.maxBytes;
  return {
    ...(o.resource === undefined ? {} : { resource: o.resource }),
    ...(o.action === undefined ? {} : { actions: o.action }),
    ...(o.ttl === undefined ? {} : { ttl_ms: parseDurationMs('--ttl', o.ttl) }),
    ...(o.expires === undefined ? {} : { expires_at: parseTime('--expires', o.expires) }),
    ...(o.notBefore === undefined ? {} : { not_before: parseTime('--not-before', o.notBefore) }),
    ...(Object.keys(constraints).length === 0 ? {} : { constraints }),
  };
}

type InspectResult = TokenGrant & {
  valid_now: boolean;
  revoked: string | null;
  unverifiable: string | null;
  /** Present when no daemon ran: the token was verified here, and no revocation list was read. */
  offline?: true;
  within_window?: boolean;
};

/**
 * `token inspect` with no daemon: signatures, chain and narrowing are verified here from the token
 * alone; whether a link was revoked cannot be told without the host's revocation list.
 */
function inspectWithoutDaemon(token: string, why: string): InspectResult {
  const { links: _links, ...grant } = new TokenVerifier(nodeSuite, 0).inspect(token);
  const now = Date.now();
  return {
    ...grant,
    valid_now: false,
    revoked: null,
    unverifiable: `signatures and chain verified here, revocation not checked: ${why}; start the daemon to check it`,
    offline: true,
    within_window: now >= grant.notBefore && now < grant.expiresAt,
  };
}

function describeGrant(g: TokenGrant): string {
  const cst = Object.keys(g.constraints).length === 0 ? 'none' : JSON.stringify(g.constraints);
  return [
    `id:          ${g.id}`,
    `owner:       ${g.owner}`,
    `issuer:      ${g.issuer}`,
    `holder:      ${g.holder}`,
    `resource:    ${g.resource}`,
    `actions:     ${g.actions.join(', ')}`,
    `constraints: ${cst}`,
    `valid:       ${new Date(g.notBefore).toISOString()} .. ${new Date(g.expiresAt).toISOString()}`,
    `chain:       ${g.chain.length} link${g.chain.length === 1 ? '' : 's'}`,
  ].join('\n');
}

function describeFreeze(s: FreezeStatus): string {
  if (s.at === null) return 'the host is not frozen (it never was)';
  const when = new Date(s.at).toISOString();
  return s.frozen
    ? `the host is frozen (read-only) since ${when} by ${s.by}${s.reason ? `: ${s.reason}` : ''}`
    : `the host is not frozen (thawed ${when} by ${s.by})`;
}

const shortDid = (did: string | undefined): string =>
  did === undefined ? '-' : did.length > 30 ? `${did.slice(0, 22)}…${did.slice(-6)}` : did;

export function registerAuthorityCommands(program: Command, h: Helpers): void {
  const audit = program
    .command('audit')
    .description('the hash-chained audit log of authorization decisions and high-risk actions');
  audit
    .command('verify')
    .description(
      `check the whole audit log: any altered, missing or reordered record fails (exit code ${EXIT.tampered})`,
    )
    .action(async (_o: unknown, cmd: Command) => {
      const r = await h.client(cmd).get<AuditVerifyResult>('/v1/audit/verify');
      h.out(cmd, r, () =>
        r.ok
          ? `audit log verified: ${r.count} record${r.count === 1 ? '' : 's'}${r.head === null ? '' : `, head #${r.head.seq} ${r.head.hash}`}`
          : [
              `audit log does NOT verify (${r.problems.length} problem${r.problems.length === 1 ? '' : 's'} in ${r.count} records):`,
              ...r.problems.map((p) => `  #${p.seq} ${p.kind}: ${p.message}`),
            ].join('\n'),
      );
      if (!r.ok) process.exitCode = EXIT.tampered;
    });
  audit
    .command('list')
    .description('list audit records, oldest first')
    .option('--action <name>', 'only this action or its sub-actions (token, token.check, host.freeze...)')
    .option('--decision <d>', 'only allow or deny')
    .option('--did <did>', 'only records where this DID acted or was acted for')
    .option('--after <seq>', 'only records after this sequence number', integerOption('--after'))
    .option('--limit <n>', 'at most this many records (default 100)', integerOption('--limit', 1, 10_000))
    .option('--reverse', 'newest first')
    .action(
      async (
        o: {
          action?: string;
          decision?: string;
          did?: string;
          after?: number;
          limit?: number;
          reverse?: boolean;
        },
        cmd: Command,
      ) => {
        const q = new URLSearchParams();
        if (o.action !== undefined) q.set('action', o.action);
        if (o.decision !== undefined) q.set('decision', o.decision);
        if (o.did !== undefined) q.set('did', o.did);
        if (o.after !== undefined) q.set('after', String(o.after));
        if (o.limit !== undefined) q.set('limit', String(o.limit));
        if (o.reverse === true) q.set('reverse', 'true');
        const r = await h.client(cmd).get<{ entries: AuditEntry[] }>(`/v1/audit?${q}`);
        h.out(cmd, r, () =>
          r.entries.length === 0
            ? 'no audit records match'
            : formatTable([
                ['SEQ', 'TIME', 'ACTION', 'DECISION', 'ACTOR', 'CODE', 'REASON'],
                ...r.entries.map((e) => [
                  String(e.seq),
                  new Date(e.ts).toISOString(),
                  e.action,
                  e.decision,
                  shortDid(e.actor),
                  e.code ?? '',
                  (e.reason ?? '').slice(0, 60),
                ]),
              ]),
        );
      },
    );

  program
    .command('freeze')
    .description(
      'put the host in read-only mode: no new runs, vault writes or stage results; reads and status keep working',
    )
    .option('--reason <text>', 'why (kept in the audit log)')
    .option('--status', 'only show whether the host is frozen')
    .action(async (o: { reason?: string; status?: boolean }, cmd: Command) => {
      const c = h.client(cmd);
      const s =
        o.status === true
          ? await c.get<FreezeStatus>('/v1/freeze')
          : await c.post<FreezeStatus>('/v1/freeze', o.reason === undefined ? {} : { reason: o.reason });
      h.out(cmd, s, () => describeFreeze(s));
    });
  program
    .command('thaw')
    .description('end read-only mode: writes are allowed again')
    .option('--reason <text>', 'why (kept in the audit log)')
    .action(async (o: { reason?: string }, cmd: Command) => {
      const s = await h
        .client(cmd)
        .post<FreezeStatus>('/v1/thaw', o.reason === undefined ? {} : { reason: o.reason });
      h.out(cmd, s, () => describeFreeze(s));
    });

  const token = program
    .command('token')
    .description('capability tokens: signed grants of actions on a resource, delegated only by narrowing');
  grantOptions(
    token
      .command('issue')
      .description('grant actions on a resource you own; prints the token')
      .requiredOption('--from <did>', 'the issuing local identity (the owner of the resource)')
      .requiredOption('--to <did>', 'who may use the token')
      .requiredOption(
        '--resource <resource>',
        'what it covers, e.g. vault:ENCLAVE_ID or vault:ENCLAVE_ID/notes, or worker:DID for stage.assign (* for all)',
      ),
  ).action(async (o: GrantOptions & { from: string; to: string }, cmd: Command) => {
    if (o.action === undefined)
      throw new AnxError('ANX_ARGUMENT_INVALID', '--action expected at least one action', {
        hint: 'for example --action vault.get,vault.put',
      });
    // Arguments are checked before the daemon is asked.
    const body = { issuer: o.from, audience: o.to, ...grantBody(o) };
    const r = await h.client(cmd).post<{ token: string; grant: TokenGrant }>('/v1/tokens', body);
    h.out(cmd, r, () => r.token);
  });
  grantOptions(
    token
      .command('delegate')
      .description(
        'narrow a token you hold to another DID (fewer actions, a sub-resource, tighter limits, earlier expiry)',
      )
      .argument('<token>', 'the parent token (text, @FILE or - for stdin)')
      .requiredOption('--to <did>', 'who may use the new token')
      .option('--resource <resource>', "a resource within the parent's (default: the same)"),
  ).action(async (parent: string, o: GrantOptions & { to: string }, cmd: Command) => {
    const body = { parent: tokenArg(parent), audience: o.to, ...grantBody(o) };
    const r = await h.client(cmd).post<{ token: string; grant: TokenGrant }>('/v1/tokens/delegate', body);
    h.out(cmd, r, () => r.token);
  });
  token
    .command('revoke')
    .description(
      'revoke a token (and every delegation made from it) on this host and, through the relay, everywhere',
    )
    .argument('<token>', 'the token (text, @FILE or - for stdin)')
    .option(
      '--by <did>',
      'the revoking local identity: an issuer of the link or of one before it (default: the nearest local issuer)',
    )
    .option(
      '--link <n>',
      'revoke this link of the chain (0 = the root grant; default: the last)',
      integerOption('--link', 0, 7),
    )
    .option('--reason <text>', 'why (kept with the revocation and in the audit log)')
    .action(async (t: string, o: { by?: string; link?: number; reason?: string }, cmd: Command) => {
      const body = {
        token: tokenArg(t),
        ...(o.by === undefined ? {} : { by: o.by }),
        ...(o.link === undefined ? {} : { link: o.link }),
        ...(o.reason === undefined ? {} : { reason: o.reason }),
      };
      const r = await h
        .client(cmd)
        .post<{ id: string; by: string; distributed: boolean }>('/v1/tokens/revoke', body);
      h.out(
        cmd,
        r,
        () =>
          `revoked ${r.id} (signed by ${r.by})${r.distributed ? '; sent to the relay' : '; this host has no relay, so only it knows'}`,
      );
    });
  token
    .command('inspect')
    .description(
      "verify a token's signatures and chain offline and show what it grants (revocation too, when a daemon runs)",
    )
    .argument('<token>', 'the token (text, @FILE or - for stdin)')
    .action(async (t: string, _o: unknown, cmd: Command) => {
      const token = tokenArg(t);
      let r: InspectResult;
      try {
        r = await h.client(cmd).post<InspectResult>('/v1/tokens/inspect', { token });
      } catch (err) {
        if (!(err instanceof DaemonNotRunningError)) throw err;
        r = inspectWithoutDaemon(token, err.message);
      }
      h.out(cmd, r, () =>
        [
          describeGrant(r),
          `status:      ${
            r.offline
              ? `${r.within_window ? 'within' : 'outside'} its time window; revocation not checked (no daemon runs for this data directory)`
              : (r.revoked ??
                r.unverifiable ??
                (r.valid_now ? 'valid now' : 'not valid now (outside its time window)'))
          }`,
        ].join('\n'),
      );
    });

  const trust = program
    .command('trust')
    .description('trust scores of DIDs: event-driven, decaying, with signed attestations');
  trust
    .command('show')
    .description("one DID's score with how it was reached, or every DID this host has evidence about")
    .argument('[did]', 'the DID (default: all known)')
    .action(async (did: string | undefined, _o: unknown, cmd: Command) => {
      const c = h.client(cmd);
      if (did === undefined) {
        const r = await c.get<{ scores: TrustScore[] }>('/v1/trust');
        h.out(cmd, r, () =>
          r.scores.length === 0
            ? 'no trust evidence yet (every DID counts as 0.50)'
            : formatTable([
                ['DID', 'SCORE', 'EVIDENCE', 'ATTESTATIONS'],
                ...r.scores.map((s) => [
                  s.did,
                  s.score.toFixed(2),
                  String(s.breakdown.evidence),
                  String(s.breakdown.attestations.length),
                ]),
              ]),
        );
        return;
      }
      const r = await c.get<TrustScore>(`/v1/trust/${encodeURIComponent(did)}`);
      h.out(cmd, r, () =>
        [
          `${r.did}: ${r.score.toFixed(2)} (neutral 0.50; evidence ${r.breakdown.evidence}, half-life ${Math.round(r.breakdown.halfLifeMs / 86_400_000)} days)`,
          ...r.breakdown.events.map(
            (e) => `  ${e.kind}: ${e.count} (decayed ${e.decayed}) × ${e.weight} = ${e.contribution}`,
          ),
          ...r.breakdown.attestations.map(
            (a) =>
              `  attestation ${a.value} by ${a.iss} (attester weight ${a.attesterWeight}) = ${a.contribution}`,
          ),
        ].join('\n'),
      );
    });
  trust
    .command('attest')
    .description('sign an attestation by a local identity about another DID (-100 distrust .. 100 trust)')
    .requiredOption('--from <did>', 'the attesting local identity')
    .requiredOption('--about <did>', 'the DID attested to')
    .requiredOption('--value <n>', 'from -100 to 100', integerOption('--value', -100, 100))
    .option('--note <text>', 'why')
    .option('--ttl <duration>', 'valid for this long (default 90d)')
    .action(
      async (
        o: { from: string; about: string; value: number; note?: string; ttl?: string },
        cmd: Command,
      ) => {
        const body = {
          issuer: o.from,
          subject: o.about,
          value: o.value,
          ...(o.note === undefined ? {} : { note: o.note }),
          ...(o.ttl === undefined ? {} : { ttl_ms: parseDurationMs('--ttl', o.ttl) }),
        };
        const r = await h.client(cmd).post<Record<string, unknown>>('/v1/trust/attest', body);
        h.out(cmd, r, () => JSON.stringify(r));
      },
    );
}
