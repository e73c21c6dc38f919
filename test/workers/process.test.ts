// The command runner of the script worker and the cli adapter: process groups, limits, and nothing left behind.
import { afterEach, expect, it } from 'vitest';
import { killAllCommands, type ProcessSpec, runProcess, STDOUT_MAX } from '../../bridge/workers/process.ts';

const strays: number[] = [];
afterEach(() => {
  for (const pid of strays.splice(0)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // Gone, as it should be.
    }
  }
});

function spec(argv: string[], extra: Partial<ProcessSpec> = {}): ProcessSpec {
  return {
    argv,
    env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin' },
    timeoutMs: 20_000,
    graceMs: 500,
    signal: new AbortController().signal,
    ...extra,
  };
}

/** Waits (bounded) until `pid` is gone; false when it still runs after 3 s. */
async function gone(pid: number): Promise<boolean> {
  for (let i = 0; i < 60; i++) {
    try {
      process.kill(pid, 0);
    } catch {
      return true;
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return false;
}

/** The pids a command printed, one per line, remembered so that a failing test still ends them. */
function pidsIn(stdout: Buffer): number[] {
  const pids = stdout
    .toString('utf8')
    .split('\n')
    .filter((l) => /^\d+$/.test(l))
    .map(Number);
  strays.push(...pids);
  return pids;
}

it('answers when the command exits, and ends what it left running in the background', async () => {
  const started = Date.now();
  const r = await runProcess(spec(['/bin/sh', '-c', 'sleep 30 & echo $!; echo hello; exit 0']));
  expect(r).toMatchObject({ code: 0, timedOut: false, tooLarge: false, aborted: false });
  expect(r.stdout.toString()).toContain('hello');
  expect(Date.now() - started).toBeLessThan(15_000);
  const [background] = pidsIn(r.stdout);
  expect(await gone(background as number)).toBe(true);
});

it('times out a command whose background process holds its output, and ends the whole group', async () => {
  const r = await runProcess(
    spec(['/bin/sh', '-c', 'sleep 30 & echo $!; sleep 30; echo never'], { timeoutMs: 300 }),
  );
  expect(r.timedOut).toBe(true);
  expect(r.stdout.toString()).not.toContain('never');
  const [background] = pidsIn(r.stdout);
  expect(await gone(background as number)).toBe(true);
});

it('says the output was too large even when the command then exits 0', async () => {
  const r = await runProcess(spec(['/bin/sh', '-c', `head -c ${STDOUT_MAX + 100} /dev/zero`]));
  expect(r.tooLarge).toBe(true);
  expect(r.stdout.length).toBeLessThanOrEqual(STDOUT_MAX);
});

it('does not start a command for a task already stopped, and says when the working directory is missing', async () => {
  const stopped = new AbortController();
  stopped.abort();
  const r = await runProcess(spec(['/bin/sh', '-c', 'echo ran'], { signal: stopped.signal }));
  expect(r).toMatchObject({ aborted: true, code: null });
  expect(r.stdout.length).toBe(0);
  const missing = await runProcess(spec(['/bin/echo', 'x'], { cwd: '/nonexistent/anx-workdir' }));
  expect(missing.spawnError).toBe('the working directory /nonexistent/anx-workdir does not exist');
  const noProgram = await runProcess(spec(['/nonexistent/anx-program']));
  expect(noProgram.spawnError).toContain('ENOENT');
});

it('stops on abort with SIGTERM, then SIGKILL for a command that ignores it', async () => {
  const controller = new AbortController();
  const pending = runProcess(
    spec(['/bin/sh', '-c', 'trap "" TERM; echo $$; sleep 30'], { signal: controller.signal, graceMs: 300 }),
  );
  await new Promise((resolve) => setTimeout(resolve, 300));
  controller.abort();
  const r = await pending;
  expect(r.aborted).toBe(true);
  expect(r.signal).toBe('SIGKILL');
});

it('does not wait on a process that left the group but holds the output', async () => {
  const started = Date.now();
  const r = await runProcess(
    spec(['/bin/sh', '-c', 'setsid sh -c "echo \\$\\$; exec sleep 30" & sleep 0.3; exit 0']),
  );
  expect(r.code).toBe(0);
  expect(Date.now() - started).toBeLessThan(15_000);
  expect(pidsIn(r.stdout)).toHaveLength(1);
});

it('kills every running command at once when asked (a second Ctrl-C)', async () => {
  const pending = runProcess(
    spec(['/bin/sh', '-c', 'trap "" TERM; sleep 30'], { graceMs: 60_000, timeoutMs: 60_000 }),
  );
  await new Promise((resolve) => setTimeout(resolve, 300));
  killAllCommands();
  const r = await pending;
  expect(r.signal).toBe('SIGKILL');
});
