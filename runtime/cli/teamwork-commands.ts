// CLI commands of teamwork: enclave, vault, run, worker, playbook (validate and list run without a daemon).
import { existsSync, statSync } from 'node:fs';
import { resolve as resolvePath } from 'node:path';
import type { Command } from 'commander';
import type { DataDirApiClient } from '../../bridge/sdk/daemon-api.ts';
import { loadPlaybook, parsePlaybook } from '../../machines/playbook/parse.ts';
import { playbookTemplate, TEMPLATE_NAMES } from '../../machines/playbook/templates.ts';
import { assertPlaybook, PlaybookValidationError } from '../../machines/playbook/validate.ts';
import { AnxError } from '../errors.ts';
import type { EventV1 } from '../events/event.ts';
import { parseDurationMs, readFileArg, readTextArg } from './args.ts';
import { EXIT } from './exit-codes.ts';
import { formatEvent, formatTable, printable } from './format.ts';
import { secretArg } from './secret-arg.ts';

interface Helpers {
  dataDirOf(cmd: Command): string;
  client(cmd: Command): DataDirApiClient;
  out(cmd: Command, json: unknown, text: () => string): void;
  /** Tells (on stderr) that a follower waits for its daemon to come back. */
  waitNotice(reason: AnxError): void;
}

interface StageRecord {
  stage: string;
  worker: string | null;
  task_id: string | null;
  status: string;
  attempt: number;
  retry_count: number;
  output_ref: { key: string; version: number; hash: string } | null;
  last_error: string | null;
}

interface RunStatusJson {
  run_id: string;
  state: string;
  playbook: { name: string; version: string };
  objective: string;
  owner: string;
  enclave_id: string | null;
  current: string | null;
  stages: StageRecord[];
  takeover: { stage: string; reason: string } | null;
  end_reason: string | null;
}

/** Where `run wait` stops: the run ended, or it waits for its Owner to take over. */
function waitIsOver(state: string): boolean {
  return state === 'completed' || state === 'failed' || state === 'aborted' || state === 'takeover';
}

function short(did: string | null): string {
  if (did === null) return '-';
  return did.length > 30 ? `${did.slice(0, 22)}…${did.slice(-6)}` : did;
}

/** Human-readable run status: state, then one line per stage saying who does what. */
export function formatRunStatus(s: RunStatusJson): string {
  const head = [
    `run ${s.run_id} (${s.playbook.name}@${s.playbook.version}): ${s.state}${s.current ? ` at ${s.current}` : ''}`,
    `objective: ${s.objective}`,
  ];
  if (s.takeover) head.push(`waiting for the owner: ${s.takeover.stage}: ${s.takeover.reason}`);
  if (s.end_reason) head.push(`ended: ${s.end_reason}`);
  const rows = [
    ['STAGE', 'STATUS', 'ATTEMPT', 'RETRIES', 'WORKER', 'OUTPUT'],
    ...s.stages.map((r) => [
      r.stage,
      r.status,
      String(r.attempt),
      String(r.retry_count),
      short(r.worker),
      r.output_ref
        ? `${r.output_ref.key}@${r.output_ref.version}`
        : r.last_error
          ? `(${r.last_error.slice(0, 60)})`
          : '',
    ]),
  ];
  return `${head.join('\n')}\n${formatTable(rows)}`;
}

function parsePermissions(v: string): string[] {
  return v
    .split(',')
    .map((p) => p.trim())
    .filter((p) => p !== '');
}

function parseAssignments(values: string[]): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const v of values) {
    const at = v.indexOf('=');
    if (at <= 0)
      throw new AnxError('ANX_ARGUMENT_INVALID', `--assign expected ROLE=DID, got "${v}"`, {
        hint: 'anx-runtime run start --assign developer=did:agentnexus:z6Mk… …',
      });
    const role = v.slice(0, at);
    out[role] = [...(out[role] ?? []), v.slice(at + 1)];
  }
  return out;
}

/** `--token DID=TOKEN` (repeated): the capability tokens a run presents to workers of other hosts. */
function parseTokens(values: string[]): Record<string, string> | undefined {
  if (values.length === 0) return undefined;
  const out: Record<string, string> = {};
  for (const v of values) {
    const at = v.indexOf('=');
    const did = v.slice(0, Math.max(0, at));
    if (at <= 0 || !did.startsWith('did:') || at === v.length - 1)
      throw new AnxError(
        'ANX_ARGUMENT_INVALID',
        `--token expected WORKER_DID=TOKEN, got "${v.slice(0, 80)}"`,
        {
          hint: "the worker's Owner issues the token: anx-runtime token issue --from OWNER --to COORDINATOR --resource worker:WORKER_DID --action stage.assign",
        },
      );
    out[did] = secretArg(v.slice(at + 1), `the token for ${did}`);
  }
  return out;
}

/**
 * A playbook file as written (YAML or JSON), checked here so a bad field is reported before anything
 * is sent; the host takes the definition as written and validates it again.
 */
function playbookFile(file: string): unknown {
  if (!existsSync(file))
    throw new AnxError(
      'ANX_ARGUMENT_INVALID',
      `--playbook expected a template name or a playbook file, got "${file}" (no such template or file)`,
      {
        hint: `the templates are ${TEMPLATE_NAMES.join(', ')} (\`anx-runtime playbook list\`); or give a YAML/JSON file's path`,
      },
    );
  const raw = parsePlaybook(readTextArg('--playbook', file), file.endsWith('.json') ? 'json' : undefined);
  assertPlaybook(raw);
  return raw;
}

const collect = (v: string, prev: string[] = []) => [...prev, v];

/**
 * `vault get … --version N` and `run takeover … deliver --version N` name an artifact version, but
 * `--version` (and `-v`) is the program's own flag: in those two commands (`command`, as the CLI
 * names it) it is read as `--artifact-version`, whatever follows it, so a bad value is refused rather
 * than taken for a request to print the program's version. Nothing else is touched (`worker run
 * --version` still prints it).
 */
export function artifactVersionArgs(argv: string[], command: string | undefined): string[] {
  if (command !== 'vault get' && command !== 'run takeover') return argv;
  return argv.map((a) => {
    if (a === '--version' || a === '-v') return '--artifact-version';
    if (a.startsWith('--version=')) return `--artifact-version=${a.slice('--version='.length)}`;
    return a;
  });
}

/** An artifact version given on the command line: a positive integer. */
function artifactVersionOf(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(n) || n < 1)
    throw new AnxError(
      'ANX_ARGUMENT_INVALID',
      `--version expected an artifact version (1, 2, …), got "${value}"`,
      {
        hint: 'leave --version out for the latest version; `anx-runtime vault history ENCLAVE KEY` lists them',
      },
    );
  return n;
}

export function registerTeamworkCommands(program: Command, h: Helpers): void {
  // ---- playbook ----
  const playbook = program
    .command('playbook')
    .description('playbook definitions: validate and list templates');
  playbook
    .command('validate')
    .description('validate a playbook definition (YAML or JSON); points at every bad field')
    .argument('<file>', 'the definition file')
    .action((file: string, _o: unknown, cmd: Command) => {
      const text = readTextArg('FILE', file);
      try {
        const def = loadPlaybook(text, file.endsWith('.json') ? 'json' : undefined);
        h.out(cmd, { ok: true, definition: def }, () =>
          [
            `${file}: valid playbook ${def.name}@${def.version}, ${def.stages.length} stage(s), context budget ${def.context_budget_bytes} bytes`,
            ...def.stages.map(
              (s, i) =>
                `  ${i + 1}. ${s.id} (${s.role}) → ${s.output.key}${s.review ? `; rejects back to ${s.review.on_reject}` : ''}`,
            ),
          ].join('\n'),
        );
      } catch (err) {
        if (err instanceof PlaybookValidationError) {
          if (!(cmd.optsWithGlobals() as { json?: boolean }).json) {
            process.stderr.write(`${file}: invalid playbook\n`);
            for (const i of err.issues)
              process.stderr.write(`  ${i.path}: expected ${i.expected}, got ${i.got}\n`);
            process.exitCode = 2;
            return;
          }
        }
        throw err;
      }
    });
  playbook
    .command('list')
    .description('list the built-in playbook templates')
    .action((_o: unknown, cmd: Command) => {
      const templates = TEMPLATE_NAMES.map((name) => {
        const def = playbookTemplate(name);
        return {
          name,
          version: def.version,
          description: def.description,
          stages: def.stages.map((s) => s.id),
        };
      });
      h.out(cmd, templates, () =>
        formatTable([
          ['NAME', 'STAGES', 'DESCRIPTION'],
          ...templates.map((t) => [t.name, t.stages.join(' → '), t.description]),
        ]),
      );
    });

  // ---- enclave ----
  const enclave = program.command('enclave').description('Enclaves: members, permissions, lifecycle');
  enclave
    .command('create')
    .description('create an Enclave owned by a local identity')
    .requiredOption('--owner <did>', 'the owning local identity (holds every permission)')
    .option('--id <id>', 'Enclave id (default: generated)')
    .option('--name <name>', 'a readable name')
    .option('--backend <backend>', 'vault backend: lmdb (default) or git', 'lmdb')
    .action(async (o: { owner: string; id?: string; name?: string; backend: string }, cmd: Command) => {
      const view = await h.client(cmd).post<{ enclave_id: string; backend: string }>('/v1/enclaves', o);
      h.out(cmd, view, () => `${view.enclave_id} (vault: ${view.backend})`);
    });
  enclave
    .command('show')
    .description('show an Enclave: state, members and their permissions, bound playbooks')
    .argument('<enclave>')
    .action(async (id: string, _o: unknown, cmd: Command) => {
      const v = await h.client(cmd).get<{
        enclave_id: string;
        state: string;
        owner: string;
        backend: string;
        members: Record<string, { role: string; permissions: string[] }>;
      }>(`/v1/enclaves/${encodeURIComponent(id)}`);
      h.out(cmd, v, () =>
        [
          `${v.enclave_id}: ${v.state}, vault ${v.backend}, owner ${v.owner}`,
          formatTable([
            ['MEMBER', 'ROLE', 'PERMISSIONS'],
            ...Object.entries(v.members).map(([did, m]) => [did, m.role, m.permissions.join(',')]),
          ]),
        ].join('\n'),
      );
    });
  enclave
    .command('member')
    .description('add or change a member (as the owner or an admin)')
    .argument('<enclave>')
    .argument('<did>', 'the member DID')
    .requiredOption('--role <role>', 'role in the Enclave, e.g. developer')
    .requiredOption('--permissions <list>', 'comma-separated: read,write,admin')
    .requiredOption('--as <did>', 'the acting local identity (owner or admin)')
    .action(
      async (id: string, did: string, o: { role: string; permissions: string; as: string }, cmd: Command) => {
        const v = await h.client(cmd).post(`/v1/enclaves/${encodeURIComponent(id)}/members`, {
          did,
          role: o.role,
          permissions: parsePermissions(o.permissions),
          as: o.as,
        });
        h.out(cmd, v, () => `${did} is ${o.role} (${o.permissions}) in ${id}`);
      },
    );
  enclave
    .command('remove-member')
    .description('remove a member (as the owner or an admin); the owner cannot be removed')
    .argument('<enclave>')
    .argument('<did>')
    .requiredOption('--as <did>', 'the acting local identity (owner or admin)')
    .action(async (id: string, did: string, o: { as: string }, cmd: Command) => {
      const v = await h
        .client(cmd)
        .post(`/v1/enclaves/${encodeURIComponent(id)}/members/remove`, { did, as: o.as });
      h.out(cmd, v, () => `${did} removed from ${id}`);
    });
  for (const action of ['archive', 'activate'] as const) {
    enclave
      .command(action)
      .description(
        action === 'archive'
          ? 'archive an Enclave: it keeps its members and artifacts but takes no writes (as the owner or an admin)'
          : 'make an archived Enclave active again (as the owner or an admin)',
      )
      .argument('<enclave>')
      .requiredOption('--as <did>', 'the acting local identity (owner or admin)')
      .action(async (id: string, o: { as: string }, cmd: Command) => {
        const v = await h.client(cmd).post(`/v1/enclaves/${encodeURIComponent(id)}/${action}`, { as: o.as });
        h.out(cmd, v, () => `${id} ${action === 'archive' ? 'archived' : 'active'}`);
      });
  }

  // ---- vault ----
  const vault = program.command('vault').description("an Enclave's versioned artifacts");
  vault
    .command('get')
    .description('print an artifact (latest version, or --version N)')
    .argument('<enclave>')
    .argument('<key>')
    .option('--artifact-version <n>', 'a version number (also accepted as --version N)')
    .option('--as <did>', 'the reading member (default: the Enclave owner)')
    .action(async (id: string, key: string, o: { artifactVersion?: string; as?: string }, cmd: Command) => {
      const q = new URLSearchParams({ key });
      if (o.artifactVersion !== undefined) q.set('version', String(artifactVersionOf(o.artifactVersion)));
      if (o.as !== undefined) q.set('as', o.as);
      const a = await h
        .client(cmd)
        .get<{ meta: unknown; content?: string; content_base64: string }>(
          `/v1/vault/${encodeURIComponent(id)}/get?${q}`,
        );
      if ((cmd.optsWithGlobals() as { json?: boolean }).json) h.out(cmd, a, () => '');
      else process.stdout.write(a.content ?? Buffer.from(a.content_base64, 'base64'));
    });
  vault
    .command('put')
    .description('store FILE as a new version of KEY, authored by --as')
    .argument('<enclave>')
    .argument('<key>')
    .argument('<file>')
    .requiredOption('--as <did>', 'the writing member: a local identity, recorded as the author')
    .option('--kind <kind>', 'artifact kind', 'text')
    .option('--summary <text>', 'a short summary', '')
    .action(
      async (
        id: string,
        key: string,
        file: string,
        o: { as: string; kind: string; summary: string },
        cmd: Command,
      ) => {
        const bytes = readFileArg('FILE', file);
        const { ref } = await h
          .client(cmd)
          .post<{ ref: { key: string; version: number; hash: string } }>(
            `/v1/vault/${encodeURIComponent(id)}/put`,
            { key, kind: o.kind, summary: o.summary, as: o.as, content_base64: bytes.toString('base64') },
          );
        h.out(cmd, ref, () => `${ref.key}@${ref.version} sha256:${ref.hash}`);
      },
    );
  vault
    .command('history')
    .description('every version of KEY, oldest first')
    .argument('<enclave>')
    .argument('<key>')
    .option('--as <did>', 'the reading member (default: the Enclave owner)')
    .action(async (id: string, key: string, o: { as?: string }, cmd: Command) => {
      const q = new URLSearchParams({ key });
      if (o.as !== undefined) q.set('as', o.as);
      const { versions } = await h.client(cmd).get<{
        versions: Array<{
          version: number;
          kind: string;
          hash: string;
          size: number;
          author: string;
          summary: string;
          ts: number;
        }>;
      }>(`/v1/vault/${encodeURIComponent(id)}/history?${q}`);
      h.out(cmd, versions, () =>
        versions.length === 0
          ? `no versions of ${key}`
          : formatTable([
              ['VERSION', 'TIME', 'KIND', 'SIZE', 'SHA256', 'AUTHOR', 'SUMMARY'],
              ...versions.map((v) => [
                String(v.version),
                new Date(v.ts).toISOString(),
                v.kind,
                String(v.size),
                v.hash.slice(0, 12),
                short(v.author),
                v.summary.slice(0, 60),
              ]),
            ]),
      );
    });

  // ---- run ----
  const run = program.command('run').description('playbook runs: start, status, manifest, owner controls');
  run
    .command('start')
    .description('start a run of a playbook (a template name or a definition file) in an Enclave')
    .requiredOption('--playbook <name|file>', 'a template (see `playbook list`) or a YAML/JSON file')
    .requiredOption('--objective <text>', 'what the run is for')
    .requiredOption('--owner <did>', 'the owner: a local identity, member of the Enclave')
    .requiredOption('--enclave <id>', 'the Enclave')
    .option('--assign <role=did>', 'a worker for a role (repeat)', collect, [])
    .option('--coordinator <did>', 'signs the manifest (default: the owner)')
    .option('--run-id <id>', 'run id (default: generated)')
    .option(
      '--token <did=token>',
      'a capability token for stage.assign presented to a worker of another host (repeat; TOKEN as text, @FILE or - for stdin)',
      collect,
      [],
    )
    .action(
      async (
        o: {
          playbook: string;
          objective: string;
          owner: string;
          enclave: string;
          assign: string[];
          coordinator?: string;
          runId?: string;
          token: string[];
        },
        cmd: Command,
      ) => {
        const definition = (TEMPLATE_NAMES as string[]).includes(o.playbook)
          ? o.playbook
          : playbookFile(o.playbook);
        const tokens = parseTokens(o.token);
        // Checked before the daemon is asked: a bad flag is the error, whether a daemon runs or not.
        const assignments = parseAssignments(o.assign);
        const started = await h.client(cmd).post<{ run_id: string }>('/v1/runs', {
          playbook: definition,
          objective: o.objective,
          owner: o.owner,
          enclave: o.enclave,
          assignments,
          ...(o.coordinator === undefined ? {} : { coordinator: o.coordinator }),
          ...(o.runId === undefined ? {} : { run_id: o.runId }),
          ...(tokens === undefined ? {} : { tokens }),
        });
        h.out(cmd, started, () => started.run_id);
      },
    );
  run
    .command('list')
    .description('runs on this host')
    .action(async (_o: unknown, cmd: Command) => {
      const { runs } = await h
        .client(cmd)
        .get<{ runs: Array<{ run_id: string; enclave_id: string; created_at: number }> }>('/v1/runs');
      h.out(cmd, runs, () =>
        formatTable([
          ['RUN', 'ENCLAVE', 'CREATED'],
          ...runs.map((r) => [r.run_id, r.enclave_id, new Date(r.created_at).toISOString()]),
        ]),
      );
    });
  run
    .command('status')
    .description('state of a run and its stage records: who is doing what')
    .argument('<run>')
    .action(async (id: string, _o: unknown, cmd: Command) => {
      const s = await h.client(cmd).get<RunStatusJson>(`/v1/runs/${encodeURIComponent(id)}`);
      h.out(cmd, s, () => formatRunStatus(s));
    });
  run
    .command('wait')
    .description(
      `wait until the run ends or needs its Owner, printing its status events as they come (on stderr; with --json one event per line as JSON); exit ${EXIT.ok} when it completed, ${EXIT.notCompleted} when it failed, was aborted or waits in takeover, ${EXIT.waitTimeout} when --timeout ran out first`,
    )
    .argument('<run>')
    .option('--timeout <duration>', 'give up after this long (90s, 30m, 2h); default: no limit')
    .action(async (id: string, o: { timeout?: string }, cmd: Command) => {
      const limitMs = o.timeout === undefined ? undefined : parseDurationMs('--timeout', o.timeout);
      const api = h.client(cmd);
      const path = `/v1/runs/${encodeURIComponent(id)}`;
      const json = cmd.optsWithGlobals().json === true;
      // Progress goes to stderr, so stdout stays the one answer (a single JSON document with --json).
      const progress = (e: EventV1) => {
        process.stderr.write(`${json ? JSON.stringify(e) : printable(formatEvent(e))}\n`);
      };
      // What the run did so far, then each status change as it commits, until one that ends the wait.
      const past = await api.get<{ events: EventV1[] }>(`/v1/trace/${encodeURIComponent(id)}?kind=status`);
      let status = await api.get<RunStatusJson>(path);
      for (const e of past.events) progress(e);
      let after = past.events.at(-1)?.seq ?? 0;
      const controller = new AbortController();
      const timer =
        limitMs === undefined ? undefined : setTimeout(() => controller.abort(), Math.max(1, limitMs));
      try {
        while (!waitIsOver(status.state) && !controller.signal.aborted) {
          for await (const e of api.follow(
            { id, kinds: ['status'], after },
            controller.signal,
            h.waitNotice,
          )) {
            progress(e);
            after = e.seq;
            // The run's own status event of such a state (`run.completed`, `run.takeover`, …): read where it stands.
            const state = (e.payload as { state?: unknown } | null)?.state;
            if (typeof state === 'string' && state.startsWith('run.') && waitIsOver(state.slice(4))) break;
          }
          // Read once the daemon answers (it may be restarting): an Owner may already have moved the run on.
          status =
            (await api.getOnceAnswered<RunStatusJson>(path, controller.signal, h.waitNotice)) ?? status;
        }
      } finally {
        clearTimeout(timer);
      }
      // The time ran out: where the run stands now, if the daemon answers.
      if (!waitIsOver(status.state)) status = await api.get<RunStatusJson>(path).catch(() => status);
      if (!waitIsOver(status.state))
        throw new AnxError(
          'ANX_RUN_WAIT_TIMEOUT',
          `run ${id} is still ${status.state}${status.current === null ? '' : ` at ${status.current}`} after ${o.timeout}`,
          { hint: `wait again, or see where it stands with \`anx-runtime run status ${id}\`` },
        );
      h.out(cmd, status, () => formatRunStatus(status));
      if (status.state !== 'completed') process.exitCode = EXIT.notCompleted;
    });
  run
    .command('manifest')
    .description("the run's signed Delivery Manifest")
    .argument('<run>')
    .action(async (id: string, _o: unknown, cmd: Command) => {
      const m = await h
        .client(cmd)
        .get<{ signed: unknown; ref: unknown }>(`/v1/runs/${encodeURIComponent(id)}/manifest`);
      h.out(cmd, m, () => JSON.stringify(m.signed, null, 2));
    });
  for (const action of ['pause', 'resume', 'abort'] as const) {
    run
      .command(action)
      .description(`${action} a run (as its owner)`)
      .argument('<run>')
      .option('--as <did>', 'the acting owner (default: the run owner)')
      .option('--reason <text>', 'why')
      .action(async (id: string, o: { as?: string; reason?: string }, cmd: Command) => {
        const s = await h
          .client(cmd)
          .post<RunStatusJson>(`/v1/runs/${encodeURIComponent(id)}/control`, { action, ...o });
        h.out(cmd, s, () => formatRunStatus(s));
      });
  }
  run
    .command('takeover')
    .description(
      'as the owner, settle a run waiting in takeover: deliver an artifact, reassign the stage, or skip it',
    )
    .argument('<run>')
    .argument('<action>', 'deliver | reassign | skip')
    .option('--file <file>', 'deliver: store this file as the stage output (as the owner)')
    .option('--key <key>', "deliver: vault key (default: the stage's output key)")
    .option(
      '--artifact-version <n>',
      'deliver: an existing version of --key instead of --file (also --version N)',
    )
    .option('--summary <text>', 'deliver: summary')
    .option('--worker <did>', 'reassign: the new worker')
    .option('--reason <text>', 'skip: why')
    .option('--as <did>', 'the acting owner (default: the run owner)')
    .action(
      async (
        id: string,
        action: string,
        o: {
          file?: string;
          key?: string;
          artifactVersion?: string;
          summary?: string;
          worker?: string;
          reason?: string;
          as?: string;
        },
        cmd: Command,
      ) => {
        if (!['deliver', 'reassign', 'skip'].includes(action))
          throw new AnxError(
            'ANX_ARGUMENT_INVALID',
            `takeover expected deliver, reassign or skip, got "${action}"`,
          );
        const body: Record<string, unknown> = { action };
        for (const k of ['key', 'summary', 'worker', 'reason', 'as'] as const)
          if (o[k] !== undefined) body[k] = o[k];
        if (o.artifactVersion !== undefined) body['version'] = artifactVersionOf(o.artifactVersion);
        if (o.file !== undefined)
          body['content_base64'] = readFileArg(
            '--file',
            o.file,
            'give the path of the file to deliver, or --key/--version for an artifact already in the vault',
          ).toString('base64');
        const s = await h.client(cmd).post<RunStatusJson>(`/v1/runs/${encodeURIComponent(id)}/control`, body);
        h.out(cmd, s, () => formatRunStatus(s));
      },
    );

  // ---- worker ----
  const worker = program.command('worker').description('workers of local identities');
  worker
    .command('script')
    .description('run a local command for every task of ROLE assigned to DID (kept across restarts)')
    .requiredOption('--did <did>', 'the local identity that works (and authors the artifacts)')
    .requiredOption('--role <role>', 'the role it takes')
    .option(
      '--timeout <duration>',
      'kill the command and fail the stage after this long: 90s, 10m, 1h or ms (default: 10m)',
      (v) => parseDurationMs('--timeout', v),
    )
    .option(
      '--cwd <dir>',
      'the directory the command runs in, and a relative command path is found from (default: this one)',
    )
    .argument('<argv...>', 'command and arguments (no shell); put them after --')
    .action(
      async (
        argv: string[],
        o: { did: string; role: string; timeout?: number; cwd?: string },
        cmd: Command,
      ) => {
        // The daemon runs the command: paths are made absolute here, where the user meant them.
        const cwd = resolvePath(o.cwd ?? '.');
        if (!existsSync(cwd) || !statSync(cwd).isDirectory())
          throw new AnxError('ANX_ARGUMENT_INVALID', `--cwd expected a directory, got ${cwd}`);
        const [program, ...args] = argv as [string, ...string[]];
        const command = program.includes('/') ? resolvePath(cwd, program) : program;
        if (command !== program && !existsSync(command))
          throw new AnxError('ANX_ARGUMENT_INVALID', `the command ${command} does not exist`, {
            hint: 'give a path to a program or script (relative to --cwd), or a name found on PATH',
          });
        const w = await h.client(cmd).post('/v1/workers/scripts', {
          did: o.did,
          role: o.role,
          argv: [command, ...args],
          cwd,
          ...(o.timeout === undefined ? {} : { timeout_ms: o.timeout }),
        });
        h.out(cmd, w, () => `${o.did} runs ${JSON.stringify([command, ...args])} in ${cwd} for ${o.role}`);
      },
    );
  worker
    .command('scripts')
    .description('the script workers registered on this host')
    .action(async (_o: unknown, cmd: Command) => {
      const { scripts } = await h.client(cmd).get<{
        scripts: Array<{ did: string; role: string; argv: string[]; cwd?: string; timeout_ms?: number }>;
      }>('/v1/workers/scripts');
      h.out(cmd, scripts, () =>
        scripts.length === 0
          ? 'no script workers'
          : formatTable([
              ['DID', 'ROLE', 'COMMAND', 'CWD'],
              ...scripts.map((w) => [w.did, w.role, JSON.stringify(w.argv), w.cwd ?? '-']),
            ]),
      );
    });
  worker
    .command('remove-script')
    .description("stop running a command for ROLE's tasks of DID (a command already running finishes)")
    .requiredOption('--did <did>', 'the identity the script works as')
    .requiredOption('--role <role>', 'the role it takes')
    .action(async (o: { did: string; role: string }, cmd: Command) => {
      const w = await h.client(cmd).post('/v1/workers/scripts/remove', { did: o.did, role: o.role });
      h.out(cmd, w, () => `${o.did} no longer runs a script for ${o.role}`);
    });
  worker
    .command('tasks')
    .description('open tasks assigned to a DID')
    .argument('<did>')
    .action(async (did: string, _o: unknown, cmd: Command) => {
      const { tasks } = await h.client(cmd).get<{
        tasks: Array<{ task_id: string; role: string; stage: string; claim?: { holder: string } }>;
      }>(`/v1/workers/${encodeURIComponent(did)}/tasks`);
      h.out(cmd, tasks, () =>
        tasks.length === 0
          ? 'no open tasks'
          : formatTable([
              ['TASK', 'STAGE', 'ROLE', 'WORKED ON BY'],
              ...tasks.map((t) => [t.task_id, t.stage, t.role, t.claim?.holder ?? '-']),
            ]),
      );
    });
}
