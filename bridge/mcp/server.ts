// The anx MCP server: registers the tools on an McpServer and turns every failure into a readable tool error.
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { z } from 'zod';
import { AnxError } from '../../runtime/errors.ts';
import { VERSION } from '../../runtime/version.ts';
import { COLLAB_TOOLS, DISPATCH_TOOLS } from './team-tools.ts';
import { type McpAgent, TOOLS, type ToolDefinition } from './tools.ts';

export interface AnxMcpOptions {
  /**
   * Told of a failed call before it is reported; resolves true when it repaired the cause (for instance
   * started a host after the daemon went away), and the call is then made once more.
   */
  recover?: (err: unknown) => Promise<boolean>;
  /** Extra tools (for instance those of optional modules), registered after the built-in ones. */
  tools?: ToolDefinition[];
}

/** Tool calls still running: a server whose client hangs up lets them finish before it stops. */
export class InFlight {
  private readonly calls = new Set<Promise<unknown>>();

  track<T>(call: Promise<T>): Promise<T> {
    this.calls.add(call);
    void call.finally(() => this.calls.delete(call)).catch(() => {});
    return call;
  }

  /** Resolves when every call has settled, or after `timeoutMs`. */
  async settle(timeoutMs: number): Promise<void> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, timeoutMs);
    });
    await Promise.race([Promise.allSettled([...this.calls]), timeout]);
    clearTimeout(timer);
  }
}

/** The text of a failed call: `CODE: message`, then the hint on its own line when there is one. */
export function describeError(err: unknown): string {
  if (err instanceof AnxError) return `${err.code}: ${err.message}${err.hint ? `\nhint: ${err.hint}` : ''}`;
  return `ANX_INTERNAL: ${(err as Error)?.message ?? String(err)}`;
}

function success(value: unknown): CallToolResult {
  const structured =
    value !== null && typeof value === 'object' && !Array.isArray(value)
      ? (value as Record<string, unknown>)
      : { result: value ?? null };
  return {
    content: [{ type: 'text', text: JSON.stringify(value ?? null, null, 2) }],
    structuredContent: structured,
  };
}

/**
 * An MCP server acting as `agent`'s identity. Connect it to a transport (stdio for `anx-runtime mcp`).
 *
 * @example
 * ```ts
 * const server = createAnxMcpServer(agent);
 * await server.connect(new StdioServerTransport());
 * ```
 */
export function createAnxMcpServer(
  agent: McpAgent,
  options: AnxMcpOptions = {},
  inFlight = new InFlight(),
): McpServer {
  const server = new McpServer(
    { name: 'anx-runtime', title: 'AgentNexus Runtime', version: VERSION },
    {
      instructions: `You act as the anx identity ${agent.client.did} ("${agent.name}"). Use discover to find agents, send and inbox to talk to them, stage_tasks and stage_deliver to work on playbook runs.`,
    },
  );
  for (const definition of [...TOOLS, ...DISPATCH_TOOLS, ...COLLAB_TOOLS, ...(options.tools ?? [])]) {
    server.registerTool(
      definition.name,
      {
        title: definition.title,
        description: definition.description,
        // Strict: a misspelt argument is refused by name instead of silently ignored.
        inputSchema: z.strictObject(definition.input),
        annotations: { readOnlyHint: definition.readOnly, openWorldHint: false },
      },
      (args: Record<string, unknown>) => inFlight.track(call(definition, args)),
    );
  }
  return server;

  async function call(definition: ToolDefinition, args: Record<string, unknown>): Promise<CallToolResult> {
    try {
      return success(await definition.run(agent, args as never));
    } catch (err) {
      if (options.recover !== undefined && (await options.recover(err).catch(() => false))) {
        try {
          return success(await definition.run(agent, args as never));
        } catch (again) {
          return { content: [{ type: 'text', text: describeError(again) }], isError: true };
        }
      }
      return { content: [{ type: 'text', text: describeError(err) }], isError: true };
    }
  }
}
