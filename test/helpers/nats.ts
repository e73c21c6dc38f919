// Starts real nats-server processes for tests: a JetStream hub with an authenticated leaf listener, and leaves joined to it.
import { type ChildProcess, type SpawnSyncReturns, spawn, spawnSync } from 'node:child_process';
import { createServer } from 'node:net';
import { join } from 'node:path';
import {
  generateCredentials,
  hostCredentialsOf,
  hubConfig,
  type LeafCredentials,
  leafConfig,
  NatsServer,
  parseLeafUrl,
} from '../../bridge/relay/nats-server.ts';
import { CLI, type DaemonProcess, killHard, startDaemonProcess } from './daemon.ts';
import { tempDir } from './tmp.ts';

/** A free TCP port on 127.0.0.1 (the OS picks it; it is released before being returned). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

export interface TestHub {
  server: NatsServer;
  /** Client URL on loopback. */
  url: string;
  port: number;
  leafPort: number;
  credentials: LeafCredentials;
  /** `nats-leaf://user:pass@127.0.0.1:leafPort`, as `anx-runtime start --relay` takes it. */
  leafUrl: string;
  stop(): Promise<void>;
  /** Starts the hub again on the same ports with the same JetStream store. */
  restart(): Promise<void>;
}

export interface TestLeaf {
  server: NatsServer;
  url: string;
  port: number;
  stop(): Promise<void>;
  restart(): Promise<void>;
}

const running = new Set<NatsServer>();

/**
 * Runs `start` again (up to three times) when nats-server could not bind a port `freePort` picked:
 * between releasing a port and the server binding it, another process of the parallel suite may
 * take it.
 */
async function onFreePorts<T>(start: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await start();
    } catch (err) {
      if (attempt >= 3 || !/address already in use/.test((err as Error).message)) throw err;
    }
  }
}

/** Starts a hub: JetStream in a temp dir, leafnode listener with generated credentials, all on loopback. */
export function startHub(): Promise<TestHub> {
  return onFreePorts(hubOnce);
}

async function hubOnce(): Promise<TestHub> {
  const dir = tempDir('anx-hub-');
  const [port, leafPort, httpPort] = [await freePort(), await freePort(), await freePort()];
  const credentials = generateCredentials();
  const server = new NatsServer({
    dir,
    name: 'hub.conf',
    port,
    httpPort,
    config: hubConfig({
      port,
      leafPort,
      httpPort,
      leafHost: '127.0.0.1',
      storeDir: join(dir, 'jetstream'),
      credentials,
      serverName: `hub-${port}`,
    }),
  });
  await server.start();
  running.add(server);
  return {
    server,
    url: server.url,
    port,
    leafPort,
    credentials,
    leafUrl: `nats-leaf://${credentials.user}:${credentials.password}@127.0.0.1:${leafPort}`,
    stop: () => server.stop(),
    restart: () => server.start(),
  };
}

/** Starts a leaf joined to `hub` and resolves once its hub link is up. */
export function startLeaf(
  hub: TestHub,
  options: { credentials?: LeafCredentials; timeoutMs?: number } = {},
): Promise<TestLeaf> {
  return onFreePorts(() => leafOnce(hub, options));
}

async function leafOnce(
  hub: TestHub,
  options: { credentials?: LeafCredentials; timeoutMs?: number },
): Promise<TestLeaf> {
  const dir = tempDir('anx-leaf-');
  const [port, httpPort] = [await freePort(), await freePort()];
  const server = new NatsServer({
    dir,
    name: 'leaf.conf',
    port,
    httpPort,
    waitForLeaf: true,
    config: leafConfig({
      port,
      httpPort,
      hub: `127.0.0.1:${hub.leafPort}`,
      credentials: options.credentials ?? hub.credentials,
      serverName: `leaf-${port}`,
    }),
  });
  // Registered before it starts, so a leaf that never becomes ready is still stopped afterwards.
  running.add(server);
  try {
    await server.start(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs });
  } catch (err) {
    await server.stop();
    running.delete(server);
    throw err;
  }
  return {
    server,
    url: server.url,
    port,
    stop: () => server.stop(),
    restart: () => server.start(),
  };
}

/** Stops every nats-server this helper started (each by its own PID). */
export async function stopAllNats(): Promise<void> {
  for (const server of [...running]) {
    await server.stop();
    running.delete(server);
  }
}

/** Runs `anx-runtime relay start` in a fresh data directory to its end (for the ways it refuses to start). */
export function relayStartSync(...args: string[]): SpawnSyncReturns<string> {
  return spawnSync(process.execPath, [CLI, '--data-dir', tempDir(), 'relay', 'start', ...args], {
    encoding: 'utf8',
    timeout: 60_000,
  });
}

/** The `user`/`pass` connect options of a host of the relay whose join URL is `join` (nats.js takes no credentials from URLs). */
export function hostLogin(join: string): { user: string; pass: string } {
  const creds = hostCredentialsOf(parseLeafUrl(join).credentials);
  return { user: creds.user, pass: creds.password };
}

/** What `anx-runtime --json relay start` prints. */
export interface RelayStartInfo {
  pid: number;
  join: string;
  /** The hub's client port, without credentials. */
  clientUrl: string;
  /** The same with the credentials hosts present (derived from the join URL). */
  hostUrl: string;
  tls: boolean;
  /** The file the hub's nats-server writes its output to. */
  log: string;
}

/**
 * Runs `anx-runtime relay start` on free loopback ports (or those `extra` names) in `dataDir` as a child process (with `extra` flags) and
 * resolves once it printed its JSON. `stop()` ends it with SIGTERM and waits for it to exit.
 */
export async function startRelayCli(
  extra: string[] = [],
  dataDir = tempDir(),
): Promise<{ info: RelayStartInfo; child: ChildProcess; stop(): Promise<void> }> {
  const args = ['--data-dir', dataDir, '--json', 'relay', 'start', '--port', '0', '--leaf-port', '0'];
  args.push('--leaf-host', '127.0.0.1', '--public-host', '127.0.0.1', ...extra);
  const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    await exited;
  };
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  const deadline = Date.now() + 30_000;
  while (!out.trim().endsWith('}') && Date.now() < deadline && child.exitCode === null)
    await new Promise((r) => setTimeout(r, 50));
  try {
    return { info: JSON.parse(out) as RelayStartInfo, child, stop };
  } catch {
    await stop();
    throw new Error(`relay start printed no JSON within 30 s: ${out}`);
  }
}

/**
 * Two daemons as separate processes, each on its own leaf of one hub (`--nats` to its leaf), in fresh
 * data directories named after `prefix`. `stop()` kills the daemons (by PID) and every NATS server.
 */
export async function startRelayedDaemons(
  prefix: string,
  env: Record<string, string> = { ANX_HEARTBEAT_MS: '400' },
): Promise<{ daemons: [DaemonProcess, DaemonProcess]; dirs: [string, string]; stop(): Promise<void> }> {
  const hub = await startHub();
  const [l1, l2] = [await startLeaf(hub), await startLeaf(hub)];
  const dirs: [string, string] = [`${tempDir(`${prefix}-h1-`)}/data`, `${tempDir(`${prefix}-h2-`)}/data`];
  const daemons = (await Promise.all([
    startDaemonProcess(dirs[0], 60_000, { args: ['--nats', l1.url], env }),
    startDaemonProcess(dirs[1], 60_000, { args: ['--nats', l2.url], env }),
  ])) as [DaemonProcess, DaemonProcess];
  return {
    daemons,
    dirs,
    stop: async () => {
      for (const d of daemons) await killHard(d);
      await stopAllNats();
    },
  };
}
