// CLI commands of worker adapters: `worker run` serves a role of a local DID with a coding agent or an LLM endpoint.
import { type Command, Option } from 'commander';
import type { ApiClient } from '../../bridge/api/client.ts';
import {
  ADAPTER_KINDS,
  type ConfiguredAdapter,
  createAdapter,
  readWorkerConfig,
} from '../../bridge/workers/config.ts';
import { killAllCommands } from '../../bridge/workers/process.ts';
import { AdapterWorker, type TaskEvent } from '../../bridge/workers/serve.ts';
import { AnxError } from '../errors.ts';
import { integerOption } from './args.ts';
import { printable } from './format.ts';

interface Helpers {
  client(cmd: Command): ApiClient;
  out(cmd: Command, json: unknown, text: () => string): void;
}

interface RunOptions {
  did: string;
  role: string;
  adapter?: string;
  config: string;
  poll: number;
  maxTasks?: number;
}

function configured(options: { adapter?: string; config: string }): ConfiguredAdapter {
  return createAdapter(readWorkerConfig(options.config), options.adapter);
}

function describe(e: TaskEvent): string {
  switch (e.state) {
    case 'started':
      return `started (stage ${e.stage}, attempt ${e.attempt})`;
    case 'delivered':
      return `delivered ${e.ref.key}@${e.ref.version} (${e.ref.size} bytes)`;
    case 'rejected':
      return `rejected: ${e.reason}`;
    case 'failed':
      return `failed${e.fatal ? ' (fatal)' : ''}: ${e.error}`;
    case 'stopped':
      return 'stopped unanswered';
    case 'left':
      return `left to ${e.holder ?? 'another worker'}: ${e.reason}`;
  }
}

function errorText(error: unknown): string {
  if (error instanceof AnxError) return `${error.code}: ${error.message}`;
  return error instanceof Error ? error.message : String(error);
}

/** One line of what the worker does: JSON lines with --json, plain lines on stderr otherwise. */
function logger(json: boolean) {
  return (event: Record<string, unknown>, text: string) => {
    if (json) process.stdout.write(`${JSON.stringify({ ts: Date.now(), ...event })}\n`);
    else process.stderr.write(`${printable(text)}\n`);
  };
}

/** Adds `worker run` and `worker check` to the `worker` command (creating it when absent). */
export function registerWorkerCommands(program: Command, h: Helpers): void {
  const worker =
    program.commands.find((c) => c.name() === 'worker') ??
    program.command('worker').description('workers of local identities');

  worker
    .command('run')
    .description(
      "serve ROLE as the daemon's local identity DID with a worker adapter: a command (a coding agent's non-interactive mode) or an LLM endpoint; runs until stopped",
    )
    .requiredOption('--did <did>', 'the local identity that works (and authors the artifacts)')
    .requiredOption('--role <role>', 'the role it serves')
    .addOption(
      new Option('--adapter <kind>', 'the adapter, when the file has no "adapter" field').choices(
        ADAPTER_KINDS,
      ),
    )
    .requiredOption('--config <file>', 'the adapter configuration (YAML or JSON; see docs/workers.md)')
    .option(
      '--poll <ms>',
      'how often to ask the daemon for new tasks',
      integerOption('--poll', 1, Number.MAX_SAFE_INTEGER, 'milliseconds'),
      500,
    )
    .option('--max-tasks <n>', 'stop after answering this many tasks', integerOption('--max-tasks', 1))
    .addHelpText(
      'after',
      `
The configuration is checked before anything runs. API keys are read from the environment variable
that "api_key_env" names, never from the file. Ctrl-C (SIGINT) or SIGTERM stops the worker: tasks in
progress are stopped unanswered (their commands get SIGTERM, then SIGKILL after "kill_grace_ms"), and
the daemon hands them out again; a second Ctrl-C kills the commands at once. The worker follows a
daemon that restarts, and says when it does not answer.

Examples:
  anx-runtime worker run --did <did> --role developer --config claude.yaml
  anx-runtime worker run --did <did> --role reviewer --adapter ollama --config ollama.yaml --max-tasks 1`,
    )
    .action(async (o: RunOptions, cmd: Command) => {
      const configuredAdapter = configured(o);
      const api = h.client(cmd);
      await api.get(`/v1/identities/${encodeURIComponent(o.did)}`);
      const log = logger(cmd.optsWithGlobals().json === true);
      const worker = new AdapterWorker(api, o.did, o.role, configuredAdapter, {
        pollMs: o.poll,
        ...(o.maxTasks === undefined ? {} : { maxTasks: o.maxTasks }),
        onTask: (e) => log({ event: 'task', ...e }, `task ${e.task_id}: ${describe(e)}`),
        onConnection: (up, error) =>
          up
            ? log({ event: 'daemon', state: 'reachable' }, 'the daemon answers again')
            : log(
                { event: 'daemon', state: 'unreachable', error: errorText(error) },
                `the daemon does not answer (${errorText(error)}); waiting for it`,
              ),
      });
      // The first signal stops the work gracefully (SIGTERM, then SIGKILL after the grace);
      // a second one kills the agents' commands at once and exits.
      let signals = 0;
      const onSignal = () => {
        signals++;
        if (signals === 1) {
          void worker.stop();
          return;
        }
        killAllCommands();
        log({ event: 'killed', answered: worker.count }, 'killed the commands still running');
        process.exit(130);
      };
      process.on('SIGINT', onSignal);
      process.on('SIGTERM', onSignal);
      const kind = configuredAdapter.adapter.kind;
      log(
        { event: 'serving', did: o.did, role: o.role, adapter: kind },
        `serving ${o.role} as ${o.did} with the ${kind} adapter (Ctrl-C to stop)`,
      );
      worker.start();
      await worker.done;
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      log({ event: 'stopped', answered: worker.count }, `stopped after answering ${worker.count} task(s)`);
    });

  worker
    .command('check')
    .description('check a worker adapter configuration without running anything')
    .addOption(
      new Option('--adapter <kind>', 'the adapter, when the file has no "adapter" field').choices(
        ADAPTER_KINDS,
      ),
    )
    .requiredOption('--config <file>', 'the adapter configuration (YAML or JSON)')
    .action((o: { adapter?: string; config: string }, cmd: Command) => {
      const { adapter } = configured(o);
      h.out(
        cmd,
        { ok: true, adapter: adapter.kind },
        () => `${o.config}: a valid ${adapter.kind} worker configuration`,
      );
    });
}
