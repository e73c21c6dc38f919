// The `anx-runtime` command line: a thin shell over the daemon and its local API.
import { spawn } from 'node:child_process';
import { closeSync, fstatSync, mkdirSync, openSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Command, CommanderError, Help, Option } from 'commander';
import { readDaemonInfo } from '../../bridge/api/client.ts';
import { DataDirApiClient } from '../../bridge/sdk/daemon-api.ts';
import { PlaybookValidationError } from '../../machines/playbook/validate.ts';
import { AnxError } from '../errors.ts';
import type { EventV1 } from '../events/event.ts';
import { dataFiles, resolveDataDir } from '../paths.ts';
import { VERSION } from '../version.ts';
import { integerOption, parseJsonArg, portOption } from './args.ts';
import { registerAuthorityCommands } from './authority-commands.ts';
import {
  type InboxCommandOptions,
  inboxUnread,
  registerCollabCommands,
  wantsUnread,
} from './collab-commands.ts';
import { EXIT, exitCodeOf } from './exit-codes.ts';
import { formatDuration, formatEvent, formatTable, printable } from './format.ts';
import { registerMcpCommand } from './mcp-command.ts';
import {
  RELAY_ENV,
  registerRelayCommands,
  relayArgs,
  relayEnvOf,
  relayJoinOptions,
  type StartOptions,
} from './relay-commands.ts';
import { registerSecretaryCommands } from './secretary-commands.ts';
import { artifactVersionArgs, registerTeamworkCommands } from './teamwork-commands.ts';
import { registerWorkerCommands } from './worker-commands.ts';

interface GlobalOptions {
  dataDir?: string;
  json?: boolean;
}

const WANTS_JSON = process.argv.includes('--json');

/**
 * The global options a command's --help lists under "Global Options", less those the command takes
 * itself: `mcp --data-dir`, and `--version` where it names an artifact version (`vault get`, `run
 * takeover`: see `artifactVersionArgs`).
 */
function visibleGlobalOptions(this: Help, cmd: Command): Option[] {
  const own = new Set(cmd.options.map((o) => o.long));
  if (own.has('--artifact-version')) own.add('--version');
  return Help.prototype.visibleGlobalOptions.call(this, cmd).filter((o) => !own.has(o.long));
}

const program = new Command();
program
  .name('anx-runtime')
  .description('AgentNexus Runtime: durable actors, DIDs and signed envelopes for teams of AI agents.')
  .version(VERSION, '-v, --version', 'print the version')
  .option(
    '-d, --data-dir <dir>',
    'data directory (default: $ANX_DATA_DIR, else $XDG_DATA_HOME/anx-runtime, else ~/.local/share/anx-runtime)',
  )
  .option('--json', 'print machine-readable JSON')
  // Every command's --help lists these too (set before the commands are made: they inherit it).
  .configureHelp({ showGlobalOptions: true, visibleGlobalOptions })
  .showHelpAfterError(WANTS_JSON ? false : '(run with --help for usage)')
  // With --json a usage error is reported as JSON on stdout (see `report`), not as commander's text.
  .configureOutput({ outputError: (text, write) => (WANTS_JSON ? undefined : write(withDashHint(text))) })
  .addHelpText(
    'after',
    `
Exit codes:
  0  success
  1  unexpected internal error
  2  invalid arguments or request
  3  no daemon running for the data directory (or it does not answer)
  4  not found (unknown DID, actor, run)
  5  refused (already running, not authorized, not a local identity, frozen, token refused,
     an id given for something new that is taken)
  6  audit verify: the audit log does not verify
  7  run wait: the run failed, was aborted, or waits in takeover for its Owner
  8  run wait --timeout: the time ran out with the run still going

Examples:
  anx-runtime start                      # run a host in the foreground
  anx-runtime start --detach             # run it in the background
  anx-runtime id new --name alice
  anx-runtime send --from <did> --to <did> "hello"
  anx-runtime inbox <did>
  anx-runtime trace <did|run_id|task_id>
  anx-runtime demo                       # a dev-team playbook run end to end, with its signed manifest`,
  );
program.exitOverride();

/**
 * Commander's "unknown option '-x…'" also fires for an argument that merely begins with `-` (an id
 * from another runtime, a negative number): say how to pass one.
 */
function dashHint(text: string): string | undefined {
  const m = /^error: unknown option '(-[^-][^']*)'/.exec(text);
  if (m === null) return undefined;
  return `an argument that begins with '-' goes after '--', e.g. anx-runtime gatekeeper approve DID -- ${m[1]}`;
}

function withDashHint(text: string): string {
  const hint = dashHint(text);
  return hint === undefined ? text : `${text.trimEnd()}\nhint: ${hint}\n`;
}

function globals(cmd: Command): GlobalOptions {
  return cmd.optsWithGlobals() as GlobalOptions;
}

function dataDirOf(cmd: Command): string {
  return resolveDataDir(globals(cmd).dataDir);
}

/** A client of the data directory's daemon that follows it across restarts (long-running commands need it). */
function client(cmd: Command): DataDirApiClient {
  return new DataDirApiClient(dataDirOf(cmd));
}

function out(cmd: Command, json: unknown, text: () => string): void {
  if (globals(cmd).json) process.stdout.write(`${JSON.stringify(json, null, 2)}\n`);
  else process.stdout.write(`${printable(text())}\n`);
}

program
  .command('start')
  .description('start a host: restores every persisted actor and serves the local API on 127.0.0.1')
  .addOption(
    new Option('-p, --port <port>', 'local API port on 127.0.0.1 (0 picks a free one)')
      .default(8765)
      .argParser(portOption('--port')),
  )
  .option('--detach', 'run in the background; prints where it listens and returns')
  .option(
    '--relay <url>',
    `join a relay hub: start a local leaf joined to nats-leaf://USER:PASS@HUB:PORT (tls://… for a hub with TLS); default $${RELAY_ENV}, which keeps the password out of the process list`,
  )
  .option(
    '--relay-ca <file>',
    "PEM file of the CA that signed a tls:// hub's certificate (default: system CAs)",
  )
  .option(
    '--nats <url>',
    'join the relay through an existing NATS server (a shared leaf): nats://[USER:PASSWORD@]HOST:PORT, as the host that started it prints (ANX_NATS keeps the password out of the process list)',
  )
  .option(
    '--leaf-port <port>',
    'client port of the leaf --relay starts (default 4223; 0 picks one)',
    portOption('--leaf-port'),
  )
  .option(
    '--leaf-host <addr>',
    'address that leaf serves hosts on (default 127.0.0.1; a LAN address shares it)',
  )
  .option(
    '--revocation-max-staleness <s>',
    'seconds the revocation list may be out of sync with the relay before tokens issued on other hosts are refused (default 300)',
    integerOption('--revocation-max-staleness', 1, Number.MAX_SAFE_INTEGER, 'seconds'),
  )
  .action(async (options: StartOptions, cmd: Command) => {
    const dataDir = dataDirOf(cmd);
    const json = globals(cmd).json === true;
    const joined = relayJoinOptions(options);
    // Hub link trouble goes to stderr (the log file of a detached daemon): the host keeps running.
    const relay =
      joined === undefined
        ? undefined
        : {
            ...joined,
            onWarning: (message: string) =>
              process.stderr.write(
                json
                  ? `${JSON.stringify({ warning: { code: 'ANX_RELAY_HUB', message, at: new Date().toISOString() } })}\n`
                  : `warning: ${printable(message)}\n`,
              ),
          };
    if (options.detach) {
      await startDetached(cmd, dataDir, options.port, relayArgs(options), relayEnvOf(options));
      return;
    }
    // The host and its dependencies load only for commands that run one: client commands stay quick.
    const { startDaemon } = await import('../daemon.ts');
    const daemon = await startDaemon({
      dataDir,
      port: options.port,
      ...(relay === undefined ? {} : { relay }),
      onReady: (info) =>
        out(cmd, { ...info, version: VERSION }, () =>
          [
            `anx-runtime ${VERSION} listening on ${info.url} (pid ${info.pid})`,
            `data directory: ${info.dataDir}${info.replayed > 0 ? ` — replayed ${info.replayed} pending messages` : ''}`,
            `API token: ${dataFiles.token(info.dataDir)} (readable by you only)`,
            `playground: ${info.url}/playground/ (\`anx-runtime playground\` prints the link with your token)`,
            ...(info.relayShareUrl === undefined
              ? []
              : [
                  `other hosts of the LAN share this leaf with: ANX_NATS='${info.relayShareUrl}' anx-runtime start`,
                ]),
            'Press Ctrl+C to stop.',
          ].join('\n'),
        ),
    });
    const stop = () => void daemon.shutdown();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    await daemon.done;
    if (daemon.failure !== undefined) {
      process.exitCode = report(daemon.failure, globals(cmd).json === true);
      return;
    }
    if (!globals(cmd).json) process.stderr.write('anx-runtime stopped.\n');
  });

async function startDetached(
  cmd: Command,
  dataDir: string,
  port: number,
  extra: string[] = [],
  relayEnv: Record<string, string> = {},
): Promise<void> {
  const launcher = fileURLToPath(new URL('../../bin/anx-runtime.js', import.meta.url));
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const log = openSync(dataFiles.log(dataDir), 'a', 0o600);
  // Where this start's output begins in the log: its error, if it fails, is read from there.
  const logStart = fstatSync(log).size;
  const child = spawn(
    process.execPath,
    [launcher, '--data-dir', dataDir, '--json', 'start', '--port', String(port), ...extra],
    {
      detached: true,
      stdio: ['ignore', log, log],
      // The relay URL holds the leaf password: handed down in the environment, never in the arguments.
      env: { ...process.env, ...relayEnv },
    },
  );
  closeSync(log);
  let exited: number | null = null;
  child.once('exit', (code) => {
    exited = code ?? 1;
  });
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    const info = readDaemonInfo(dataDir);
    if (info !== undefined && info.pid === child.pid) {
      child.unref();
      out(
        cmd,
        info,
        () =>
          `anx-runtime ${info.version} started in the background on ${info.url} (pid ${info.pid})\nlog: ${dataFiles.log(dataDir)}`,
      );
      return;
    }
    if (exited !== null) {
      // The child reports with --json: its error is the last JSON object it wrote. It is this start's error.
      const reported = lastJsonError(dataFiles.log(dataDir), logStart);
      if (reported !== undefined)
        throw new AnxError(reported.code, reported.message, {
          hint: `${reported.hint === undefined ? '' : `${reported.hint}; `}the daemon's log: ${dataFiles.log(dataDir)}`,
        });
      throw new AnxError('ANX_DAEMON_START', `the daemon exited with code ${exited} before it was ready`, {
        hint: `read ${dataFiles.log(dataDir)} for the reason`,
      });
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new AnxError('ANX_DAEMON_START', 'the daemon did not become ready within 30 s', {
    hint: `read ${dataFiles.log(dataDir)}`,
  });
}

/** The last `{"error": …}` object written to `file` after byte `from` (a `--json` command's failure). */
function lastJsonError(
  file: string,
  from: number,
): { code: string; message: string; hint?: string } | undefined {
  let text: string;
  try {
    text = readFileSync(file).subarray(from).toString('utf8');
  } catch {
    return undefined;
  }
  for (let at = text.lastIndexOf('{\n  "error"'); at >= 0; at = text.lastIndexOf('{\n  "error"', at - 1)) {
    for (let end = text.indexOf('\n}', at); end >= 0; end = text.indexOf('\n}', end + 1)) {
      try {
        const { error } = JSON.parse(text.slice(at, end + 2)) as {
          error?: { code?: unknown; message?: unknown; hint?: unknown };
        };
        if (typeof error?.code === 'string' && typeof error.message === 'string')
          return {
            code: error.code,
            message: error.message,
            ...(typeof error.hint === 'string' ? { hint: error.hint } : {}),
          };
      } catch {
        // Not the end of that object yet.
      }
    }
    if (at === 0) break;
  }
  return undefined;
}

program
  .command('status')
  .description('show whether a daemon runs for the data directory, and what it holds')
  .action(async (_options: unknown, cmd: Command) => {
    const status = await client(cmd).get<
      Record<string, unknown> & {
        actors: { live: number; timers: number };
        seen?: { entries: number; retentionMs: number };
      }
    >('/v1/status');
    out(cmd, { running: true, ...status }, () =>
      formatTable([
        ['running', 'yes'],
        ['version', String(status.version)],
        ['pid', String(status.pid)],
        ['data directory', String(status.dataDir)],
        ['uptime', `${Math.round(Number(status.uptimeMs) / 1000)} s`],
        ['identities', String(status.identities)],
        ['live actors', String(status.actors.live)],
        ['pending timers', String(status.actors.timers)],
        ['outbox (unacknowledged)', String(status.outbox)],
        ...(status.seen === undefined
          ? []
          : [
              [
                'accepted ids kept',
                `${status.seen.entries} (for ${formatDuration(status.seen.retentionMs)} after their ts)`,
              ] as [string, string],
            ]),
        ['last event seq', String(status.lastEventSeq)],
      ]),
    );
  });

program
  .command('stop')
  .description('stop the daemon of the data directory (pending work is kept and resumes at next start)')
  .action(async (_options: unknown, cmd: Command) => {
    const dataDir = dataDirOf(cmd);
    const info = readDaemonInfo(dataDir);
    await client(cmd).post('/v1/stop');
    // Wait until it has let go of its files, so a following `start` finds the directory free.
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline && readDaemonInfo(dataDir) !== undefined)
      await new Promise((r) => setTimeout(r, 50));
    out(cmd, { stopped: true, pid: info?.pid }, () => `anx-runtime (pid ${info?.pid}) stopped.`);
  });

const id = program.command('id').description('manage the identities (DIDs) this host holds keys for');
id.command('new')
  .description('create a new identity: an Ed25519 key in the keystore and its DID actor')
  .option('-n, --name <name>', 'a human-readable name')
  .action(async (options: { name?: string }, cmd: Command) => {
    const record = await client(cmd).post<{ did: string; name: string | null; createdAt: number }>(
      '/v1/identities',
      options.name === undefined ? {} : { name: options.name },
    );
    out(cmd, record, () => record.did);
  });
id.command('show')
  .description('show a local identity: name, inbox counters and its DID document (public keys only)')
  .argument('<did>', 'a local identity (did:agentnexus or did:key form)')
  .action(async (did: string, _options: unknown, cmd: Command) => {
    const info = await client(cmd).get<{
      did: string;
      name: string | null;
      received: number;
      unread: number;
      document: unknown;
    }>(`/v1/identities/${encodeURIComponent(did)}`);
    out(cmd, info, () =>
      [
        formatTable([
          ['DID', info.did],
          ['name', info.name ?? ''],
          ['received', String(info.received)],
          ['unread', String(info.unread)],
        ]),
        JSON.stringify(info.document, null, 2),
      ].join('\n'),
    );
  });
id.command('list')
  .description('list local identities with their inbox counters')
  .action(async (_options: unknown, cmd: Command) => {
    const { identities } = await client(cmd).get<{
      identities: Array<{
        did: string;
        name: string | null;
        received: number;
        unread: number;
        presence: string;
      }>;
    }>('/v1/identities');
    out(cmd, identities, () =>
      identities.length === 0
        ? 'no identities yet — create one with `anx-runtime id new`'
        : formatTable([
            ['DID', 'NAME', 'RECEIVED', 'UNREAD'],
            ...identities.map((i) => [i.did, i.name ?? '', String(i.received), String(i.unread)]),
          ]),
    );
  });

program
  .command('send')
  .description('send a message from a local identity to a DID')
  .requiredOption('--from <did>', 'a local identity to send as')
  .requiredOption('--to <did>', 'the recipient DID (or actor address)')
  .option('-t, --type <type>', 'message type', 'message')
  .option('--body-json <json>', 'send this JSON as the body instead of TEXT')
  .option('--id <id>', 'message id for idempotent retries (16-64 of [A-Za-z0-9_-])')
  .argument('[text...]', 'message text (body becomes {"text": TEXT})')
  .action(
    async (
      text: string[],
      options: { from: string; to: string; type: string; bodyJson?: string; id?: string },
      cmd: Command,
    ) => {
      let body: unknown;
      if (options.bodyJson !== undefined) {
        body = parseJsonArg('--body-json', options.bodyJson);
      } else if (text.length > 0) {
        body = { text: text.join(' ') };
      } else {
        throw new AnxError('ANX_ARGUMENT_INVALID', 'send expected TEXT or --body-json', {
          hint: 'anx-runtime send --from <did> --to <did> "hello"',
        });
      }
      const { results } = await client(cmd).post<{ results: Array<{ id: string; duplicate: boolean }> }>(
        '/v1/messages',
        {
          from: options.from,
          to: options.to,
          type: options.type,
          body,
          ...(options.id === undefined ? {} : { id: options.id }),
        },
      );
      const result = results[0]!;
      out(cmd, result, () =>
        result.duplicate ? `${result.id} (already accepted earlier; not sent again)` : result.id,
      );
    },
  );

program
  .command('inbox')
  .description("show a local identity's inbox, oldest first")
  .argument('<did>', 'a local identity')
  .option('--after <seq>', 'only messages after this inbox sequence number', integerOption('--after'))
  .option('--limit <n>', 'at most this many messages', integerOption('--limit'))
  .option('--unread', 'only unread messages (after the read mark), with unread and mention counts')
  .option('--mentions', 'only unread messages that mention the DID (@DID, @name, mention notices)')
  .option('--mark-read', 'mark the inbox read (through --through, default: the newest message)')
  .option('--through <seq>', 'with --mark-read: the last sequence number read', integerOption('--through'))
  .action(async (did: string, options: InboxCommandOptions, cmd: Command) => {
    if (wantsUnread(options)) return inboxUnread({ client, out }, cmd, did, options);
    const query = new URLSearchParams();
    if (options.after !== undefined) query.set('after', String(options.after));
    if (options.limit !== undefined) query.set('limit', String(options.limit));
    const inbox = await client(cmd).get<{
      did: string;
      received: number;
      unread: number;
      messages: Array<{ seq: number; id: string; type: string; from: string; ts: number; body: unknown }>;
    }>(`/v1/inbox/${encodeURIComponent(did)}${query.size > 0 ? `?${query}` : ''}`);
    out(cmd, inbox, () => {
      const lines = [`${inbox.did}: ${inbox.received} received, ${inbox.unread} unread`];
      for (const m of inbox.messages) {
        const body = (m.body as { text?: unknown } | null)?.text ?? JSON.stringify(m.body);
        lines.push(`#${m.seq} ${new Date(m.ts).toISOString()} ${m.type} from ${m.from}: ${String(body)}`);
      }
      return lines.join('\n');
    });
  });

program
  .command('trace')
  .description('show the events of a run, task or actor (DID) in order; `*` for the whole host')
  .argument('<id>', 'a run_id, task_id, DID or actor address')
  .option(
    '-k, --kind <kinds>',
    'only these kinds, comma-separated (status,message,artifact,tool,reasoning,error)',
  )
  .option('--since <time>', 'only events at or after this time (ms since epoch or ISO date)')
  .option('--until <time>', 'only events before this time')
  .option('--limit <n>', 'at most this many events', integerOption('--limit'))
  .option(
    '-f, --follow',
    'then keep printing events as they commit, across daemon restarts, until interrupted (Ctrl-C); with --json one event per line',
  )
  .action(
    async (
      traceId: string,
      options: { kind?: string; since?: string; until?: string; limit?: number; follow?: boolean },
      cmd: Command,
    ) => {
      if (options.follow === true && (options.until !== undefined || options.limit !== undefined))
        throw new AnxError(
          'ANX_ARGUMENT_INVALID',
          '--follow prints events as they come: it takes no --until or --limit',
          {
            hint: 'drop --until and --limit, or --follow',
          },
        );
      const query = new URLSearchParams();
      if (options.kind !== undefined) query.set('kind', options.kind);
      if (options.since !== undefined) query.set('since', options.since);
      if (options.until !== undefined) query.set('until', options.until);
      if (options.limit !== undefined) query.set('limit', String(options.limit));
      const api = client(cmd);
      const { events } = await api.get<{ events: EventV1[] }>(
        `/v1/trace/${encodeURIComponent(traceId)}${query.size > 0 ? `?${query}` : ''}`,
      );
      if (options.follow !== true) {
        out(cmd, events, () =>
          events.length === 0 ? `no events for ${traceId}` : events.map(formatEvent).join('\n'),
        );
        return;
      }
      const json = globals(cmd).json === true;
      const print = (e: EventV1) =>
        process.stdout.write(json ? `${JSON.stringify(e)}\n` : `${printable(formatEvent(e))}\n`);
      for (const e of events) print(e);
      await followUntilInterrupted(async (signal) => {
        for await (const e of api.follow(
          {
            id: traceId,
            ...(options.kind === undefined ? {} : { kinds: options.kind.split(',') }),
            ...(options.since === undefined ? {} : { since: options.since }),
            after: events.at(-1)?.seq ?? 0,
          },
          signal,
          waitNotice,
        ))
          print(e);
      });
    },
  );

/** Tells (on stderr) that a follower waits for its daemon to come back. */
function waitNotice(reason: AnxError): void {
  process.stderr.write(
    `${printable(`waiting for the daemon (${reason.message}); it goes on once the daemon answers again (Ctrl-C to stop)`)}\n`,
  );
}

/** Runs `follow` until Ctrl-C (SIGINT) or SIGTERM; both end the command normally. */
async function followUntilInterrupted(follow: (signal: AbortSignal) => Promise<void>): Promise<void> {
  const controller = new AbortController();
  const stop = () => controller.abort();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  try {
    await follow(controller.signal);
  } finally {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
  }
}

program
  .command('playground')
  .description(
    'print the link to the web playground of the running daemon (statecharts, timeline, topology, vault, run controls)',
  )
  .option('--run <run_id>', 'open the playground on this run')
  .addHelpText(
    'after',
    '\nThe link carries the API token in its #fragment, which the browser never sends to the server.\nTreat it like the token file: do not share it.',
  )
  .action(async (options: { run?: string }, cmd: Command) => {
    const dataDir = dataDirOf(cmd);
    const api = client(cmd);
    await api.get('/v1/status');
    const info = readDaemonInfo(dataDir);
    const token = readFileSync(dataFiles.token(dataDir), 'utf8').trim();
    const { playgroundUrl } = await import('../../bridge/api/playground-routes.ts');
    const url = playgroundUrl(info?.url ?? api.baseUrl, token, options.run);
    out(
      cmd,
      { url },
      () => `${url}\n(open it in a browser on this machine; the link holds your API token — do not share it)`,
    );
  });

registerRelayCommands(program, { dataDirOf, client, out });
registerTeamworkCommands(program, { dataDirOf, client, out, waitNotice });
registerCollabCommands(program, { client, out });
registerAuthorityCommands(program, { client, out });
registerSecretaryCommands(program, { client, out });
registerWorkerCommands(program, { client, out });
registerMcpCommand(program, dataDirOf);

program
  .command('demo')
  .description(
    'run the dev-team playbook end to end on an embedded host with scripted workers, and print the signed manifest',
  )
  .option('--keep', 'keep the demo data directory and print where it is')
  .action(async (options: { keep?: boolean }, cmd: Command) => {
    const { runDemo } = await import('./demo.ts');
    const result = await runDemo({
      log: (line) => process.stderr.write(`${line}\n`),
      ...(options.keep === true ? { keep: true } : {}),
    });
    out(cmd, { run_id: result.run_id, verified: result.verified, ...result.manifest }, () =>
      [
        '',
        `Delivery Manifest of ${result.run_id} (vault ${result.manifest.ref.key}@${result.manifest.ref.version}):`,
        JSON.stringify(result.manifest.signed, null, 2),
        `signature by ${result.manifest.signed.signer}: ${result.verified ? 'verified' : 'INVALID'}`,
        ...(options.keep === true ? [`data directory kept: ${result.dataDir}`] : []),
      ].join('\n'),
    );
    if (!result.verified) process.exitCode = 1;
  });

/**
 * The command the arguments name (`run start`), walking the command tree over the words that are
 * commands: also for errors raised while options are still being parsed, before any action runs.
 */
function commandNamed(args: string[]): string | undefined {
  const names: string[] = [];
  let at: Command = program;
  for (let i = 0; i < args.length; i++) {
    const a = args[i] as string;
    if (a === '-d' || a === '--data-dir') i++;
    if (a.startsWith('-')) continue;
    const next = at.commands.find((c) => c.name() === a || c.aliases().includes(a));
    if (next === undefined) break;
    names.push(next.name());
    at = next;
  }
  return names.length === 0 ? undefined : names.join(' ');
}

function report(err: unknown, json: boolean): number {
  if (err instanceof CommanderError) {
    // Help and --version end here too, with exit code 0 and their text already printed.
    if (err.exitCode === 0) return EXIT.ok;
    if (json) {
      const usage = new AnxError('ANX_ARGUMENT_USAGE', err.message.replace(/^error: /, ''), {
        hint: dashHint(err.message) ?? 'run the command with --help for its usage',
      });
      process.stdout.write(`${JSON.stringify({ error: usage.toJSON() }, null, 2)}\n`);
    }
    return EXIT.usage;
  }
  const anx =
    err instanceof AnxError
      ? err
      : new AnxError('ANX_INTERNAL', (err as Error)?.message ?? String(err), { cause: err });
  // Every error says what to do: a bad argument without a hint of its own points at the command's help.
  const command = commandNamed(process.argv.slice(2));
  const hint =
    anx.hint ??
    (exitCodeOf(anx) === EXIT.usage && command !== undefined
      ? `see \`anx-runtime ${command} --help\` for what each option takes`
      : undefined);
  if (json) {
    process.stdout.write(
      `${JSON.stringify({ error: { ...anx.toJSON(), ...(hint === undefined ? {} : { hint }) } }, null, 2)}\n`,
    );
  } else {
    process.stderr.write(`error: ${printable(anx.message)}\n`);
    // A playbook's message names its first issues; every one is listed below it.
    if (anx instanceof PlaybookValidationError && anx.issues.length > 3)
      for (const i of anx.issues) process.stderr.write(`  ${i.path}: expected ${i.expected}, got ${i.got}\n`);
    if (hint) process.stderr.write(`hint: ${printable(hint)}\n`);
    if (!(err instanceof AnxError) && process.env.ANX_DEBUG)
      process.stderr.write(`${(err as Error)?.stack}\n`);
  }
  return exitCodeOf(anx);
}

/** `anx-runtime --version` (or `-v`), with only global options beside it: the version, as JSON on request. */
function versionOnly(argv: string[]): boolean {
  const rest: string[] = [];
  for (let i = 2; i < argv.length; i++) {
    const a = argv[i] as string;
    if (a === '-d' || a === '--data-dir') i++;
    else if (a !== '--json' && !a.startsWith('--data-dir=')) rest.push(a);
  }
  return rest.length === 1 && (rest[0] === '--version' || rest[0] === '-v');
}

// Output piped into a reader that stopped (`| head`): the rest is not wanted, which is no error.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(0);
  throw err;
});

try {
  if (versionOnly(process.argv))
    process.stdout.write(WANTS_JSON ? `${JSON.stringify({ version: VERSION })}\n` : `${VERSION}\n`);
  else await program.parseAsync(artifactVersionArgs(process.argv, commandNamed(process.argv.slice(2))));
} catch (err) {
  process.exitCode = report(err, process.argv.includes('--json'));
}
