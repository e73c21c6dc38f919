// The anx MCP server: registers the tools on an McpServer and turns every failure into a readable tool error.
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { CallToolRequestSchema, type CallToolResult } from '@modelcontextprotocol/sdk/types.js';
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

function failure(err: unknown): CallToolResult {
  return { content: [{ type: 'text', text: describeError(err) }], isError: true };
}

/** Every problem of the arguments, by field: `"to": Invalid input: expected string, received number`. */
function argumentError(definition: ToolDefinition, error: z.ZodError): AnxError {
  const problems = error.issues.map((issue) => {
    const path = issue.path.map(String).join('.');
    return path === '' ? issue.message : `"${path}": ${issue.message}`;
  });
  const fields = Object.entries(definition.input).map(
    ([field, schema]) => `${field}${z.safeParse(schema, undefined).success ? '?' : ''}`,
  );
  return new AnxError('ANX_MCP_ARGUMENT', `${definition.name}: ${problems.join('; ')}`, {
    hint:
      fields.length === 0
        ? `${definition.name} takes no arguments`
        : `${definition.name} takes ${fields.join(', ')}`,
  });
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
  const schemas = new Map<string, { definition: ToolDefinition; schema: z.ZodType }>();
  for (const definition of [...TOOLS, ...DISPATCH_TOOLS, ...COLLAB_TOOLS, ...(options.tools ?? [])]) {
    // Strict: a misspelt argument is refused by name instead of silently ignored.
    const schema = z.strictObject(definition.input);
    schemas.set(definition.name, { definition, schema });
    server.registerTool(
      definition.name,
      {
        title: definition.title,
        description: definition.description,
        inputSchema: schema,
        annotations: { readOnlyHint: definition.readOnly, openWorldHint: false },
      },
      (args: Record<string, unknown>) => inFlight.track(call(definition, args)),
    );
  }
  // Calls are checked here rather than by McpServer, so that bad arguments are reported like every
  // other failure: `ANX_MCP_ARGUMENT`, each field's problem, and a hint. Listing stays McpServer's.
  server.server.setRequestHandler(CallToolRequestSchema, async (request) => {
    const name = request.params.name;
    const entry = schemas.get(name);
    if (entry === undefined)
      return failure(
        new AnxError('ANX_MCP_UNKNOWN_TOOL', `there is no tool "${name}"`, {
          hint: `the tools are ${[...schemas.keys()].join(', ')}`,
        }),
      );
    const parsed = entry.schema.safeParse(request.params.arguments ?? {});
    if (!parsed.success) return failure(argumentError(entry.definition, parsed.error));
    return inFlight.track(call(entry.definition, parsed.data as Record<string, unknown>));
  });
  return server;

  async function call(definition: ToolDefinition, args: Record<string, unknown>): Promise<CallToolResult> {
    try {
      return success(await definition.run(agent, args as never));
    } catch (err) {
      if (options.recover !== undefined && (await options.recover(err).catch(() => false))) {
        try {
          return success(await definition.run(agent, args as never));
        } catch (again) {
          return failure(again);
        }
      }
      return failure(err);
    }
  }
}
