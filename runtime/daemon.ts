// The daemon behind `anx-runtime start`: one host per data directory, its local API, its files and its shutdown.
import { randomBytes } from 'node:crypto';
import { mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { type ApiServer, startApiServer } from '../bridge/api/server.ts';
import { type JoinOptions, joinRelay, type RelayConnection } from '../bridge/relay/join.ts';
import { type DataDirLock, DataDirLockedError, lockDataDir } from './data-lock.ts';
import { AnxError } from './errors.ts';
import { Host } from './host.ts';
import { dataFiles } from './paths.ts';
import { VERSION } from './version.ts';

export interface DaemonOptions {
  dataDir: string;
  port: number;
  /** Told once the API listens (the CLI prints it). */
  onReady?: (info: {
    url: string;
    port: number;
    pid: number;
    dataDir: string;
    replayed: number;
    /** The `--nats` URL (with credentials) other hosts share this host's LAN leaf with; never written to disk. */
    relayShareUrl?: string;
  }) => void;
  /** Join a relay: `relayUrl` starts a local leaf joined to that hub, `natsUrl` uses an existing NATS server. */
  relay?: Omit<JoinOptions, 'dataDir'>;
}

/** Another live daemon holds this data directory. */
export class DaemonRunningError extends AnxError {
  constructor(dataDir: string, pid: number) {
    super('ANX_DAEMON_RUNNING', `a daemon (pid ${pid}) is already running for ${dataDir}`, {
      hint: 'use it, stop it with `anx-runtime stop`, or start another with a different --data-dir',
    });
  }
}

export interface RunningDaemon {
  host: Host;
  api: ApiServer;
  /** Resolves when the daemon has shut down. */
  done: Promise<void>;
  /** Why it shut down on its own, when it did: the failure that stopped its host. */
  readonly failure: AnxError | undefined;
  shutdown(): Promise<void>;
}

/** Takes the data directory's lock for a daemon: a live holder is a running daemon (or an embedded host). */
function takeLock(dataDir: string): DataDirLock {
  try {
    return lockDataDir(dataDir);
  } catch (err) {
    if (err instanceof DataDirLockedError && err.pid !== process.pid)
      throw new DaemonRunningError(dataDir, err.pid);
    throw err;
  }
}

function writePrivate(file: string, content: string): void {
  // Written under a temporary name and renamed, so a reader never sees a half-written file.
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, content, { mode: 0o600 });
  renameSync(tmp, file);
}

/** Starts the host and its API; resolves once both are up and the daemon files are written. */
export async function startDaemon(options: DaemonOptions): Promise<RunningDaemon> {
  mkdirSync(options.dataDir, { recursive: true, mode: 0o700 });
  const lock = takeLock(options.dataDir);
  let host: Host | undefined;
  let api: ApiServer | undefined;
  let relay: RelayConnection | undefined;
  try {
    // The relay exists before the host opens, so the outbox replay hands it mail for other hosts.
    if (options.relay !== undefined) relay = await joinRelay({ ...options.relay, dataDir: options.dataDir });
    const turnSize = Number(process.env['ANX_TURN_SIZE']);
    host = await Host.open({
      dataDir: options.dataDir,
      lock,
      ...(relay === undefined ? {} : { router: relay.relay }),
      ...(Number.isInteger(turnSize) && turnSize > 0 ? { turnSize } : {}),
    });
    if (relay !== undefined) {
      relay.relay.bind(host);
      await relay.relay.start();
    }
    const token = randomBytes(32).toString('base64url');
    writePrivate(dataFiles.token(options.dataDir), `${token}\n`);
    let resolveDone!: () => void;
    const done = new Promise<void>((resolve) => {
      resolveDone = resolve;
    });
    let stopping: Promise<void> | undefined;
    const shutdown = (): Promise<void> => {
      stopping ??= (async () => {
        rmSync(dataFiles.daemon(options.dataDir), { force: true });
        // Each part is closed even when another fails to (a host whose last commit failed, say).
        for (const close of [() => api?.close(), () => relay?.close(), () => host?.close()]) {
          try {
            await close();
          } catch {
            // What failed is already reported (the failure that started this shutdown).
          }
        }
        lock.release();
        resolveDone();
      })();
      return stopping;
    };
    // A failed group commit leaves the host unable to go on: shut down rather than answer every
    // request with the same error, so whoever supervises the daemon restarts it from what is on disk.
    let failure: AnxError | undefined;
    host.system.onFatal((err) => {
      failure = err;
      void shutdown();
    });
    api = await startApiServer(host, {
      port: options.port,
      token,
      onStop: () => void shutdown(),
      ...(relay === undefined ? {} : { relay: relay.relay }),
    });
    writePrivate(
      dataFiles.daemon(options.dataDir),
      JSON.stringify({
        pid: process.pid,
        port: api.port,
        url: api.url,
        version: VERSION,
        startedAt: Date.now(),
        dataDir: options.dataDir,
      }),
    );
    options.onReady?.({
      url: api.url,
      port: api.port,
      pid: process.pid,
      dataDir: options.dataDir,
      replayed: host.restored.replayed,
      ...(relay?.shareUrl === undefined ? {} : { relayShareUrl: relay.shareUrl }),
    });
    return {
      host,
      api,
      done,
      shutdown,
      get failure() {
        return failure;
      },
    };
  } catch (err) {
    await api?.close().catch(() => {});
    await relay?.close().catch(() => {});
    await host?.close().catch(() => {});
    lock.release();
    throw err;
  }
}
