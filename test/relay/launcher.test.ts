// The nats-server launcher: a hub and leaves on free loopback ports, an authenticated leaf link, restart on the same ports.
import { spawnSync } from 'node:child_process';
import { connect } from '@nats-io/transport-node';
import { afterAll, expect, it } from 'vitest';
import { leafConfig, NatsServer, parseLeafUrl } from '../../bridge/relay/nats-server.ts';
import { CLI } from '../helpers/daemon.ts';
import { freePort, startHub, startLeaf, startRelayCli, stopAllNats } from '../helpers/nats.ts';
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
