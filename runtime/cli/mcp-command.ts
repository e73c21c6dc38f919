// `anx-runtime mcp`: its options and help; the server itself (mcp-serve.ts) is loaded when the command runs.
import { type Command, Option } from 'commander';
import { AnxError } from '../errors.ts';
import { resolveDataDir } from '../paths.ts';

export interface McpCommandOptions {
  name: string;
  caps?: string[];
  dataDir?: string;
  mode: 'auto' | 'daemon' | 'embedded';
}

/** `--caps "Chat,Search"` → `['Chat', 'Search']` (blanks dropped). */
export function parseCaps(value: string): string[] {
  const caps = value
    .split(',')
    .map((c) => c.trim())
    .filter((c) => c !== '');
  if (caps.length === 0)
    throw new AnxError('ANX_ARGUMENT_INVALID', `--caps expected a comma-separated list, got "${value}"`, {
      hint: 'anx-runtime mcp --name MyAssistant --caps "Chat,Search"',
    });
  return caps;
}

export function registerMcpCommand(program: Command, dataDirOf: (cmd: Command) => string): void {
  program
    .command('mcp')
    .description(
      'serve MCP over stdio as one identity (the same DID at every start): messages, discover, dispatch/abort, runs, vault, stage work, tasks, discussions',
    )
    .option('-n, --name <name>', 'the identity to act as; bound to one DID in the data directory', 'anx-mcp')
    .option(
      '--caps <list>',
      'capabilities published in the agent card, comma-separated ("Chat,Search")',
      parseCaps,
    )
    .option('-d, --data-dir <dir>', 'data directory (default: the global --data-dir, $ANX_DATA_DIR, …)')
    .addOption(
      new Option(
        '--mode <mode>',
        'auto: use the running daemon, else host in this process; daemon: require one; embedded: always host here',
      )
        .choices(['auto', 'daemon', 'embedded'])
        .default('auto'),
    )
    .addHelpText(
      'after',
      `
stdout carries only the MCP protocol; logs go to stderr. Hosting in this process serves the local API
for the data directory while the server runs, so the CLI and other MCP servers can use it.

Examples:
  anx-runtime mcp --name MyAssistant --caps "Chat,Search"
  claude mcp add anx -- anx-runtime mcp --name MyAssistant     # see docs/mcp-setup.md`,
    )
    .action(async (options: McpCommandOptions, cmd: Command) => {
      // Loaded on use: the MCP SDK alone takes longer to import than every other command needs to run.
      const { serveMcp } = await import('./mcp-serve.ts');
      await serveMcp({
        ...options,
        dataDir: options.dataDir === undefined ? dataDirOf(cmd) : resolveDataDir(options.dataDir),
      });
    });
}
