// Starts real `anx-runtime start` daemon processes for end-to-end tests, and kills them by their own PID.
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { ApiClient, type ApiClientOptions, readDaemonInfo } from '../../bridge/api/client.ts';

export const CLI = fileURLToPath(new URL('../../bin/anx-runtime.js', import.meta.url));

const execFileAsync = promisify(execFile);

/** What one CLI run printed, and its exit code. */
export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `anx-runtime --data-dir D ARGS…` as a child process; a non-zero exit is a result, not a throw. */
export async function runCli(dataDir: string, ...args: string[]): Promise<CliResult> {
  try {
    const { stdout, stderr } = await execFileAsync(process.execPath, [CLI, '--data-dir', dataDir, ...args]);
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

/** Runs the CLI with `--json` and parses what it printed; throws with its output when it exits non-zero. */
export async function runCliJson<T>(dataDir: string, ...args: string[]): Promise<T> {
  const r = await runCli(dataDir, '--json', ...args);
  if (r.code !== 0) throw new Error(`anx-runtime ${args.join(' ')} exited ${r.code}: ${r.stdout}${r.stderr}`);
  return JSON.parse(r.stdout) as T;
}

export interface DaemonProcess {
  child: ChildProcess;
  api: ApiClient;
  pid: number;
  output: () => string;
}

/** Spawns a daemon on a free loopback port and resolves once its API answers. */
export async function startDaemonProcess(
  dataDir: string,
  timeoutMs = 30_000,
  options: { args?: string[]; env?: Record<string, string>; api?: ApiClientOptions } = {},
): Promise<DaemonProcess> {
  // Node options for the daemons alone (NODE_OPTIONS refuses some, such as --cpu-prof): docs/benchmarks.md.
  const nodeArgs = (process.env['ANX_DAEMON_NODE_ARGS'] ?? '').split(' ').filter((a) => a !== '');
  const args = [
    ...nodeArgs,
    CLI,
    '--data-dir',
    dataDir,
    '--json',
    'start',
    '--port',
    '0',
    ...(options.args ?? []),
  ];
  const child = spawn(process.execPath, args, {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...options.env },
  });
  let output = '';
  child.stdout?.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (output += d.toString()));
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`daemon exited with ${child.exitCode}: ${output}`);
    const info = readDaemonInfo(dataDir);
    if (info !== undefined && info.pid === child.pid && existsSync(`${dataDir}/api.token`)) {
      const api = new ApiClient(info.url, readFileSync(`${dataDir}/api.token`, 'utf8').trim(), options.api);
      return { child, api, pid: child.pid as number, output: () => output };
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  child.kill('SIGKILL');
  throw new Error(`daemon did not start within ${timeoutMs} ms: ${output}`);
}

/** `kill -9` of the daemon we started, resolving once it has exited. */
export async function killHard(daemon: DaemonProcess): Promise<void> {
  if (daemon.child.exitCode !== null || daemon.child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => daemon.child.once('exit', () => resolve()));
  process.kill(daemon.pid, 'SIGKILL');
  await exited;
}

/**
 * Stops the daemon we started as a user would (SIGTERM: it closes its stores and writes any
 * `--cpu-prof` profile), with `kill -9` after `graceMs`; resolves once it has exited.
 */
export async function stopDaemon(daemon: DaemonProcess, graceMs = 10_000): Promise<void> {
  if (daemon.child.exitCode !== null || daemon.child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => daemon.child.once('exit', () => resolve()));
  process.kill(daemon.pid, 'SIGTERM');
  const timer = setTimeout(() => void killHard(daemon), graceMs);
  await exited;
  clearTimeout(timer);
}

/** Polls `probe` until it returns true, failing after `timeoutMs`. */
export async function waitFor(
  probe: () => Promise<boolean> | boolean,
  timeoutMs = 30_000,
  what = 'condition',
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await probe()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}
