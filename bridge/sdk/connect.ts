// `connect`: picks the mode (daemon client or embedded host) and the identity the client acts as.

import { Host } from '../../runtime/host.ts';
import { resolveDataDir } from '../../runtime/paths.ts';
import { MAX_REQUEST_TIMEOUT_MS } from '../api/client.ts';
import type { AnxClient } from './client.ts';
import { DataDirApiClient } from './daemon-api.ts';
import { DaemonClient } from './daemon-client.ts';
import { type CardFields, checkCardFields, checkItems } from './discover.ts';
import { EmbeddedClient } from './embedded.ts';
import { SdkArgumentError, SdkIdentityError } from './errors.ts';
import { requireDid } from './validate.ts';

/** Where the client runs and who it acts as. Give exactly one of `name` and `did`. */
export interface ConnectOptions {
  /**
   * `daemon` (default): talk to the daemon running for `dataDir` through its local API.
   * `embedded`: open a host on `dataDir` in this process (refused with `ANX_DATA_DIR_LOCKED` while a
   * daemon or another host has it open), or use `host`.
   */
  mode?: 'daemon' | 'embedded';
  /**
   * The data directory of the daemon, or of the embedded host; default the CLI's: `$ANX_DATA_DIR`,
   * else `$XDG_DATA_HOME/anx-runtime`, else `~/.local/share/anx-runtime`.
   */
  dataDir?: string;
  /** Embedded mode only: a host already open in this process, shared by several clients and left open on `close()`. */
  host?: Host;
  /** Act as the local identity with this name, created when there is none. */
  name?: string;
  /** Act as this existing local identity. */
  did?: string;
  /** How often `messages()` looks for new mail (ms); default 100 for a daemon, 25 embedded. */
  pollMs?: number;
  /**
   * Daemon mode only: how long one call waits for the daemon's answer (ms, 1 to an hour); default
   * 60,000. A call that runs out fails with `ANX_DAEMON_TIMEOUT` and is not repeated.
   */
  requestTimeoutMs?: number;
  /** Capabilities to publish in the identity's agent card (e.g. `['code', 'review']`); see `discover`. */
  caps?: string[];
  /** Other agent card fields; with `caps` or `card` the card is signed and published anew at connect. */
  card?: CardFields;
}

/**
 * Connects an agent to anx and returns its client, bound to one identity.
 *
 * @example
 * ```ts
 * // Client of the daemon started with `anx-runtime start --data-dir ./anx`:
 * const dev = await connect({ dataDir: './anx', name: 'Developer' });
 * // The same identity later, by DID:
 * const again = await connect({ dataDir: './anx', did: dev.did });
 * // Publish capabilities in the identity's signed agent card, for others' `discover`:
 * const reviewer = await connect('Reviewer', { dataDir: './anx', caps: ['code.review'] });
 * const [found] = await dev.discover({ capability: 'code.review' }); // found.did === reviewer.did
 * // Embedded: the kernel runs in this process on its own data directory.
 * const solo = await connect({ mode: 'embedded', dataDir: './agent-data', name: 'Solo' });
 * ```
 */
export async function connect(options: ConnectOptions): Promise<AnxClient>;
/** Shorthand for `connect({ ...options, name })`. */
export async function connect(
  name: string,
  options?: Omit<ConnectOptions, 'name' | 'did'>,
): Promise<AnxClient>;
export async function connect(
  first: ConnectOptions | string,
  rest?: Omit<ConnectOptions, 'name' | 'did'>,
): Promise<AnxClient> {
  const options =
    typeof first === 'string' ? { ...checkObject(rest ?? {}), name: first } : checkObject(first);
  const mode = options.mode ?? 'daemon';
  if (mode !== 'daemon' && mode !== 'embedded')
    throw new SdkArgumentError('mode', '"daemon" or "embedded"', mode);
  const who = checkWho(options);
  if (
    options.pollMs !== undefined &&
    (typeof options.pollMs !== 'number' || !(options.pollMs >= 1 && options.pollMs <= 3_600_000))
  )
    throw new SdkArgumentError(
      'pollMs',
      'a number of milliseconds from 1 to 3600000 (an hour)',
      options.pollMs,
    );
  if (
    options.requestTimeoutMs !== undefined &&
    (typeof options.requestTimeoutMs !== 'number' ||
      !Number.isInteger(options.requestTimeoutMs) ||
      !(options.requestTimeoutMs >= 1 && options.requestTimeoutMs <= MAX_REQUEST_TIMEOUT_MS))
  )
    throw new SdkArgumentError(
      'requestTimeoutMs',
      'a whole number of milliseconds from 1 to 3600000 (an hour)',
      options.requestTimeoutMs,
    );
  const card = cardOf(options);

  if (mode === 'daemon') {
    if (options.host !== undefined)
      throw new SdkArgumentError('host', 'nothing in daemon mode (use mode: "embedded")', options.host);
    const api = new DataDirApiClient(
      checkDataDir(options.dataDir),
      options.requestTimeoutMs === undefined ? {} : { timeoutMs: options.requestTimeoutMs },
    );
    const did = await resolveIdentity(
      who,
      async () => (await api.get<{ identities: LocalIdentity[] }>('/v1/identities')).identities,
      async (name) => (await api.post<{ did: string }>('/v1/identities', { name, reuse: true })).did,
    );
    return withCard(new DaemonClient(api, did, options.pollMs ?? 100), card, who);
  }

  const shared = options.host;
  if (shared !== undefined && options.dataDir !== undefined)
    throw new SdkArgumentError('dataDir', 'nothing when "host" is given', options.dataDir);
  if (options.requestTimeoutMs !== undefined)
    throw new SdkArgumentError(
      'requestTimeoutMs',
      'nothing in embedded mode (calls run in this process)',
      options.requestTimeoutMs,
    );
  if (shared !== undefined && !(shared instanceof Host))
    throw new SdkArgumentError('host', 'a Host from Host.open()', shared);
  const host = shared ?? (await Host.open({ dataDir: checkDataDir(options.dataDir) }));
  try {
    const did = await resolveIdentity(
      who,
      async () => host.identities(),
      async (name) => (await host.identityNamed(name)).did,
    );
    return await withCard(
      new EmbeddedClient(host, did, options.pollMs ?? 25, shared === undefined),
      card,
      who,
    );
  } catch (err) {
    if (shared === undefined) await host.close().catch(() => {});
    throw err;
  }
}

interface LocalIdentity {
  did: string;
  name?: string | null;
  createdAt?: number;
}

function checkObject<T>(value: T | undefined): T {
  if (value === null || typeof value !== 'object' || Array.isArray(value))
    throw new SdkArgumentError('options', 'an object', value);
  return value;
}

/** The card to publish at connect: `card` with `caps` as its capabilities, or nothing when neither is given. */
function cardOf(options: ConnectOptions): CardFields | undefined {
  if (options.caps === undefined && options.card === undefined) return undefined;
  const fields = options.card === undefined ? {} : checkCardFields('card', options.card);
  if (options.caps === undefined) return fields;
  if (fields.capabilities !== undefined)
    throw new SdkArgumentError(
      'card.capabilities',
      'nothing when "caps" is given (give one of them)',
      fields.capabilities,
    );
  return { ...fields, capabilities: checkItems('caps', options.caps) };
}

/** Publishes the connect-time card; a client whose card is refused is closed, not returned half set up. */
async function withCard(
  client: AnxClient,
  card: CardFields | undefined,
  who: { name: string } | { did: string },
): Promise<AnxClient> {
  if (card === undefined) return client;
  try {
    // By DID, the card keeps the name the identity already shows.
    const name = 'name' in who ? who.name : (await client.discover()).find((c) => c.did === who.did)?.name;
    await client.publishCard({ ...(name === undefined ? {} : { name }), ...card });
    return client;
  } catch (err) {
    await client.close().catch(() => {});
    throw err;
  }
}

/** The data directory given, else the CLI's default (`$ANX_DATA_DIR`, else the XDG data directory). */
function checkDataDir(value: unknown): string {
  if (value === undefined) return resolveDataDir();
  if (typeof value !== 'string' || value.length === 0)
    throw new SdkArgumentError('dataDir', 'the path of a data directory', value);
  return value;
}

function checkWho(options: ConnectOptions): { name: string } | { did: string } {
  if (options.name !== undefined && options.did !== undefined)
    throw new SdkArgumentError('did', 'nothing when "name" is given (give one of them)', options.did);
  if (options.did !== undefined) return { did: requireDid('did', options.did) };
  const name = options.name;
  if (typeof name !== 'string' || name.length === 0 || name.length > 128)
    throw new SdkArgumentError('name', 'a name of 1 to 128 characters (or a "did")', name);
  return { name };
}

/** The DID to act as: the given one when this host holds its key, else the oldest identity named `name`, else a new one. */
/** The DID to act as: `did` if the host holds it, else the identity of `name` (one per name, however many connect at once). */
async function resolveIdentity(
  who: { name: string } | { did: string },
  list: () => Promise<LocalIdentity[]>,
  named: (name: string) => Promise<string>,
): Promise<string> {
  if ('did' in who) {
    if (!(await list()).some((i) => i.did === who.did)) throw new SdkIdentityError(who.did);
    return who.did;
  }
  return named(who.name);
}
