// Joining the relay from a host: start and supervise a local leaf (`--relay`) or use an existing NATS server (`--nats`).
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { processStat, startTimeOf } from '../../runtime/data-lock.ts';
import { AnxError, describeValue } from '../../runtime/errors.ts';
import {
  connectHost,
  freeLoopbackPort,
  type HubLinkProblem,
  hostCredentialsOf,
  JETSTREAM_DOMAIN,
  type LeafCredentials,
  leafConfig,
  NatsServer,
  natsUrlOf,
  natsUrlWithLogin,
  parseLeafUrl,
  portOpen,
} from './nats-server.ts';
import { NatsTransport } from './nats-transport.ts';
import { Relay, type RelayOptions } from './relay.ts';

export interface JoinOptions {
  dataDir: string;
  /** `nats-leaf://user:pass@hub:7422`: start a local leaf joined to that hub. */
  relayUrl?: string;
  /** `nats://host:port`: use this NATS server (a leaf shared by several hosts, or the hub itself). */
  natsUrl?: string;
  /** PEM file of the CA that signed the hub's certificate, for a `tls://` relay URL with a private CA. */
  relayCa?: string;
  /** Client port of the local leaf (default 4223; 0 picks a free one). */
  leafPort?: number;
  /** Address the local leaf's client port binds (default 127.0.0.1; a LAN address lets other hosts share it). */
  leafHost?: string;
  heartbeatMs?: number;
  relay?: Omit<RelayOptions, 'transport' | 'nc'>;
  /**
   * How long `joinRelay` waits for the hub to answer through the leaf (default 5 s). A hub that refuses
   * the leaf (wrong credentials, TLS) fails the join; one that does not answer in time is reported
   * through `onWarning` and the host runs without it until it does.
   */
  hubWaitMs?: number;
  /** Told what goes wrong with the hub link while the host runs, and when the hub does not answer at the start. */
  onWarning?: (message: string) => void;
}

/** The hub refused this host's leaf: the credentials or the TLS settings are wrong. */
export class RelayRefusedError extends AnxError {}

/** True when the hub's JetStream answers through `nc` within `timeoutMs`: the leaf's hub link works. */
export async function hubAnswers(
  nc: { request(subject: string, data?: Uint8Array, opts?: { timeout: number }): Promise<unknown> },
  timeoutMs = 2_000,
): Promise<boolean> {
  try {
    await nc.request(`$JS.${JETSTREAM_DOMAIN}.API.INFO`, undefined, { timeout: timeoutMs });
    return true;
  } catch {
    return false;
  }
}

function refusal(hub: string, problem: HubLinkProblem): RelayRefusedError {
  const tls = problem.message.startsWith('TLS');
  return new RelayRefusedError(
    'ANX_RELAY_REFUSED',
    `the hub at ${hub} refused this host's leaf: ${problem.message}`,
    {
      hint: tls
        ? 'a hub whose certificate comes from a private CA needs --relay-ca FILE; a hub without TLS is joined with nats-leaf://'
        : 'check the user and password in the --relay URL: `anx-runtime relay start` on the hub prints the one to use',
    },
  );
}

export interface RelayConnection {
  relay: Relay;
  transport: NatsTransport;
  /** The supervised local leaf, when `relayUrl` started one. */
  leaf: NatsServer | undefined;
  /** The NATS URL the host uses (without credentials). */
  url: string;
  /**
   * When this host started a leaf that serves other machines (`leafHost` not loopback): the URL, with
   * the credentials the leaf asks for, that other hosts give as `--nats` (or `ANX_NATS`) to share it.
   */
  shareUrl?: string;
  close(): Promise<void>;
}

/**
 * Connects a host to the relay. With `relayUrl` a leaf `nats-server` is configured under
 * `<dataDir>/relay/leaf.conf` and supervised (restarted if it dies); when its port already serves
 * (another host of this machine started it), that leaf is shared.
 *
 * @example
 * ```ts
 * const conn = await joinRelay({ dataDir, relayUrl: 'nats-leaf://anx-leaf:secret@hub.example.org:7422' });
 * const host = await Host.open({ dataDir, router: conn.relay });
 * conn.relay.bind(host);
 * await conn.relay.start();
 * ```
 */
export async function joinRelay(options: JoinOptions): Promise<RelayConnection> {
  if ((options.relayUrl === undefined) === (options.natsUrl === undefined)) {
    throw new AnxError('ANX_ARGUMENT_INVALID', 'joining the relay expected exactly one of --relay or --nats');
  }
  let leaf: NatsServer | undefined;
  /** Starts this host's leaf, or answers undefined when one already serves the port (shared). */
  let startLeaf: (() => Promise<NatsServer | undefined>) | undefined;
  let sharedGone: (() => Promise<boolean>) | undefined;
  let url: string;
  let relayDir: string | undefined;
  let login: LeafCredentials | undefined;
  if (options.relayUrl !== undefined) {
    const { hub, credentials, tls } = parseLeafUrl(options.relayUrl);
    // What the leaf asks of its clients: every host with this join URL computes it, nobody else.
    login = hostCredentialsOf(credentials);
    if (options.relayCa !== undefined && !tls)
      throw new AnxError('ANX_ARGUMENT_INVALID', '--relay-ca expected a tls:// relay URL, got nats-leaf://', {
        hint: 'a hub started with --tls-cert prints a tls:// join URL',
      });
    const port = options.leafPort === 0 ? await freeLoopbackPort() : (options.leafPort ?? 4223);
    // A leaf bound to one LAN address is reached there, not on loopback.
    url = natsUrlOf(options.leafHost, port);
    relayDir = join(options.dataDir, 'relay');
    const dir = relayDir;
    const leafSpec = {
      dir,
      name: 'leaf.conf',
      port,
      ...(options.leafHost === undefined ? {} : { host: options.leafHost }),
      config: leafConfig({
        port,
        hub,
        credentials,
        ...(tls ? { tls: options.relayCa === undefined ? {} : { caFile: resolve(options.relayCa) } } : {}),
        ...(options.leafHost === undefined ? {} : { clientHost: options.leafHost }),
        clients: login,
      }),
    };
    startLeaf = async () => {
      // The leaf a killed host of this data directory left running: stopped, so this host supervises its own.
      await stopOrphanLeaf(dir);
      if (await portOpen(port, connectHost(options.leafHost))) return undefined;
      const own = new NatsServer(leafSpec);
      // Each process of the leaf (a restart is a new one) is recorded for the next start to find.
      own.onSpawn = (pid) => recordLeaf(dir, pid);
      await own.start({ supervise: true });
      return own;
    };
    sharedGone = async () => !(await portOpen(port, connectHost(options.leafHost)));
  } else {
    // Credentials in the URL go to the connection, never into messages or the status.
    const split = splitNatsUrl(options.natsUrl as string);
    url = split.url;
    login = split.login;
  }
  let transport: NatsTransport;
  for (let attempt = 1; ; attempt++) {
    leaf = await startLeaf?.();
    try {
      transport = await NatsTransport.connect({
        servers: url,
        name: `anx-runtime ${options.dataDir}`,
        ...(login === undefined ? {} : { user: login.user, pass: login.password }),
      });
      break;
    } catch (err) {
      await leaf?.stop();
      // A shared leaf (another host's, or one a killed host left that was exiting as this one looked)
      // can stop between finding its port open and connecting: then this host starts its own.
      if (startLeaf !== undefined && leaf === undefined && attempt < 3 && (await sharedGone?.())) continue;
      throw err;
    }
  }
  const hub = options.relayUrl === undefined ? url : parseLeafUrl(options.relayUrl).hub;
  try {
    await waitForHub(transport, leaf, hub, options);
  } catch (err) {
    await transport.close().catch(() => {});
    await leaf?.stop();
    throw err;
  }
  if (leaf !== undefined) {
    leaf.onHubLinkProblem = (problem) => {
      options.onWarning?.(
        problem.kind === 'refused'
          ? refusal(hub, problem).message
          : `the link to the hub at ${hub} is down (${problem.message}); mail for other hosts waits in the outbox`,
      );
    };
  }
  const relay = new Relay({
    ...options.relay,
    transport,
    nc: transport.nc,
    ...(options.heartbeatMs === undefined ? {} : { heartbeatMs: options.heartbeatMs }),
    hubStatus: async () => {
      const reachable = await hubAnswers(transport.nc, 1_000);
      if (reachable) leaf?.hubLinkUp();
      const problem = leaf?.hubLinkProblem();
      return { address: hub, reachable, ...(problem === undefined || reachable ? {} : { problem }) };
    },
  });
  const lan = options.leafHost !== undefined && connectHost(options.leafHost) !== '127.0.0.1';
  const shareUrl =
    leaf !== undefined && lan && login !== undefined ? natsUrlWithLogin(url, login) : undefined;
  return {
    relay,
    transport,
    leaf,
    url,
    ...(shareUrl === undefined ? {} : { shareUrl }),
    close: async () => {
      await relay.close();
      await leaf?.stop();
      if (leaf !== undefined && relayDir !== undefined)
        rmSync(join(relayDir, LEAF_PID_FILE), { force: true });
    },
  };
}

/**
 * Waits until the hub answers through the leaf. A refusal logged by the leaf this host started fails
 * at once (it will not fix itself); silence until `hubWaitMs` is only a warning.
 */
async function waitForHub(
  transport: NatsTransport,
  leaf: NatsServer | undefined,
  hub: string,
  options: JoinOptions,
): Promise<void> {
  const deadline = Date.now() + (options.hubWaitMs ?? 5_000);
  for (;;) {
    const problem = leaf?.hubLinkProblem();
    if (problem?.kind === 'refused') throw refusal(hub, problem);
    if (await hubAnswers(transport.nc, Math.max(1, Math.min(500, deadline - Date.now())))) {
      leaf?.hubLinkUp();
      return;
    }
    if (Date.now() >= deadline) break;
  }
  const problem = leaf?.hubLinkProblem();
  if (problem?.kind === 'refused') throw refusal(hub, problem);
  options.onWarning?.(
    `the hub at ${hub} does not answer yet${problem === undefined ? '' : ` (${problem.message})`}; the host runs, and mail for other hosts waits in the outbox until it does`,
  );
}

/** Names the leaf a host started (`pid starttime`), so the next host of the data directory knows it. */
const LEAF_PID_FILE = 'leaf.pid';

function recordLeaf(relayDir: string, pid: number): void {
  recordServer(join(relayDir, LEAF_PID_FILE), pid);
}

/** Writes `pid starttime` of a `nats-server` this process started and supervises to `file`. */
export function recordServer(file: string, pid: number): void {
  writeFileSync(file, `${pid} ${startTimeOf(pid) ?? ''}\n`, { mode: 0o600 });
}

/**
 * A host killed with `kill -9` leaves its leaf `nats-server` running, unsupervised and with the
 * configuration of then. The next start of that data directory stops it (SIGTERM, SIGKILL after 3 s)
 * and starts its own. Only a process proven to be that leaf is stopped: the pid of `leaf.pid`, started
 * when the file says (so a reused pid is not taken for it), running `nats-server` with this directory's
 * `leaf.conf`. Where `/proc` cannot tell (not Linux), nothing is stopped and the leaf is shared as before.
 */
export function stopOrphanLeaf(relayDir: string): Promise<boolean> {
  return stopOrphanServer(join(relayDir, LEAF_PID_FILE), join(relayDir, 'leaf.conf'));
}

/**
 * Stops the `nats-server` that `pidFile` names if it is still the one started then (same start time)
 * with `configFile`: a supervisor killed with `kill -9` left it running unsupervised (the hub of `relay
 * start`, the leaf of a host). SIGTERM, SIGKILL after 3 s; resolves once it is gone. Anything else
 * (another process with that pid now, or no `/proc` to tell) is left alone; the file is removed.
 */
export async function stopOrphanServer(file: string, configFile: string): Promise<boolean> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return false;
  }
  const [pidText, start] = text.trim().split(' ');
  const pid = Number(pidText);
  const ours = (): boolean => {
    if (!Number.isSafeInteger(pid) || pid <= 0 || start === undefined || start === '') return false;
    if (startTimeOf(pid) !== start) return false;
    try {
      const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
      return argv.includes(configFile) && /nats-server$/.test(argv[0] ?? '');
    } catch {
      return false;
    }
  };
  if (!ours()) {
    rmSync(file, { force: true });
    return false;
  }
  // Gone once its /proc entry is, or it is a zombie: only then are its sockets closed (its command
  // line empties earlier, while it still listens).
  const running = (): boolean => {
    const stat = processStat(pid);
    return stat !== undefined && stat.state !== 'Z' && stat.start === start;
  };
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    // Gone already.
  }
  const deadline = Date.now() + 3_000;
  while (running() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  if (running()) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // Gone meanwhile.
    }
    while (running()) await new Promise((r) => setTimeout(r, 20));
  }
  rmSync(file, { force: true });
  return true;
}

/** `nats://[USER:PASSWORD@]HOST:PORT` (or `tls://…`): the URL without its credentials, and them. */
export function splitNatsUrl(text: string): { url: string; login?: LeafCredentials } {
  let parsed: URL | undefined;
  try {
    parsed = /^(nats|tls):\/\//.test(text) ? new URL(text) : undefined;
  } catch {
    parsed = undefined;
  }
  if (parsed === undefined || parsed.hostname === '')
    throw new AnxError(
      'ANX_ARGUMENT_INVALID',
      `--nats expected nats://[USER:PASSWORD@]HOST:PORT, got ${describeValue(text.replace(/\/\/[^@/]*@/, '//***@'))}`,
      { hint: 'the first host of the site prints the --nats URL its leaf takes' },
    );
  const url = `${parsed.protocol}//${parsed.host}`;
  if (parsed.username === '') return { url };
  return {
    url,
    login: { user: decodeURIComponent(parsed.username), password: decodeURIComponent(parsed.password) },
  };
}
