// CLI commands of who acts for whom: owner, secretary, dispatch, abort, dispatch status and the gatekeeper.
import type { Command } from 'commander';
import type { ApiClient } from '../../bridge/api/client.ts';
import { parsePlaybook } from '../../machines/playbook/parse.ts';
import { AnxError } from '../errors.ts';
import { parseDurationMs, parseExpiry, readTextArg } from './args.ts';
import { formatTable } from './format.ts';
import { secretArg } from './secret-arg.ts';
import { formatRunStatus } from './teamwork-commands.ts';

interface Helpers {
  client(cmd: Command): ApiClient;
  out(cmd: Command, json: unknown, text: () => string): void;
}

interface BindingJson {
  id: string;
  statement: { owner: string; agent: string; role: string; issued_at: number; expires_at: number };
  state: string;
}

interface WorkerChoiceJson {
  role: string;
  did: string;
  presence: string;
  trust: number;
  load: number;
  reason: string;
}

interface DispatchJson {
  session_id: string;
  state: string;
  owner: string;
  secretary: string;
  actor: string;
  objective: string;
  enclave_id: string;
  run_id: string;
  workers: WorkerChoiceJson[];
  authorization: { basis: string; proven_by: string };
  takeovers: number;
  failure: { step: string; code: string; message: string } | null;
  end_reason: string | null;
  result: { signer: string; final: unknown[] } | null;
  run: Parameters<typeof formatRunStatus>[0] | null;
}

interface PendingJson {
  id: string;
  from: string;
  type: string;
  ts: number;
  expires_at: number;
  body: unknown;
}

function dids(value: string): string[] {
  return value
    .split(',')
    .map((d) => d.trim())
    .filter((d) => d !== '');
}

const collect = (v: string, prev: string[] = []) => [...prev, v];

function short(did: string): string {
  return did.length > 30 ? `${did.slice(0, 22)}…${did.slice(-6)}` : did;
}

function when(ms: number): string {
  return new Date(ms).toISOString();
}

/** `KEY=VALUE` pairs of `--source` into an object. */
function parseSource(values: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const v of values) {
    const at = v.indexOf('=');
    if (at <= 0)
      throw new AnxError('ANX_ARGUMENT_INVALID', `--source expected KEY=VALUE, got "${v}"`, {
        hint: '--source channel=cli --source message_ref=msg_001',
      });
    out[v.slice(0, at)] = v.slice(at + 1);
  }
  return out;
}

/** A template name, or a YAML/JSON definition file. */
function playbookArg(value: string): unknown {
  if (!value.includes('/') && !value.includes('.')) return value;
  const text = readTextArg(
    '--playbook',
    value,
    'give a template name (anx-runtime playbook list) or the path of a definition file',
  );
  // Sent raw: the daemon validates it and points at every bad field.
  return parsePlaybook(text, value.endsWith('.json') ? 'json' : undefined);
}

/** Who does what in a dispatch, then its run's stages. */
export function formatDispatch(d: DispatchJson): string {
  const lines = [
    `dispatch ${d.session_id}: ${d.state}${d.end_reason ? ` (${d.end_reason})` : ''}`,
    `objective: ${d.objective}`,
    `owner:     ${d.owner}`,
    `secretary: ${d.secretary}`,
    `actor:     ${d.actor} (${d.authorization.basis}, proven by ${d.authorization.proven_by})`,
    `enclave:   ${d.enclave_id}   run: ${d.run_id}`,
  ];
  if (d.failure) lines.push(`failed at ${d.failure.step}: ${d.failure.code}: ${d.failure.message}`);
  if (d.takeovers > 0) lines.push(`takeovers reported to the owner: ${d.takeovers}`);
  if (d.result) lines.push(`result signed by ${d.result.signer}: ${d.result.final.length} final artifact(s)`);
  lines.push(
    formatTable([['ROLE', 'WORKER', 'WHY'], ...d.workers.map((w) => [w.role, short(w.did), w.reason])]),
  );
  if (d.run) lines.push('', formatRunStatus(d.run));
  return lines.join('\n');
}

export function registerSecretaryCommands(program: Command, h: Helpers): void {
  // ---- owner ----
  const owner = program.command('owner').description('Owner DIDs and the agents bound to them');
  owner
    .command('register')
    .description('register an Owner DID (a new local identity, or --did an existing one)')
    .argument('<name>', 'the person or organisation')
    .option('--did <did>', 'make this existing local identity the Owner')
    .action(async (name: string, o: { did?: string }, cmd: Command) => {
      const r = await h.client(cmd).post<{ did: string; name: string }>('/v1/owners', { name, ...o });
      h.out(cmd, r, () => `owner ${r.name}: ${r.did}`);
    });
  owner
    .command('list')
    .description('list the Owners of this host')
    .action(async (_o: unknown, cmd: Command) => {
      const { owners } = await h
        .client(cmd)
        .get<{ owners: Array<{ did: string; name: string; created_at: number }> }>('/v1/owners');
      h.out(cmd, owners, () =>
        formatTable([['NAME', 'DID', 'SINCE'], ...owners.map((x) => [x.name, x.did, when(x.created_at)])]),
      );
    });
  owner
    .command('bind')
    .description('bind an agent to an Owner: signed by the Owner, countersigned by the agent (both local)')
    .argument('<owner_did>')
    .argument('<agent_did>')
    .option('--role <role>', 'secretary (acts for the Owner) or a work role such as developer', 'member')
    .option('--expires <when>', 'duration (90d, 12h) or ISO date; default 365d', (v) => parseExpiry(v))
    .option('--as <did>', 'acting DID (default: the Owner)')
    .action(
      async (
        ownerDid: string,
        agent: string,
        o: { role: string; expires?: number; as?: string },
        cmd: Command,
      ) => {
        const b = await h.client(cmd).post<BindingJson>('/v1/bindings', {
          owner_did: ownerDid,
          agent_did: agent,
          role: o.role,
          ...(o.expires === undefined ? {} : { expires_at: o.expires }),
          ...(o.as === undefined ? {} : { actor_did: o.as }),
        });
        h.out(
          cmd,
          b,
          () =>
            `bound ${b.statement.agent} to ${b.statement.owner} as ${b.statement.role} until ${when(b.statement.expires_at)} (binding ${b.id})`,
        );
      },
    );
  owner
    .command('unbind')
    .description('withdraw bindings of an agent (or one binding by --id); takes effect at once')
    .argument('<owner_did>')
    .argument('[agent_did]')
    .option('--id <binding>', 'one binding by id')
    .option('--role <role>', 'only bindings in this role')
    .option('--as <did>', 'acting DID (default: the Owner)')
    .action(
      async (
        ownerDid: string,
        agent: string | undefined,
        o: { id?: string; role?: string; as?: string },
        cmd: Command,
      ) => {
        if (agent === undefined && o.id === undefined)
          throw new AnxError('ANX_ARGUMENT_INVALID', 'owner unbind expected an agent DID or --id BINDING', {
            hint: 'list bindings with `anx-runtime owner bindings --owner OWNER_DID`',
          });
        const r = await h.client(cmd).post<{ unbound: BindingJson[] }>('/v1/bindings/unbind', {
          owner_did: ownerDid,
          ...(agent === undefined ? {} : { agent_did: agent }),
          ...(o.id === undefined ? {} : { id: o.id }),
          ...(o.role === undefined ? {} : { role: o.role }),
          ...(o.as === undefined ? {} : { actor_did: o.as }),
        });
        h.out(cmd, r, () =>
          r.unbound.length === 0
            ? 'no active binding matched'
            : r.unbound
                .map((b) => `unbound ${b.statement.agent} (${b.statement.role}, binding ${b.id})`)
                .join('\n'),
        );
      },
    );
  owner
    .command('bindings')
    .description('list bindings with their state (active, expired, unbound)')
    .option('--owner <did>', 'only bindings to this Owner')
    .option('--agent <did>', 'only bindings of this agent')
    .option('--role <role>', 'only bindings in this role')
    .action(async (o: { owner?: string; agent?: string; role?: string }, cmd: Command) => {
      const q = new URLSearchParams(o as Record<string, string>);
      const { bindings } = await h.client(cmd).get<{ bindings: BindingJson[] }>(`/v1/bindings?${q}`);
      h.out(cmd, bindings, () =>
        formatTable([
          ['ID', 'OWNER', 'AGENT', 'ROLE', 'STATE', 'EXPIRES'],
          ...bindings.map((b) => [
            b.id.slice(0, 12),
            short(b.statement.owner),
            short(b.statement.agent),
            b.statement.role,
            b.state,
            when(b.statement.expires_at),
          ]),
        ]),
      );
    });

  // ---- secretary ----
  const secretary = program
    .command('secretary')
    .description('Secretaries: standing agents that act for an Owner');
  secretary
    .command('register')
    .description('create a Secretary identity for an Owner and bind it as its secretary')
    .argument('<owner_did>')
    .option('--name <name>', 'a readable name')
    .option('--expires <when>', 'binding expiry: duration (90d) or ISO date; default 365d', (v) =>
      parseExpiry(v),
    )
    .option('--as <did>', 'acting DID (default: the Owner)')
    .action(async (ownerDid: string, o: { name?: string; expires?: number; as?: string }, cmd: Command) => {
      const r = await h
        .client(cmd)
        .post<{ did: string; name: string; binding_id: string }>('/v1/secretaries', {
          owner_did: ownerDid,
          ...(o.name === undefined ? {} : { name: o.name }),
          ...(o.expires === undefined ? {} : { expires_at: o.expires }),
          ...(o.as === undefined ? {} : { actor_did: o.as }),
        });
      h.out(cmd, r, () => `secretary ${r.name}: ${r.did} (binding ${r.binding_id})`);
    });
  secretary
    .command('list')
    .description('list Secretaries')
    .option('--owner <did>', 'only the Secretaries of this Owner')
    .action(async (o: { owner?: string }, cmd: Command) => {
      const q = o.owner === undefined ? '' : `?owner=${encodeURIComponent(o.owner)}`;
      const { secretaries } = await h
        .client(cmd)
        .get<{ secretaries: Array<{ did: string; owner: string; name: string }> }>(`/v1/secretaries${q}`);
      h.out(cmd, secretaries, () =>
        formatTable([['NAME', 'DID', 'OWNER'], ...secretaries.map((x) => [x.name, x.did, short(x.owner)])]),
      );
    });

  // ---- dispatch, abort, status ----
  program
    .command('dispatch')
    .description(
      "dispatch an objective to an Owner's Secretary: it picks workers, creates the Enclave and starts the run",
    )
    .argument('<objective...>', 'what to do')
    .requiredOption('--session <id>', 'session id: a repeat of the same request returns the same run')
    .requiredOption('--owner <did>', 'the Owner the work is for')
    .requiredOption('--actor <did>', 'who asks: the Owner, its Secretary, or a capability token holder')
    .requiredOption('--role <role>', 'a required role (repeat for more)', collect, [])
    .option('--playbook <name|file>', 'a template name or a definition file (default: one stage per role)')
    .option('--source <key=value>', 'where the request came from (repeatable)', collect, [])
    .option('--secretary <did>', "the Secretary that takes it (default: the actor, or the Owner's first)")
    .option('--callback <url>', 'also POST the signed result here')
    .option('--token <token>', 'a capability token for the actor (text, @FILE or - for stdin)')
    .addHelpText(
      'after',
      '\nExample:\n  anx-runtime dispatch --session sess_login_001 --owner OWNER --actor SECRETARY --role developer "Implement the login module"',
    )
    .action(
      async (
        objective: string[],
        o: {
          session: string;
          owner: string;
          actor: string;
          role: string[];
          playbook?: string;
          source: string[];
          secretary?: string;
          callback?: string;
          token?: string;
        },
        cmd: Command,
      ) => {
        // Read before the daemon is asked: a token or playbook file that cannot be read is the user's to fix first.
        const token = o.token === undefined ? undefined : secretArg(o.token, 'the token');
        const playbook = o.playbook === undefined ? undefined : playbookArg(o.playbook);
        const d = await h.client(cmd).post<DispatchJson>('/v1/dispatch', {
          session_id: o.session,
          owner_did: o.owner,
          actor_did: o.actor,
          objective: objective.join(' '),
          required_roles: o.role,
          source: { channel: 'cli', ...parseSource(o.source) },
          ...(playbook === undefined ? {} : { playbook }),
          ...(o.secretary === undefined ? {} : { secretary_did: o.secretary }),
          ...(o.callback === undefined ? {} : { callback_url: o.callback }),
          ...(token === undefined ? {} : { token }),
        });
        h.out(cmd, d, () => formatDispatch(d));
      },
    );
  program
    .command('abort')
    .description('abort a dispatch and its run, as the Owner or its Secretary')
    .argument('<session_id>')
    .requiredOption('--actor <did>', 'who aborts')
    .option('--reason <text>', 'why', 'aborted by the owner')
    .option('--token <token>', 'a capability token for the actor (text, @FILE or - for stdin)')
    .action(async (session: string, o: { actor: string; reason: string; token?: string }, cmd: Command) => {
      const token = o.token === undefined ? undefined : secretArg(o.token, 'the token');
      const d = await h
        .client(cmd)
        .post<DispatchJson>(`/v1/dispatches/${encodeURIComponent(session)}/abort`, {
          actor_did: o.actor,
          reason: o.reason,
          ...(token === undefined ? {} : { token }),
        });
      h.out(cmd, d, () => formatDispatch(d));
    });
  const dispatches = program
    .command('dispatches')
    .description('dispatches of this host: list, or status of one (who does what)');
  dispatches
    .command('list', { isDefault: true })
    .description('list dispatches')
    .action(async (_o: unknown, cmd: Command) => {
      const { dispatches: list } = await h.client(cmd).get<{
        dispatches: Array<{
          session_id: string;
          state: string;
          owner: string;
          run_id: string;
          created_at: number;
        }>;
      }>('/v1/dispatches');
      h.out(cmd, list, () =>
        formatTable([
          ['SESSION', 'STATE', 'RUN', 'OWNER', 'CREATED'],
          ...list.map((d) => [d.session_id, d.state, d.run_id, short(d.owner), when(d.created_at)]),
        ]),
      );
    });
  dispatches
    .command('status')
    .description(
      'a dispatch: its Secretary, actor, workers and why they were chosen, and its run stage by stage',
    )
    .argument('<session_id>')
    .option('--actor <did>', 'read as this actor (checked like any request acting for the Owner)')
    .action(async (session: string, o: { actor?: string }, cmd: Command) => {
      const q = o.actor === undefined ? '' : `?actor=${encodeURIComponent(o.actor)}`;
      const d = await h.client(cmd).get<DispatchJson>(`/v1/dispatches/${encodeURIComponent(session)}${q}`);
      h.out(cmd, d, () => formatDispatch(d));
    });

  // ---- gatekeeper ----
  const gk = program
    .command('gatekeeper')
    .description('who may message a DID: public, ask (hold strangers for approval) or private; block list');
  gk.command('show')
    .description("show a DID's gatekeeper")
    .argument('<did>')
    .action(async (did: string, _o: unknown, cmd: Command) => {
      const g = await h
        .client(cmd)
        .get<{ mode: string; allow: string[]; block: string[]; held: number; pending_ttl_ms: number }>(
          `/v1/gatekeeper/${encodeURIComponent(did)}`,
        );
      h.out(cmd, g, () =>
        [
          `mode: ${g.mode}   held: ${g.held}   held messages expire after ${Math.round(g.pending_ttl_ms / 60_000)} min`,
          `allow: ${g.allow.length === 0 ? '-' : g.allow.join(', ')}`,
          `block: ${g.block.length === 0 ? '-' : g.block.join(', ')}`,
        ].join('\n'),
      );
    });
  gk.command('set')
    .description('change the mode and lists (the DID itself or its Owner)')
    .argument('<did>')
    .option('--mode <mode>', 'public, ask or private')
    .option('--allow <dids>', 'comma-separated allow-list (replaces it)')
    .option('--block <dids>', 'comma-separated block list (replaces it)')
    .option(
      '--pending-ttl <duration>',
      'how long held messages wait: 30s, 15m, 12h, 7d or ms, at most 30d (default: 24h)',
      (v) => parseDurationMs('--pending-ttl', v),
    )
    .option('--as <did>', 'acting DID (default: the DID itself)')
    .action(
      async (
        did: string,
        o: { mode?: string; allow?: string; block?: string; pendingTtl?: number; as?: string },
        cmd: Command,
      ) => {
        const g = await h.client(cmd).post(`/v1/gatekeeper/${encodeURIComponent(did)}`, {
          ...(o.mode === undefined ? {} : { mode: o.mode }),
          ...(o.allow === undefined ? {} : { allow: dids(o.allow) }),
          ...(o.block === undefined ? {} : { block: dids(o.block) }),
          ...(o.pendingTtl === undefined ? {} : { pending_ttl_ms: o.pendingTtl }),
          ...(o.as === undefined ? {} : { actor_did: o.as }),
        });
        h.out(cmd, g, () => `gatekeeper of ${did}: ${(g as { mode: string }).mode}`);
      },
    );
  gk.command('pending')
    .description('messages held for approval (gatekeeper ask), oldest first')
    .argument('<did>')
    .action(async (did: string, _o: unknown, cmd: Command) => {
      const { pending } = await h
        .client(cmd)
        .get<{ pending: PendingJson[] }>(`/v1/gatekeeper/${encodeURIComponent(did)}/pending`);
      h.out(cmd, pending, () =>
        pending.length === 0
          ? 'nothing waits'
          : formatTable([
              ['ID', 'FROM', 'TYPE', 'EXPIRES', 'BODY'],
              ...pending.map((p) => [
                p.id,
                short(p.from),
                p.type,
                when(p.expires_at),
                JSON.stringify(p.body).slice(0, 60),
              ]),
            ]),
      );
    });
  gk.command('approve')
    .description('let a held message into the inbox; its sender is allowed from now on unless --once')
    .argument('<did>')
    .argument('<id>')
    .option('--once', 'approve this message only, do not allow the sender')
    .option('--as <did>', 'acting DID (default: the DID itself)')
    .action(async (did: string, id: string, o: { once?: boolean; as?: string }, cmd: Command) => {
      const r = await h
        .client(cmd)
        .post<{ approved: PendingJson }>(`/v1/gatekeeper/${encodeURIComponent(did)}/approve`, {
          id,
          allow: o.once !== true,
          ...(o.as === undefined ? {} : { actor_did: o.as }),
        });
      h.out(cmd, r, () => `approved ${id} from ${r.approved.from}`);
    });
  gk.command('deny')
    .description('drop a held message; --block also blocks its sender')
    .argument('<did>')
    .argument('<id>')
    .option('--block', 'block the sender from now on')
    .option('--as <did>', 'acting DID (default: the DID itself)')
    .action(async (did: string, id: string, o: { block?: boolean; as?: string }, cmd: Command) => {
      const r = await h
        .client(cmd)
        .post<{ denied: PendingJson }>(`/v1/gatekeeper/${encodeURIComponent(did)}/deny`, {
          id,
          block: o.block === true,
          ...(o.as === undefined ? {} : { actor_did: o.as }),
        });
      h.out(cmd, r, () => `denied ${id} from ${r.denied.from}${o.block ? ' (sender blocked)' : ''}`);
    });
}
