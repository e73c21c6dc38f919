// A worker adapter from its configuration (an object, or a YAML / JSON file): which adapter, its settings, the handler's.
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { describeValue } from '../../runtime/errors.ts';
import { type AdapterHandlerOptions, type WorkerAdapter, WorkerConfigError } from './adapter.ts';
import { CliAdapter, type CliAdapterConfig } from './cli.ts';
import { HttpLlmAdapter, type HttpLlmConfig } from './http-llm.ts';

/** The adapters a configuration can name. */
export const ADAPTER_KINDS = ['cli', 'openai', 'ollama'] as const;
export type AdapterKind = (typeof ADAPTER_KINDS)[number];

/** Settings every adapter takes, besides its own. */
export interface CommonWorkerConfig {
  /** First-line marker by which an answer rejects a review stage (default `REJECT:`; null: never). */
  reject_marker?: string | null;
  /** Bytes of input artifact content handed to the adapter (default 262,144). */
  input_budget_bytes?: number;
}

export type WorkerAdapterConfig = (CliAdapterConfig | HttpLlmConfig) & CommonWorkerConfig;

/** A ready adapter with the options of the handler that runs it. */
export interface ConfiguredAdapter {
  adapter: WorkerAdapter;
  options: AdapterHandlerOptions;
}

/**
 * Builds the adapter a configuration names. `kind` (from the command line) fills in a missing
 * `adapter` field and must agree with a present one. API keys are read from `env`.
 */
export function createAdapter(
  raw: unknown,
  kind?: string,
  env: NodeJS.ProcessEnv = process.env,
): ConfiguredAdapter {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw))
    throw new WorkerConfigError(
      `a worker configuration expected an object, got ${raw === null ? 'null' : typeof raw}`,
    );
  const { reject_marker, input_budget_bytes, ...rest } = raw as Record<string, unknown>;
  const named = rest['adapter'] ?? kind;
  if (kind !== undefined && rest['adapter'] !== undefined && rest['adapter'] !== kind)
    throw new WorkerConfigError(
      `the configuration is for the ${JSON.stringify(rest['adapter'])} adapter, not ${JSON.stringify(kind)}`,
      'drop --adapter, or make it match the "adapter" field of the file',
    );
  if (typeof named !== 'string' || !(ADAPTER_KINDS as readonly string[]).includes(named))
    throw new WorkerConfigError(
      `"adapter" expected one of ${ADAPTER_KINDS.join(', ')}, got ${describeValue(named)}`,
      'name it with --adapter or an "adapter" field in the configuration',
    );
  const options: AdapterHandlerOptions = {};
  if (reject_marker !== undefined) {
    if (reject_marker !== null && (typeof reject_marker !== 'string' || reject_marker.trim() === ''))
      throw new WorkerConfigError('"reject_marker" expected a non-empty string, or null to turn it off');
    options.rejectMarker = reject_marker;
  }
  if (input_budget_bytes !== undefined) {
    if (
      typeof input_budget_bytes !== 'number' ||
      !Number.isInteger(input_budget_bytes) ||
      input_budget_bytes < 0
    )
      throw new WorkerConfigError('"input_budget_bytes" expected a non-negative integer');
    options.inputBudgetBytes = input_budget_bytes;
  }
  const config = { ...rest, adapter: named };
  const adapter = named === 'cli' ? new CliAdapter(config) : new HttpLlmAdapter(config, env);
  return { adapter, options };
}

/** Reads a worker configuration file: YAML (or JSON, which YAML reads too). */
export function readWorkerConfig(file: string): unknown {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new WorkerConfigError(
      `cannot read the worker configuration ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`,
      'check the path given to --config',
    );
  }
  try {
    return parseYaml(text) as unknown;
  } catch (err) {
    throw new WorkerConfigError(
      `the worker configuration ${file} is not valid YAML or JSON: ${(err as Error).message.split('\n')[0]}`,
    );
  }
}
