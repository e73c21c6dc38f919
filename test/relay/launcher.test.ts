// The nats-server launcher: a hub and leaves on free loopback ports, an authenticated leaf link, restart on the same ports.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { connect } from '@nats-io/transport-node';
import { afterAll, expect, it } from 'vitest';
import { joinRelay, splitNatsUrl } from '../../bridge/relay/join.ts';
import {
  hostCredentialsOf,
  leafConfig,
  NatsServer,
  parseLeafUrl,
  portOpen,
} from '../../bridge/relay/nats-server.ts';
import {
  NATS_ENV,
  RELAY_ENV,
  relayArgs,
  relayEnvOf,
  relayJoinOptions,
} from '../../runtime/cli/relay-commands.ts';
import { isAnxError } from '../../runtime/errors.ts';
import { CLI, killHard, startDaemonProcess, waitFor } from '../helpers/daemon.ts';
import {
  freePort,
  hostLogin,
  relayStartSync,
  startHub,
  startLeaf,
  startRelayCli,
  stopAllNats,
} from '../helpers/nats.ts';
import { cleanupTempDirs, tempDir } from '../helpers/tmp.ts';

afterAll(async () => {
  await stopAllNats();
  cleanupTempDirs();
});

it('carries messages leaf to hub to leaf, refuses a leaf with wrong credentials, and restarts the hub on its ports', async () => {
  const hub = await startHub();
  const a = await startLeaf(hub);
  const b = await startLeaf(hub);
  const ca = await connect({ servers: a.url });
  const cb = await connect({ servers: b.url });
  const got: string[] = [];
  cb.subscribe('anx.test', {
    callback: (_err, msg) => {
      got.push(msg.string());
    },
  });
  await cb.flush();
  // Interest crosses the hub asynchronously: publish until the first message arrives.
  for (let i = 0; i < 100 && got.length === 0; i++) {
    ca.publish('anx.test', 'hello');
    await ca.flush();
    await new Promise((r) => setTimeout(r, 50));
  }
  expect(got[0]).toBe('hello');

  const intruder = startLeaf(hub, { credentials: { user: 'anx-leaf', password: 'wrong' }, timeoutMs: 3_000 });
  await expect(intruder).rejects.toThrow(/did not become ready/);

  const pid = hub.server.pid;
  await hub.stop();
  await hub.restart();
  expect(hub.server.pid).not.toBe(pid);
  await a.server.waitReady();
  await ca.close();
  await cb.close();
}, 90_000);

it('says in one line how to install nats-server when it is missing', () => {
  const run = spawnSync(
    process.execPath,
    [CLI, '--data-dir', tempDir(), 'start', '--port', '0', '--relay', 'nats-leaf://u:p@127.0.0.1:7422'],
    { encoding: 'utf8', env: { ...process.env, ANX_NATS_SERVER: '/nonexistent/nats-server' } },
  );
  expect(run.status).not.toBe(0);
  expect(run.stderr).toMatch(
    /^error: nats-server was not found.*\nhint: install it with `sudo apt-get install nats-server`/,
  );
});

it('runs a hub with `relay start`, prints a join URL a leaf can use, and stops nats-server with it', async () => {
  const relay = await startRelayCli();
  try {
    const { hub, credentials } = parseLeafUrl(relay.info.join);
    const [port, httpPort] = [await freePort(), await freePort()];
    const leaf = new NatsServer({
      dir: tempDir(),
      name: 'leaf.conf',
      port,
      httpPort,
      waitForLeaf: true,
      config: leafConfig({ port, httpPort, hub, credentials }),
    });
    await leaf.start();
    await leaf.stop();
    await relay.stop();
    expect(() => process.kill(relay.info.pid, 0)).toThrow();
  } finally {
    if (relay.child.exitCode === null && relay.child.signalCode === null) relay.child.kill('SIGKILL');
  }
});

it('keeps `relay start` running and restarts its nats-server when it dies, and stops at once on a port in use', async () => {
  const relay = await startRelayCli();
  try {
    const port = Number(new URL(relay.info.clientUrl).port);
    let out = '';
    relay.child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
    process.kill(relay.info.pid, 'SIGKILL');
    await waitFor(() => out.includes('"event":"restarting"'), 15_000, 'the restart notice');
    await waitFor(() => portOpen(port), 15_000, 'the restarted hub');
    expect(relay.child.exitCode).toBeNull();
    // A second hub on the client port of the first: refused before anything starts.
    const started = Date.now();
    const second = relayStartSync('--port', String(port), '--leaf-port', '0', '--leaf-host', '127.0.0.1');
    expect(second.status).toBe(5);
    expect(second.stderr).toContain(`port ${port}: address already in use`);
    expect(Date.now() - started).toBeLessThan(15_000);
  } finally {
    await relay.stop();
  }
});

it('joins a hub with a leaf bound to one address other than 127.0.0.1, and reaches it there', async () => {
  const hub = await startHub();
  const dataDir = tempDir();
  const conn = await joinRelay({ dataDir, relayUrl: hub.leafUrl, leafPort: 0, leafHost: '127.0.0.2' });
  try {
    expect(conn.url).toMatch(/^nats:\/\/127\.0\.0\.2:\d+$/);
    expect(conn.leaf).toBeDefined();
    const port = Number(new URL(conn.url).port);
    expect(await portOpen(port, '127.0.0.2')).toBe(true);
    expect(await portOpen(port, '127.0.0.1')).toBe(false);
  } finally {
    await conn.close();
    await hub.stop();
  }
});

it('starts its own leaf when the leaf it found on the port stops before it connects', async () => {
  const hub = await startHub();
  const leafPort = await freePort();
  // Something that serves the port for the one look the join takes at it, then stops listening: a
  // shared leaf going away, or the leaf of a killed host exiting, at that moment.
  const vanishing = createServer((socket) => {
    socket.destroy();
    vanishing.close();
  });
  await new Promise<void>((resolve) => vanishing.listen(leafPort, '127.0.0.1', resolve));
  const conn = await joinRelay({ dataDir: tempDir(), relayUrl: hub.leafUrl, leafPort });
  try {
    expect(vanishing.listening).toBe(false);
    expect(conn.leaf).toBeDefined();
    expect(await portOpen(leafPort, '127.0.0.1')).toBe(true);
  } finally {
    await conn.close();
    await hub.stop();
  }
});

it('takes the join URL from ANX_RELAY, and hands it to a detached start in the environment, not its arguments', () => {
  const url = 'nats-leaf://anx-leaf:not-in-ps-0123456789@hub.example.org:7422';
  const before = process.env[RELAY_ENV];
  process.env[RELAY_ENV] = url;
  try {
    expect(relayJoinOptions({ port: 0 })).toMatchObject({ relayUrl: url });
    // --nats wins over the variable: the host uses that leaf.
    expect(relayJoinOptions({ port: 0, nats: 'nats://127.0.0.1:4223' })).not.toHaveProperty('relayUrl');
    expect(relayArgs({ port: 0, relay: url, leafPort: 4300 })).toEqual(['--leaf-port', '4300']);
    expect(relayEnvOf({ port: 0, relay: url })).toEqual({ [RELAY_ENV]: url });
  } finally {
    if (before === undefined) delete process.env[RELAY_ENV];
    else process.env[RELAY_ENV] = before;
  }
});

it('stops a join the hub refuses (wrong password) with ANX_RELAY_REFUSED and its reason, in the API and the CLI', async () => {
  const hub = await startHub();
  try {
    const wrong = `nats-leaf://${hub.credentials.user}:not-the-password@127.0.0.1:${hub.leafPort}`;
    const leafPort = await freePort();
    const err = await joinRelay({ dataDir: tempDir(), relayUrl: wrong, leafPort }).catch((e: unknown) => e);
    expect(isAnxError(err) && err.code).toBe('ANX_RELAY_REFUSED');
    expect((err as Error).message).toMatch(/refused this host's leaf: Authorization Violation/);
    expect((err as Error).message).not.toContain('not-the-password');
    // Its leaf is gone with it.
    expect(await portOpen(leafPort)).toBe(false);

    const cli = spawnSync(
      process.execPath,
      [CLI, '--data-dir', tempDir(), 'start', '--port', '0', '--leaf-port', String(await freePort())],
      { encoding: 'utf8', env: { ...process.env, [RELAY_ENV]: wrong }, timeout: 60_000 },
    );
    expect(cli.status).toBe(5);
    expect(cli.stderr).toMatch(
      /error: the hub at 127\.0\.0\.1:\d+ refused this host's leaf: Authorization Violation/,
    );
    expect(cli.stderr).toMatch(/hint: check the user and password/);
    expect(cli.stderr + cli.stdout).not.toContain('not-the-password');
  } finally {
    await hub.stop();
  }
}, 90_000);

it('runs without a hub that does not answer, says so, and shows in its status when the hub answers', async () => {
  const hub = await startHub();
  await hub.stop();
  const warnings: string[] = [];
  const conn = await joinRelay({
    dataDir: tempDir(),
    relayUrl: hub.leafUrl,
    leafPort: 0,
    hubWaitMs: 1_500,
    onWarning: (m) => warnings.push(m),
  });
  try {
    expect(warnings[0]).toMatch(/the hub at 127\.0\.0\.1:\d+ does not answer yet \(.*connection refused\)/);
    const down = await conn.relay.statusWithHub();
    expect(down.hub).toMatchObject({ reachable: false, problem: { kind: 'unreachable' } });
    await hub.restart();
    await waitFor(async () => (await conn.relay.statusWithHub()).hub?.reachable === true, 30_000);
    expect((await conn.relay.statusWithHub()).hub).not.toHaveProperty('problem');
  } finally {
    await conn.close();
    await hub.stop();
  }
}, 90_000);

/** Connects to a NATS client port with a password that is not the leaf's, and waits for the refusal. */
async function wrongLogin(port: number): Promise<void> {
  const err = await connect({
    servers: `nats://127.0.0.1:${port}`,
    user: 'intruder',
    pass: 'wrong',
    reconnect: false,
  })
    .then(async (nc) => {
      await nc.close();
      return undefined;
    })
    .catch((e: unknown) => e);
  expect(err).toBeDefined();
}

it('stops the leaf a kill -9-ed host left running and supervises a new one when the host starts again', async () => {
  const hub = await startHub();
  const dataDir = tempDir();
  const leafPort = await freePort();
  const pidFile = join(dataDir, 'relay', 'leaf.pid');
  const leafPid = () => Number(readFileSync(pidFile, 'utf8').split(' ')[0]);
  // A process that exited but was not reaped yet (a zombie: state Z) counts as gone.
  const alive = (pid: number) => {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
    } catch {
      return false;
    }
  };
  const start = () =>
    startDaemonProcess(dataDir, 60_000, {
      args: ['--leaf-port', String(leafPort)],
      env: { [RELAY_ENV]: hub.leafUrl },
    });
  let daemon = await start();
  const orphan = leafPid();
  try {
    await killHard(daemon);
    // The leaf outlived its host, also past its next log line (its output goes to a file, not to a
    // pipe whose reader is gone: a write there would kill it with SIGPIPE). A client with the wrong
    // password makes it log one.
    expect(alive(orphan)).toBe(true);
    await wrongLogin(leafPort);
    const logFile = join(dataDir, 'relay', 'leaf.log');
    await waitFor(
      () => /authoriz|authentication/i.test(readFileSync(logFile, 'utf8')),
      10_000,
      'the logged refusal',
    );
    await new Promise((r) => setTimeout(r, 300));
    expect(alive(orphan)).toBe(true);
    expect(statSync(logFile).mode & 0o777).toBe(0o600);
    daemon = await start();
    expect(alive(orphan)).toBe(false);
    const fresh = leafPid();
    expect(fresh).not.toBe(orphan);
    // This one is supervised: killed, it comes back on its port.
    process.kill(fresh, 'SIGKILL');
    await waitFor(() => existsSync(pidFile) && leafPid() !== fresh && alive(leafPid()), 30_000, 'a new leaf');
    await waitFor(() => portOpen(leafPort), 30_000, 'the leaf port');
    await daemon.api.post('/v1/stop', {});
    await waitFor(() => daemon.child.exitCode !== null, 30_000, 'the daemon stops');
    expect(existsSync(pidFile)).toBe(false);
  } finally {
    await killHard(daemon);
    for (const pid of [orphan, existsSync(pidFile) ? leafPid() : 0])
      if (pid > 0 && alive(pid)) process.kill(pid, 'SIGKILL');
    await hub.stop();
  }
}, 120_000);

it('stops the hub a killed relay start left running, and supervises a new one on the same ports', async () => {
  const dataDir = tempDir();
  const extra = ['--port', String(await freePort()), '--leaf-port', String(await freePort())];
  const pidFile = join(dataDir, 'hub', 'hub.pid');
  const running = (pid: number) => {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
    } catch {
      return false;
    }
  };
  const first = await startRelayCli(extra, dataDir);
  const orphan = first.info.pid;
  let second: Awaited<ReturnType<typeof startRelayCli>> | undefined;
  try {
    expect(readFileSync(pidFile, 'utf8').split(' ')[0]).toBe(String(orphan));
    const exited = new Promise((resolve) => first.child.once('exit', resolve));
    process.kill(first.child.pid as number, 'SIGKILL');
    await exited;
    // The hub outlived its supervisor (its output goes to a file, not to the killed process).
    expect(running(orphan)).toBe(true);
    second = await startRelayCli(extra, dataDir);
    expect(running(orphan)).toBe(false);
    expect(second.info.pid).not.toBe(orphan);
    expect(readFileSync(pidFile, 'utf8').split(' ')[0]).toBe(String(second.info.pid));
    await second.stop();
    expect(running(second.info.pid)).toBe(false);
    expect(existsSync(pidFile)).toBe(false);
  } finally {
    await second?.stop();
    if (running(orphan)) process.kill(orphan, 'SIGKILL');
  }
}, 90_000);

it('asks hosts for the credentials of the join URL on every client port it starts, and lets the holders share a leaf', async () => {
  const relay = await startRelayCli();
  const conns: Array<{ close(): Promise<void> }> = [];
  try {
    const { info } = relay;
    const creds = hostCredentialsOf(parseLeafUrl(info.join).credentials);
    // The hub's client port: refused without the credentials, taken with them.
    await expect(connect({ servers: info.clientUrl, reconnect: false })).rejects.toThrow(/authorization/i);
    // The hub's output goes to its log file (owner-only), the refusal included.
    await waitFor(
      () => /authentication error/.test(readFileSync(info.log, 'utf8')),
      10_000,
      "the hub's logged refusal",
    );
    expect(statSync(info.log).mode & 0o777).toBe(0o600);
    const viaHub = await connect({ servers: info.clientUrl, ...hostLogin(info.join) });
    await viaHub.close();
    expect(info.hostUrl).toContain(`${creds.user}:${encodeURIComponent(creds.password)}@`);

    // A host's leaf, bound to an address other hosts reach: the same for its client port.
    const first = await joinRelay({
      dataDir: tempDir(),
      relayUrl: info.join,
      leafPort: 0,
      leafHost: '127.0.0.2',
    });
    conns.push(first);
    expect(first.shareUrl).toBeDefined();
    expect(first.url).not.toContain(creds.password);
    await expect(connect({ servers: first.url, reconnect: false })).rejects.toThrow(/authorization/i);
    const stranger = await joinRelay({ dataDir: tempDir(), natsUrl: first.url }).catch((e: unknown) => e);
    expect(isAnxError(stranger) && stranger.code).toBe('ANX_RELAY_REFUSED');
    expect((stranger as Error).message).toMatch(/refused a connection without credentials/);
    // Another host of the LAN with the printed URL shares it; so does one with the same join URL.
    const peer = await joinRelay({ dataDir: tempDir(), natsUrl: first.shareUrl as string });
    conns.push(peer);
    expect((await peer.relay.statusWithHub()).hub?.reachable).toBe(true);
    expect((await peer.relay.statusWithHub()).hub?.address).not.toContain(creds.password);
    const port = Number(new URL(first.url).port);
    const sibling = await joinRelay({
      dataDir: tempDir(),
      relayUrl: info.join,
      leafPort: port,
      leafHost: '127.0.0.2',
    });
    conns.push(sibling);
    expect(sibling.leaf).toBeUndefined();
    expect((await sibling.relay.statusWithHub()).hub?.reachable).toBe(true);
  } finally {
    for (const c of conns.reverse()) await c.close();
    await relay.stop();
  }
}, 90_000);

it('takes the NATS URL from ANX_NATS and hands it to a detached start in the environment, not its arguments', () => {
  const url = 'nats://anx-host:not-in-ps-0123456789@192.168.1.10:4223';
  const saved = { relay: process.env[RELAY_ENV], nats: process.env[NATS_ENV] };
  delete process.env[RELAY_ENV];
  process.env[NATS_ENV] = url;
  try {
    expect(relayJoinOptions({ port: 0 })).toMatchObject({ natsUrl: url });
    expect(relayArgs({ port: 0, nats: url })).toEqual([]);
    expect(relayEnvOf({ port: 0, nats: url })).toEqual({ [NATS_ENV]: url, [RELAY_ENV]: '' });
    // A relay URL wins over the variable.
    expect(relayJoinOptions({ port: 0, relay: 'nats-leaf://u:p@hub:7422' })).not.toHaveProperty('natsUrl');
    expect(splitNatsUrl(url)).toEqual({
      url: 'nats://192.168.1.10:4223',
      login: { user: 'anx-host', password: 'not-in-ps-0123456789' },
    });
    expect(() => splitNatsUrl('nats-leaf://u:secret@x:1')).toThrow(/--nats expected .*\*\*\*@/);
  } finally {
    for (const [name, value] of [
      [RELAY_ENV, saved.relay],
      [NATS_ENV, saved.nats],
    ] as const)
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
  }
});
