// The `anx-runtime mcp` server: MCP on stdio bound to one identity, a client of the data directory's daemon or its host.
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import { ApiClient, DaemonNotRunningError } from '../../bridge/api/client.ts';
import { bindingFile, readBinding, withBindingLock, writeBinding } from '../../bridge/mcp/binding.ts';
import { createAnxMcpServer, InFlight } from '../../bridge/mcp/server.ts';
import type { McpAgent } from '../../bridge/mcp/tools.ts';
import { type AnxClient, connect, SdkIdentityError } from '../../bridge/sdk/index.ts';
import { DaemonRunningError, type RunningDaemon, startDaemon } from '../daemon.ts';
import { AnxError } from '../errors.ts';
import type { McpCommandOptions } from './mcp-command.ts';

function log(line: string): void {
  process.stderr.write(`anx-runtime mcp: ${line}\n`);
}

async function daemonAnswers(dataDir: string): Promise<boolean> {
  try {
    await ApiClient.forDataDir(dataDir).get('/v1/status');
    return true;
  } catch {
    return false;
  }
}

/**
 * Where the host runs: the data directory's daemon when one answers, else this process. Hosting here
 * loses a race to another process starting at the same time gracefully: that one's daemon is used.
 */
class Hosting {
  daemon: RunningDaemon | undefined;

  constructor(
    readonly dataDir: string,
    readonly mode: McpCommandOptions['mode'],
  ) {}

  async ensure(): Promise<void> {
    if (this.daemon !== undefined) return;
    if (this.mode !== 'embedded' && (await daemonAnswers(this.dataDir))) return;
    if (this.mode === 'daemon') throw new DaemonNotRunningError(this.dataDir);
    // Another process holds the directory: a daemon starting (it answers soon) or stopping (it lets
    // go of the lock last, and then this process hosts it). Either way, wait a bounded time.
    const deadline = Date.now() + 30_000;
    for (;;) {
      try {
        this.daemon = await startDaemon({ dataDir: this.dataDir, port: 0 });
        log(`hosting ${this.dataDir} in this process; local API on ${this.daemon.api.url}`);
        return;
      } catch (err) {
        if (!(err instanceof DaemonRunningError) || this.mode === 'embedded') throw err;
        if (await daemonAnswers(this.dataDir)) return;
        if (Date.now() > deadline) throw err;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  }

  /** A call found no daemon (it stopped): host here when allowed, so the next try succeeds. */
  async recover(err: unknown): Promise<boolean> {
    if (!(err instanceof DaemonNotRunningError) || this.mode !== 'auto' || this.daemon !== undefined)
      return false;
    await this.ensure();
    log('the daemon went away; continuing with a host in this process');
    return true;
  }

  async close(): Promise<void> {
    await this.daemon?.shutdown();
  }
}

/** The client of the DID bound to `name`; the first start binds the name (to its oldest identity, or a new one). */
async function bindIdentity(dataDir: string, name: string, caps: string[] | undefined): Promise<AnxClient> {
  const card = caps === undefined ? {} : { caps, card: { name } };
  const bound = readBinding(dataDir, name);
  if (bound !== undefined) {
    try {
      return await connect({ dataDir, did: bound.did, ...card });
    } catch (err) {
      if (!(err instanceof SdkIdentityError)) throw err;
      throw new AnxError(
        'ANX_MCP_BINDING',
        `"${name}" is bound to ${bound.did}, whose key this data directory does not hold`,
        {
          hint: `use the --data-dir that holds it, or delete ${bindingFile(dataDir, name)} to bind the name anew`,
          cause: err,
        },
      );
    }
  }
  // First start under this name: bind it once, even when several servers start at the same moment.
  return withBindingLock(dataDir, name, async () => {
    const other = readBinding(dataDir, name);
    if (other !== undefined) return connect({ dataDir, did: other.did, ...card });
    const client = await connect({ dataDir, name, ...card });
    writeBinding(dataDir, { name, did: client.did, createdAt: Date.now() });
    return client;
  });
}

export async function serveMcp(options: McpCommandOptions & { dataDir: string }): Promise<void> {
  // stdout belongs to the protocol: anything a library prints goes to stderr instead.
  const toStderr = (...args: unknown[]) => console.error(...args);
  console.log = toStderr;
  console.info = toStderr;
  console.debug = toStderr;

  const hosting = new Hosting(options.dataDir, options.mode);
  await hosting.ensure();
  let client: AnxClient;
  try {
    client = await bindIdentity(options.dataDir, options.name, options.caps);
  } catch (err) {
    await hosting.close();
    throw err;
  }
  const agent: McpAgent = {
    client,
    api: (client as AnxClient & { api: ApiClient }).api,
    name: options.name,
    dataDir: options.dataDir,
    hosting: () => (hosting.daemon === undefined ? 'daemon' : 'embedded'),
  };
  const inFlight = new InFlight();
  const server = createAnxMcpServer(agent, { recover: (err) => hosting.recover(err) }, inFlight);
  log(`serving MCP on stdio as ${client.did} ("${options.name}")`);

  let stopping: Promise<void> | undefined;
  const stop = () => {
    stopping ??= (async () => {
      await server.close().catch(() => {});
      await client.close().catch(() => {});
      await hosting
        .close()
        .catch((err: unknown) => log(`closing the host failed: ${(err as Error).message}`));
    })();
    return stopping;
  };
  const closed = new Promise<void>((resolve) => {
    process.stdin.once('end', () => resolve());
    process.stdin.once('close', () => resolve());
    process.once('SIGINT', () => resolve());
    process.once('SIGTERM', () => resolve());
  });
  await server.connect(new StdioServerTransport());
  await closed;
  // A client that hangs up right after its last request still gets the answer written.
  await inFlight.settle(10_000);
  await new Promise<void>((resolve) => process.stdout.write('', () => resolve()));
  await stop();
  log('stopped');
  // Handles a library may keep (sockets, timers) must not keep a server whose client has gone.
  process.exit(0);
}
