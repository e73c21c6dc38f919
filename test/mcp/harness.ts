// Starts `anx-runtime mcp` as a real stdio child process and talks to it with the official MCP TypeScript client.
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { CLI } from '../helpers/daemon.ts';

export interface McpProcess {
  client: Client;
  transport: StdioClientTransport;
  /** What the server wrote to stderr so far. */
  stderr: () => string;
  /** Calls a tool; returns the parsed JSON of a success, or the error text of an isError result. */
  call(name: string, args?: Record<string, unknown>): Promise<ToolOutcome>;
  /** Closes stdin and waits for the process to exit. */
  close(): Promise<void>;
}

/** A tool result's JSON, read by shape in assertions. */
// biome-ignore lint/suspicious/noExplicitAny: results are parsed JSON whose shape each assertion states
export type Json = any;

export type ToolOutcome = { ok: true; value: Json } | { ok: false; error: string };

/** Spawns `anx-runtime mcp --data-dir DIR …args` and completes the MCP handshake. */
export async function startMcp(dataDir: string, args: string[] = []): Promise<McpProcess> {
  const transport = new StdioClientTransport({
    command: process.execPath,
    args: [CLI, 'mcp', '--data-dir', dataDir, ...args],
    stderr: 'pipe',
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '' },
  });
  let stderr = '';
  transport.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  const client = new Client({ name: 'anx-test', version: '1.0.0' });
  await client.connect(transport, { timeout: 60_000 });
  return {
    client,
    transport,
    stderr: () => stderr,
    async call(name, callArgs = {}) {
      const result = (await client.callTool({ name, arguments: callArgs }, undefined, {
        timeout: 60_000,
      })) as CallToolResult;
      const text = result.content.map((c) => (c.type === 'text' ? c.text : '')).join('');
      return result.isError === true ? { ok: false, error: text } : { ok: true, value: JSON.parse(text) };
    },
    async close() {
      const pid = transport.pid;
      await client.close();
      // The transport ends stdin and then signals; wait for the process itself to be gone.
      const deadline = Date.now() + 30_000;
      while (pid !== null && Date.now() < deadline && alive(pid)) await new Promise((r) => setTimeout(r, 50));
    },
  };
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** The value of a successful call, failing the test with the server's error text otherwise. */
export function ok(outcome: ToolOutcome): Json {
  if (!outcome.ok) throw new Error(`tool failed: ${outcome.error}`);
  return outcome.value;
}
