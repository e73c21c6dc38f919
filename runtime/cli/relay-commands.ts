// The relay's CLI commands: `relay start` (a hub), `relay status`, `discover`, `card publish`, `webhook set`, and `start`'s relay flags.
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join, resolve } from 'node:path';
import { type Command, Option } from 'commander';
import type { ApiClient } from '../../bridge/api/client.ts';
import { recordServer, stopOrphanServer } from '../../bridge/relay/join.ts';
import {
  freeLoopbackPort,
  generateCredentials,
  hostCredentialsOf,
  hubConfig,
  type LeafCredentials,
  NatsServer,
  natsUrlWithLogin,
} from '../../bridge/relay/nats-server.ts';
import type { HubStatus } from '../../bridge/relay/relay.ts';
import { AnxError } from '../errors.ts';
import { checkReadableFile, integerOption, portOption } from './args.ts';
import { formatTable } from './format.ts';
import { secretArg } from './secret-arg.ts';

export interface StartOptions {
  port: number;
  detach?: boolean;
  relay?: string;
  relayCa?: string;
  nats?: string;
  leafPort?: number;
  leafHost?: string;
  /** Seconds the revocation list may be out of sync with the relay before foreign tokens are refused. */
  revocationMaxStaleness?: number;
}

interface Helpers {
  dataDirOf(cmd: Command): string;
  client(cmd: Command): ApiClient;
  out(cmd: Command, json: unknown, text: () => string): void;
}

function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

/** The variable `start` reads the relay URL from when `--relay` is not given (its password stays out of `ps`). */
export const RELAY_ENV = 'ANX_RELAY';

/** The variable `start` reads the NATS URL from when no relay flag or `ANX_RELAY` is given (it may hold a password). */
export const NATS_ENV = 'ANX_NATS';

const fromEnv = (name: string): string | undefined => {
  const value = process.env[name];
  return value === undefined || value === '' ? undefined : value;
};

/** `--relay`, else `$ANX_RELAY` (only when `--nats` is not given either). */
function relayUrlOf(o: StartOptions): string | undefined {
  if (o.relay !== undefined) return o.relay;
  return o.nats === undefined ? fromEnv(RELAY_ENV) : undefined;
}

/** `--nats`, else `$ANX_NATS` (only when no relay URL is given at all). */
function natsUrlOfStart(o: StartOptions): string | undefined {
  if (o.nats !== undefined) return o.nats;
  return relayUrlOf(o) === undefined ? fromEnv(NATS_ENV) : undefined;
}

/** The daemon's relay options from `start`'s flags; undefined when the host runs alone. */
export function relayJoinOptions(given: StartOptions) {
  const relayUrl = relayUrlOf(given);
  const natsUrl = natsUrlOfStart(given);
  const o = {
    ...given,
    ...(relayUrl === undefined ? {} : { relay: relayUrl }),
    ...(natsUrl === undefined ? {} : { nats: natsUrl }),
  };
  if (o.relay !== undefined && o.nats !== undefined) {
    throw new AnxError('ANX_ARGUMENT_INVALID', 'start expected --relay or --nats, got both', {
      hint: '--relay starts a local leaf joined to the hub; --nats uses a leaf that already runs',
    });
  }
  if (o.relay === undefined && o.nats === undefined) {
    // Options of a relay that is not there would be dropped without a word.
    const given = (
      [
        ['--relay-ca', o.relayCa],
        ['--leaf-port', o.leafPort],
        ['--leaf-host', o.leafHost],
        ['--revocation-max-staleness', o.revocationMaxStaleness],
      ] as const
    )
      .filter(([, value]) => value !== undefined)
      .map(([flag]) => flag);
    if (given.length > 0)
      throw new AnxError(
        'ANX_ARGUMENT_INVALID',
        `start expected ${given.join(', ')} only with --relay or --nats`,
        {
          hint: `give --relay nats-leaf://… (or $${RELAY_ENV}) to join a hub, or leave ${given.join(', ')} out: a host without a relay checks tokens against its own revocation list only`,
        },
      );
    return undefined;
  }
  // nats-server reads it later, in another process: a path it cannot read is reported here. (With a
  // URL that is not tls://, joining says that --relay-ca does not go with it.)
  if (o.relayCa !== undefined && o.relay !== undefined && /^tls:\/\//i.test(o.relay))
    checkReadableFile(
      '--relay-ca',
      o.relayCa,
      "give the PEM file of the CA that signed the hub's certificate",
    );
  const heartbeat = Number(process.env.ANX_HEARTBEAT_MS);
  return {
    ...(o.relay === undefined ? {} : { relayUrl: o.relay }),
    ...(o.relayCa === undefined ? {} : { relayCa: o.relayCa }),
    ...(o.nats === undefined ? {} : { natsUrl: o.nats }),
    ...(o.leafPort === undefined ? {} : { leafPort: o.leafPort }),
    ...(o.leafHost === undefined ? {} : { leafHost: o.leafHost }),
    ...(Number.isInteger(heartbeat) && heartbeat > 0 ? { heartbeatMs: heartbeat } : {}),
    ...(o.revocationMaxStaleness === undefined
      ? {}
      : { relay: { revocationMaxStalenessMs: o.revocationMaxStaleness * 1_000 } }),
  };
}

/** `start`'s relay flags again, for the detached child (the relay and NATS URLs go in `relayEnvOf`). */
export function relayArgs(o: StartOptions): string[] {
  const args: string[] = [];
  if (o.relayCa !== undefined) args.push('--relay-ca', resolve(o.relayCa));
  if (o.leafPort !== undefined) args.push('--leaf-port', String(o.leafPort));
  if (o.leafHost !== undefined) args.push('--leaf-host', o.leafHost);
  if (o.revocationMaxStaleness !== undefined)
    args.push('--revocation-max-staleness', String(o.revocationMaxStaleness));
  return args;
}

/** The environment that hands the relay or NATS URL (which may hold a password) to the detached child. */
export function relayEnvOf(o: StartOptions): Record<string, string> {
  const url = relayUrlOf(o);
  if (url !== undefined) return { [RELAY_ENV]: url };
  const nats = natsUrlOfStart(o);
  // An empty ANX_RELAY keeps one the parent's environment had from taking over.
  return nats === undefined ? {} : { [NATS_ENV]: nats, [RELAY_ENV]: '' };
}

function loadCredentials(file: string): LeafCredentials {
  if (existsSync(file)) {
    const raw = JSON.parse(readFileSync(file, 'utf8')) as Partial<LeafCredentials>;
    if (typeof raw.user !== 'string' || typeof raw.password !== 'string' || raw.password.length < 16)
      throw new AnxError(
        'ANX_RELAY_CREDENTIALS_INVALID',
        `${file} expected {"user", "password"} (16+ characters)`,
        {
          hint: `delete ${file} to have new credentials generated (every leaf must then use them)`,
        },
      );
    return { user: raw.user, password: raw.password };
  }
  const creds = generateCredentials();
  writeFileSync(file, `${JSON.stringify(creds, null, 2)}\n`, { mode: 0o600 });
  return creds;
}

export function registerRelayCommands(program: Command, h: Helpers): void {
  const relay = program.command('relay').description('run or inspect the NATS relay hosts talk through');
  relay
    .command('start')
    .description(
      'run a relay hub: nats-server with JetStream and an authenticated leafnode listener, supervised',
    )
    .addOption(
      new Option('-p, --port <port>', 'client port on 127.0.0.1')
        .default(4222)
        .argParser(portOption('--port')),
    )
    .addOption(
      new Option('-l, --leaf-port <port>', 'leafnode port hosts join on')
        .default(7422)
        .argParser(portOption('--leaf-port')),
    )
    .option('--leaf-host <addr>', 'address of the leafnode listener', '0.0.0.0')
    .option('--http-port <port>', 'monitoring port on 127.0.0.1 (default off)', portOption('--http-port'))
    .option(
      '--tls-cert <file>',
      'PEM certificate for TLS on the leafnode port (with --tls-key); leaves join with tls://',
    )
    .option('--tls-key <file>', 'PEM private key of --tls-cert')
    .option(
      '--public-host <name>',
      'the name hosts reach this hub by, for the printed join command',
      hostname(),
    )
    .action(
      async (
        o: {
          port: number;
          leafPort: number;
          leafHost: string;
          httpPort?: number;
          publicHost: string;
          tlsCert?: string;
          tlsKey?: string;
        },
        cmd: Command,
      ) => {
        if ((o.tlsCert === undefined) !== (o.tlsKey === undefined))
          throw new AnxError(
            'ANX_ARGUMENT_INVALID',
            'relay start expected --tls-cert and --tls-key together',
            {
              hint: 'give both PEM files (certificate and its private key), or neither for a plain leafnode port',
            },
          );
        const tlsHint = 'pass the paths of the PEM certificate and key the hub should present';
        if (o.tlsCert !== undefined) checkReadableFile('--tls-cert', o.tlsCert, tlsHint);
        if (o.tlsKey !== undefined) checkReadableFile('--tls-key', o.tlsKey, tlsHint);
        const tls =
          o.tlsCert === undefined || o.tlsKey === undefined
            ? undefined
            : { certFile: resolve(o.tlsCert), keyFile: resolve(o.tlsKey) };
        // Port 0 picks free ports (tests, trying it out).
        if (o.port === 0) o.port = await freeLoopbackPort();
        if (o.leafPort === 0) o.leafPort = await freeLoopbackPort();
        const dir = join(h.dataDirOf(cmd), 'hub');
        mkdirSync(dir, { recursive: true, mode: 0o700 });
        const credentialsFile = join(dir, 'credentials.json');
        const credentials = loadCredentials(credentialsFile);
        // Hosts on this machine connecting to the client port show they have the join URL too.
        const clients = hostCredentialsOf(credentials);
        const server = new NatsServer({
          dir,
          name: 'hub.conf',
          port: o.port,
          config: hubConfig({
            port: o.port,
            leafPort: o.leafPort,
            leafHost: o.leafHost,
            ...(o.httpPort === undefined ? {} : { httpPort: o.httpPort }),
            storeDir: join(dir, 'jetstream'),
            credentials,
            clients,
            ...(tls === undefined ? {} : { tls }),
          }),
        });
        // The hub a `relay start` killed with -9 left running: stopped, so this one supervises its own.
        const pidFile = join(dir, 'hub.pid');
        await stopOrphanServer(pidFile, server.configFile);
        server.onSpawn = (pid) => recordServer(pidFile, pid);
        server.onRestart = (code, output) => {
          const last = output.trim().split('\n').at(-1) ?? '';
          if (cmd.optsWithGlobals().json === true)
            process.stdout.write(`${JSON.stringify({ event: 'restarting', code, last_output: last })}\n`);
          else
            process.stderr.write(
              `nats-server exited (code ${code}); starting it again. Its last line: ${last}\n`,
            );
        };
        await server.start({ supervise: true });
        const join_ = `${tls === undefined ? 'nats-leaf' : 'tls'}://${encodeURIComponent(credentials.user)}:${encodeURIComponent(credentials.password)}@${o.publicHost}:${o.leafPort}`;
        const hostUrl = natsUrlWithLogin(server.url, clients);
        h.out(
          cmd,
          {
            pid: server.pid,
            config: server.configFile,
            log: server.logFile,
            clientUrl: server.url,
            hostUrl,
            leafListen: `${o.leafHost}:${o.leafPort}`,
            join: join_,
            tls: tls !== undefined,
            credentials: credentialsFile,
          },
          () =>
            [
              `relay hub running (nats-server pid ${server.pid}), config ${server.configFile}, log ${server.logFile}`,
              `  clients:   ${server.url}`,
              `  leafnodes: ${o.leafHost}:${o.leafPort}${tls === undefined ? '' : ' over TLS'} (user/password in ${credentialsFile}, readable by you only)`,
              'Hosts join with:',
              `  ANX_RELAY='${join_}' anx-runtime start${tls === undefined ? '' : ' [--relay-ca <CA file> for a private CA]'}`,
              '  (or --relay URL; the variable keeps the password out of the process list)',
              'Hosts on this machine may use the hub directly instead:',
              `  ANX_NATS='${hostUrl}' anx-runtime start`,
              'Several hosts on one machine share its leaf by starting with the same join URL; on a LAN, start the',
              'first with --leaf-host <its LAN address>: it prints the ANX_NATS value the others start with.',
              'Press Ctrl+C to stop.',
            ].join('\n'),
        );
        await new Promise<void>((resolve) => {
          process.once('SIGINT', () => resolve());
          process.once('SIGTERM', () => resolve());
        });
        await server.stop();
        rmSync(pidFile, { force: true });
        process.stderr.write('relay hub stopped.\n');
      },
    );
  relay
    .command('status')
    .description(
      "show this host's relay link: connected, whether the hub answers (and why not), peers online, cards, traffic counters",
    )
    .action(async (_o: unknown, cmd: Command) => {
      const status = await h.client(cmd).get<Record<string, unknown>>('/v1/relay');
      const hubText = (hub: HubStatus): string =>
        `${hub.reachable ? 'reachable' : 'NOT reachable'} at ${hub.address}${
          hub.problem === undefined
            ? ''
            : ` — ${hub.problem.kind}: ${hub.problem.message} (${new Date(hub.problem.at).toISOString()})`
        }`;
      h.out(cmd, status, () =>
        formatTable(
          Object.entries(status).map(([k, v]) => [k, k === 'hub' ? hubText(v as HubStatus) : String(v)]),
        ),
      );
    });

  program
    .command('discover')
    .description("find agents: this host's identities, and with a relay the directory's signed cards")
    .option('--capability <c>', 'only agents with this capability')
    .option('--role <r>', 'only agents with this role')
    .option('--tag <t>', 'only agents with this tag')
    .option('--protocol <p>', 'only agents speaking this protocol')
    .option('--min-trust <x>', 'only agents trusted at least this much (0..1; unknown agents count as 0.5)')
    .option('--online', 'only agents online now')
    .action(
      async (
        o: {
          capability?: string;
          role?: string;
          tag?: string;
          protocol?: string;
          minTrust?: string;
          online?: boolean;
        },
        cmd: Command,
      ) => {
        const q = new URLSearchParams();
        if (o.capability !== undefined) q.set('capability', o.capability);
        if (o.role !== undefined) q.set('role', o.role);
        if (o.tag !== undefined) q.set('tag', o.tag);
        if (o.protocol !== undefined) q.set('protocol', o.protocol);
        if (o.minTrust !== undefined) q.set('min_trust', o.minTrust);
        if (o.online) q.set('online', '1');
        const { cards } = await h.client(cmd).get<{
          cards: Array<{
            did: string;
            name: string;
            roles: string[];
            capabilities: string[];
            online: boolean;
            trust: number;
          }>;
        }>(`/v1/discover${q.size > 0 ? `?${q}` : ''}`);
        h.out(cmd, cards, () =>
          cards.length === 0
            ? 'no matching agents (cards appear within a second of being published)'
            : formatTable([
                ['DID', 'NAME', 'ROLES', 'CAPABILITIES', 'ONLINE', 'TRUST'],
                ...cards.map((c) => [
                  c.did,
                  c.name,
                  c.roles.join(','),
                  c.capabilities.join(','),
                  c.online ? 'yes' : 'no',
                  c.trust.toFixed(2),
                ]),
              ]),
        );
      },
    );

  program
    .command('card')
    .description("publish a local identity's signed agent card to the relay directory")
    .command('publish')
    .description("sign a local identity's agent card and publish it to the relay directory")
    .argument('<did>', 'a local identity')
    .option('--name <name>', 'display name')
    .option('--role <role>', 'a role (repeatable)', collect)
    .option('--capability <c>', 'a capability (repeatable)', collect)
    .option('--tag <t>', 'a tag (repeatable)', collect)
    .option('--protocol <p>', 'a protocol (repeatable)', collect)
    .option('--qps <n>', 'requests per second accepted', integerOption('--qps'))
    .option('--concurrency <n>', 'requests worked on at once', integerOption('--concurrency'))
    .option('--endpoint <url>', 'another endpoint (repeatable)', collect)
    .action(
      async (
        did: string,
        o: {
          name?: string;
          role?: string[];
          capability?: string[];
          tag?: string[];
          protocol?: string[];
          qps?: number;
          concurrency?: number;
          endpoint?: string[];
        },
        cmd: Command,
      ) => {
        const card = await h.client(cmd).post<{ did: string }>('/v1/cards', {
          did,
          ...(o.name === undefined ? {} : { name: o.name }),
          ...(o.role === undefined ? {} : { roles: o.role }),
          ...(o.capability === undefined ? {} : { capabilities: o.capability }),
          ...(o.tag === undefined ? {} : { tags: o.tag }),
          ...(o.protocol === undefined ? {} : { protocols: o.protocol }),
          ...(o.qps === undefined ? {} : { qps: o.qps }),
          ...(o.concurrency === undefined ? {} : { concurrency: o.concurrency }),
          ...(o.endpoint === undefined ? {} : { endpoints: o.endpoint }),
        });
        h.out(cmd, card, () => `card of ${card.did} published`);
      },
    );

  program
    .command('webhook')
    .description('push notices for a local identity')
    .command('set')
    .description(
      'register the URL notified (HMAC-signed, no content) when mail is stored for the DID while offline',
    )
    .argument('<did>', 'a local identity')
    .argument('<url>', 'http(s) URL to POST notices to when mail is stored while the DID is offline')
    .option(
      '--secret <s>',
      'HMAC-SHA256 key for the x-anx-signature header: text, @FILE or - for stdin (default: generated, printed once)',
    )
    .action(async (did: string, url: string, o: { secret?: string }, cmd: Command) => {
      const secret = o.secret === undefined ? undefined : secretArg(o.secret, '--secret');
      const reg = await h.client(cmd).post<{ did: string; url: string; secret: string }>('/v1/webhooks', {
        did,
        url,
        ...(secret === undefined ? {} : { secret }),
      });
      // A secret the user gave is not echoed back into the terminal (or a log); a generated one is shown once.
      const shown = o.secret === undefined ? reg : { did: reg.did, url: reg.url };
      h.out(cmd, shown, () =>
        o.secret === undefined
          ? `webhook of ${reg.did} set to ${reg.url}\nHMAC secret: ${reg.secret}`
          : `webhook of ${reg.did} set to ${reg.url} with the given HMAC secret`,
      );
    });
}
