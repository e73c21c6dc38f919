// The MCP server's stdout carries the protocol and nothing else, with either documented launcher; startup errors go to stderr.
import { spawn } from 'node:child_process';
import { tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';
import { afterAll, expect, it } from 'vitest';
import { CLI } from '../helpers/daemon.ts';
import { cleanupTempDirs, tempDir } from '../helpers/tmp.ts';

const MAIN = fileURLToPath(new URL('../../runtime/cli/main.ts', import.meta.url));

afterAll(() => cleanupTempDirs());

interface Exit {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a launcher with `lines` on stdin (stdin ends once the last answer arrived, or at once when none is awaited). */
function run(args: string[], lines: object[], answers: number): Promise<Exit> {
  return new Promise((resolve, reject) => {
    // The launcher must work from any working directory: MCP clients start servers wherever they are.
    const cwd = args[0] === CLI ? tmpdir() : process.cwd();
    const child = spawn(process.execPath, args, { stdio: ['pipe', 'pipe', 'pipe'], cwd });
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), 90_000);
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
      if (stdout.split('\n').filter((l) => l !== '').length >= answers) child.stdin.end();
    });
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    child.stdin.on('error', () => {});
    for (const line of lines) child.stdin.write(`${JSON.stringify(line)}\n`);
    if (answers === 0) child.stdin.end();
  });
}

const SESSION = [
  {
    jsonrpc: '2.0',
    id: 1,
    method: 'initialize',
    params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'purity', version: '1' } },
  },
  { jsonrpc: '2.0', method: 'notifications/initialized' },
  { jsonrpc: '2.0', id: 2, method: 'tools/list' },
  { jsonrpc: '2.0', id: 3, method: 'tools/call', params: { name: 'whoami', arguments: {} } },
  { jsonrpc: '2.0', id: 4, method: 'tools/call', params: { name: 'send', arguments: { to: 1 } } },
  { jsonrpc: '2.0', id: 5, method: 'tools/call', params: { name: 'discover', arguments: {} } },
];

for (const [launcher, args] of [
  ['node --import tsx runtime/cli/main.ts', ['--import', 'tsx', MAIN]],
  ['bin/anx-runtime.js', [CLI]],
] as const) {
  it(`writes only JSON-RPC messages to stdout (${launcher}), logs to stderr`, async () => {
    const dataDir = tempDir();
    const { code, stdout, stderr } = await run(
      [...args, 'mcp', '--data-dir', dataDir, '--name', 'Pure', '--caps', 'Chat'],
      SESSION,
      5,
    );
    expect(code, stderr).toBe(0);
    const lines = stdout.split('\n').filter((l) => l !== '');
    const messages = lines.map((l) => JSON.parse(l) as { jsonrpc: string; id: number; result?: unknown });
    expect(messages.every((m) => m.jsonrpc === '2.0')).toBe(true);
    expect(messages.map((m) => m.id).sort()).toEqual([1, 2, 3, 4, 5]);
    expect(stdout.endsWith('\n')).toBe(true);
    expect(stderr).toContain('hosting');
    expect(stderr).toContain('serving MCP on stdio');
  }, 120_000);
}

it('refuses --mode daemon when no daemon runs: exit 3, the reason and what to do on stderr, nothing on stdout', async () => {
  const dataDir = tempDir();
  const { code, stdout, stderr } = await run([CLI, 'mcp', '--data-dir', dataDir, '--mode', 'daemon'], [], 0);
  expect(code).toBe(3);
  expect(stdout).toBe('');
  expect(stderr).toContain(`no anx-runtime daemon is running for ${dataDir}`);
  expect(stderr).toContain('hint: start one with `anx-runtime start`');
}, 60_000);

it('refuses bad --caps and --mode before serving', async () => {
  const dataDir = tempDir();
  const caps = await run([CLI, 'mcp', '--data-dir', dataDir, '--caps', ' , '], [], 0);
  expect(caps.code).toBe(2);
  expect(caps.stdout).toBe('');
  expect(caps.stderr).toContain('--caps expected a comma-separated list');
  const mode = await run([CLI, 'mcp', '--data-dir', dataDir, '--mode', 'cloud'], [], 0);
  expect(mode.code).toBe(2);
  expect(mode.stderr).toContain("option '--mode <mode>' argument 'cloud' is invalid");
}, 60_000);
