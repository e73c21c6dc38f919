// One host per data directory: a second one, in another process or in this one, is refused with a typed error.
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { connect } from '../../bridge/sdk/index.ts';
import { startDaemon } from '../../runtime/daemon.ts';
import { Host } from '../../runtime/host.ts';
import { cleanupTempDirs, tempDir } from '../helpers/tmp.ts';

const children: ChildProcess[] = [];
afterEach(() => {
  for (const c of children.splice(0)) if (c.exitCode === null) c.kill('SIGKILL');
  cleanupTempDirs();
});

it('refuses a second host on an open data directory in this process, and opens it again once closed', async () => {
  const dataDir = tempDir();
  const first = await Host.open({ dataDir, noSync: true });
  const did = (await first.createIdentity({ name: 'a' })).did;
  await expect(Host.open({ dataDir, noSync: true })).rejects.toMatchObject({
    code: 'ANX_DATA_DIR_LOCKED',
    message: expect.stringContaining('this process already has a host open'),
  });
  await expect(connect({ mode: 'embedded', dataDir, name: 'b' })).rejects.toMatchObject({
    code: 'ANX_DATA_DIR_LOCKED',
  });
  await expect(startDaemon({ dataDir, port: 0 })).rejects.toMatchObject({ code: 'ANX_DATA_DIR_LOCKED' });
  // The refused attempts left the first host's lock in place.
  expect(existsSync(join(dataDir, 'daemon.lock'))).toBe(true);
  await first.close();
  expect(existsSync(join(dataDir, 'daemon.lock'))).toBe(false);
  const again = await Host.open({ dataDir, noSync: true });
  expect(again.identities().map((i) => i.did)).toEqual([did]);
  await again.close();
});

it("refuses a host while another live process holds the directory, and takes over a dead process's lock", async () => {
  const dataDir = tempDir();
  const holder = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60_000)'], { stdio: 'ignore' });
  children.push(holder);
  writeFileSync(join(dataDir, 'daemon.lock'), String(holder.pid));
  const refused = await Host.open({ dataDir, noSync: true }).catch((err: unknown) => err);
  expect(refused).toMatchObject({
    code: 'ANX_DATA_DIR_LOCKED',
    pid: holder.pid,
    hint: expect.stringContaining('daemon'),
  });
  await expect(startDaemon({ dataDir, port: 0 })).rejects.toMatchObject({ code: 'ANX_DAEMON_RUNNING' });
  const exited = new Promise((resolve) => holder.once('exit', resolve));
  holder.kill('SIGKILL');
  await exited;
  // A lock left by a process that is gone (a crash, kill -9) is stale.
  const host = await Host.open({ dataDir, noSync: true });
  await host.close();
});
