// The daemon behind `anx-runtime start`: one host per data directory, its local API, its files and its shutdown.
import { randomBytes } from 'node:crypto';
import {
  closeSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { type ApiServer, startApiServer } from '../bridge/api/server.ts';
import { type JoinOptions, joinRelay, type RelayConnection } from '../bridge/relay/join.ts';
import { AnxError } from './errors.ts';
import { Host } from './host.ts';
import { dataFiles } from './paths.ts';
import { VERSION } from './version.ts';

export interface DaemonOptions {
  dataDir: string;
  port: number;
  /** Told once the API listens (the CLI prints it). */
  onReady?: (info: { url: string; port: number; pid: number; dataDir: string; replayed: number }) => void;
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

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Takes the data directory's lock. A lock left by a process that no longer exists (a crash, `kill -9`)
 * is stale and taken over.
 */
function takeLock(dataDir: string): void {
  const file = dataFiles.lock(dataDir);
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(file, 'wx', 0o600);
      writeSync(fd, String(process.pid));
      closeSync(fd);
      return;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const pid = Number.parseInt(readFileSync(file, 'utf8'), 10);
      if (Number.isInteger(pid) && pid !== process.pid && alive(pid))
        throw new DaemonRunningError(dataDir, pid);
      rmSync(file, { force: true });
    }
  }
  throw new AnxError('ANX_DAEMON_LOCK', `cannot take the lock ${file}`);
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
  takeLock(options.dataDir);
  let host: Host | undefined;
  let api: ApiServer | undefined;
  let relay: RelayConnection | undefined;
  try {
    // The relay exists before the host opens, so the outbox replay hands it mail for other hosts.
    if (options.relay !== undefined) relay = await joinRelay({ ...options.relay, dataDir: options.dataDir });
    const turnSize = Number(process.env['ANX_TURN_SIZE']);
    host = await Host.open({
      dataDir: options.dataDir,
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
        rmSync(dataFiles.lock(options.dataDir), { force: true });
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
    rmSync(dataFiles.lock(options.dataDir), { force: true });
    throw err;
  }
}
