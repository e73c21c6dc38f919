// Runs the reference flows of docs/examples: each agent in its own process, talking through one daemon.
import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, expect, it } from 'vitest';
import { hello } from '../../docs/examples/hello.ts';
import { type DaemonProcess, killHard, startDaemonProcess } from '../helpers/daemon.ts';
import { cleanupTempDirs, tempDir } from '../helpers/tmp.ts';

const ECHO_AGENT = fileURLToPath(new URL('../../docs/examples/echo-agent.ts', import.meta.url));

const daemons: DaemonProcess[] = [];
const agents: ChildProcess[] = [];
afterAll(async () => {
  for (const agent of agents) {
    if (agent.exitCode === null && agent.signalCode === null) {
      const exited = new Promise<void>((resolve) => agent.once('exit', () => resolve()));
      process.kill(agent.pid as number, 'SIGKILL');
      await exited;
    }
  }
  for (const d of daemons) await killHard(d);
  cleanupTempDirs();
});

/** Starts the echo agent in its own process and resolves with its DID once it listens. */
async function startEchoAgent(dataDir: string): Promise<{ child: ChildProcess; did: string }> {
  const child = spawn(process.execPath, ['--conditions=anx-source', '--import', 'tsx', ECHO_AGENT, dataDir], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  agents.push(child);
  let output = '';
  child.stderr?.on('data', (d: Buffer) => (output += d.toString()));
  const did = await new Promise<string>((resolve, reject) => {
    let line = '';
    child.stdout?.on('data', (d: Buffer) => {
      line += d.toString();
      const end = line.indexOf('\n');
      if (end >= 0) resolve((JSON.parse(line.slice(0, end)) as { did: string }).did);
    });
    child.once('exit', (code) => reject(new Error(`echo agent exited with ${code}: ${output}`)));
  });
  return { child, did };
}

it('send and receive: Developer says Hello to the Echo agent in another process and gets its answer', async () => {
  const dataDir = tempDir();
  daemons.push(await startDaemonProcess(dataDir));
  const echo = await startEchoAgent(dataDir);
  const answer = await hello(dataDir, echo.did);
  expect(answer).toEqual({ from: echo.did, text: 'echo: Hello' });
  // SIGTERM closes the client, which ends its message loop: the agent exits on its own.
  const exited = new Promise<number | null>((resolve) => echo.child.once('exit', (code) => resolve(code)));
  process.kill(echo.child.pid as number, 'SIGTERM');
  expect(await exited).toBe(0);
});
