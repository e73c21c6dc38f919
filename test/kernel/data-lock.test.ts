// One host per data directory: a second one, in another process or in this one, is refused with a typed error.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
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

const CONTENDER = fileURLToPath(new URL('../helpers/lock-contender.ts', import.meta.url));

/** Starts `n` processes, lets them take the lock of `dataDir` at one moment, and returns what each got. */
async function race(dataDir: string, n: number): Promise<string[]> {
  const contenders = Array.from({ length: n }, () => {
    const child = spawn(process.execPath, ['--import', 'tsx', CONTENDER, dataDir], {
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    children.push(child);
    const lines = createInterface({ input: child.stdout as NonNullable<typeof child.stdout> });
    const next = (): Promise<string> => new Promise((resolve) => lines.once('line', resolve));
    return { child, ready: next(), next };
  });
  for (const c of contenders) expect(await c.ready).toBe('ready');
  const outcomes = contenders.map((c) => c.next());
  const at = Date.now() + 300;
  for (const c of contenders) c.child.stdin?.write(`go ${at}\n`);
  const results = await Promise.all(outcomes);
  for (const c of contenders) c.child.stdin?.end('exit\n');
  await Promise.all(contenders.map((c) => new Promise((resolve) => c.child.once('exit', resolve))));
  return results.sort();
}

function deadPid(): number {
  const gone = spawnSync(process.execPath, ['-e', '']);
  return gone.pid as number;
}

it('gives the lock to exactly one of several processes starting at once: fresh, stale, or left by a reused pid', async () => {
  const expected = [
    'ANX_DATA_DIR_LOCKED',
    'ANX_DATA_DIR_LOCKED',
    'ANX_DATA_DIR_LOCKED',
    'ANX_DATA_DIR_LOCKED',
    'took',
  ];
  for (let round = 0; round < 2; round++) {
    const fresh = tempDir();
    expect(await race(fresh, 5)).toEqual(expected);
    // Left by a process that is gone.
    const stale = tempDir();
    writeFileSync(join(stale, 'daemon.lock'), String(deadPid()));
    expect(await race(stale, 5)).toEqual(expected);
  }
  // A pid that now belongs to another live process (after a reboot, say): its start time differs.
  if (existsSync('/proc/self/stat')) {
    const reused = tempDir();
    writeFileSync(join(reused, 'daemon.lock'), `${process.pid} 1`);
    expect(await race(reused, 3)).toEqual(['ANX_DATA_DIR_LOCKED', 'ANX_DATA_DIR_LOCKED', 'took']);
  }
}, 120_000);

it('leaves a lock that is no longer its own in place when released', async () => {
  const dataDir = tempDir();
  const host = await Host.open({ dataDir, noSync: true });
  const file = join(dataDir, 'daemon.lock');
  expect(readFileSync(file, 'utf8')).toMatch(new RegExp(`^${process.pid}( \\d+)?$`));
  const holder = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60_000)'], { stdio: 'ignore' });
  children.push(holder);
  writeFileSync(file, String(holder.pid));
  await host.close();
  expect(readFileSync(file, 'utf8')).toBe(String(holder.pid));
});
