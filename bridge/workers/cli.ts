// The CLI worker adapter: runs a command template (a coding agent's non-interactive mode, a script) once per stage task.
import { lstat, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, isAbsolute, join, normalize, resolve } from 'node:path';
import type { StageTask } from '../../actors/worker-runtime.ts';
import { describeValue } from '../../runtime/errors.ts';
import {
  type AdapterInput,
  type AdapterOutcome,
  firstLine,
  type WorkerAdapter,
  WorkerConfigError,
} from './adapter.ts';
import { MAX_TIMER_MS, type ProcessResult, runProcess, STDOUT_MAX, stderrTail } from './process.ts';

/** Configuration of a CLI worker (the `cli` adapter). */
export interface CliAdapterConfig {
  adapter: 'cli';
  /**
   * The command: an argv array run without a shell, each element a template; or, with `shell: true`,
   * one string run by `/bin/sh -c` whose placeholders are replaced by shell-quoted values.
   */
  command: string[] | string;
  shell?: boolean;
  /** What the command reads on stdin: the snapshot as JSON (default), the rendered prompt, or nothing. */
  stdin?: 'context' | 'prompt' | 'none';
  /** Where the artifact comes from: the command's stdout (default) or a file it writes in its workdir. */
  output?: 'stdout' | { file: string };
  /** Directory under which each task gets its own working directory (default `<os tmp>/anx-workers-<uid>`, private). */
  workdir_root?: string;
  /** Run the command here instead of in the task's working directory (e.g. a repository checkout). */
  cwd?: string;
  /** Keep the task's working directory afterwards: `always`, `on_failure` (default) or `never`. */
  keep_workdir?: 'always' | 'on_failure' | 'never';
  /** Host environment variables passed on, by name or `PREFIX_*` (besides PATH, HOME, LANG, LC_ALL, TZ, TMPDIR, USER). */
  env_allow?: string[];
  /** Variables set for the command (never logged). */
  env?: Record<string, string>;
  /** Killed (its whole process group) and failed after this long (default 30 minutes). */
  timeout_ms?: number;
  /** Between SIGTERM and SIGKILL when stopping the command (default 2,000 ms). */
  kill_grace_ms?: number;
  /** Exit status by which a review stage's command rejects; its output is the reason (default 10). */
  reject_exit_code?: number;
  /** Which of the command's streams become progress events: stderr → reasoning, stdout → message. */
  stream?: 'stderr' | 'stdout' | 'both' | 'none';
}

/** Variables every command gets from the host environment: none of them holds a credential. */
export const BASE_ENV = ['PATH', 'HOME', 'LANG', 'LC_ALL', 'TZ', 'TMPDIR', 'USER'] as const;

/** The placeholders a command template may use. */
export const PLACEHOLDERS = [
  'prompt',
  'prompt_file',
  'context_file',
  'inputs_dir',
  'workdir',
  'output_file',
  'run_id',
  'task_id',
  'stage',
  'role',
  'attempt',
] as const;
type Placeholder = (typeof PLACEHOLDERS)[number];

function fail(reason: string, error: string): AdapterOutcome {
  return { status: 'failed', reason, error };
}

/** Checks a CLI worker's configuration; throws `WorkerConfigError` saying what is wrong. */
export function checkCliConfig(raw: unknown): CliAdapterConfig {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw))
    throw new WorkerConfigError('the cli adapter expected a configuration object with "command"');
  const c = raw as Record<string, unknown>;
  const known = new Set([
    'adapter',
    'command',
    'shell',
    'stdin',
    'output',
    'workdir_root',
    'cwd',
    'keep_workdir',
    'env_allow',
    'env',
    'timeout_ms',
    'kill_grace_ms',
    'reject_exit_code',
    'stream',
  ]);
  for (const k of Object.keys(c))
    if (!known.has(k)) throw new WorkerConfigError(`the cli adapter has no setting ${JSON.stringify(k)}`);
  const shell = c['shell'] === undefined ? false : c['shell'];
  if (typeof shell !== 'boolean') throw new WorkerConfigError('"shell" expected true or false');
  const command = c['command'];
  if (shell) {
    if (typeof command !== 'string' || command.trim() === '')
      throw new WorkerConfigError(
        `"command" expected one command line (a string) with "shell": true, got ${describeValue(command)}`,
      );
    checkTemplate(command);
    checkShellPlaces(command);
  } else {
    if (
      !Array.isArray(command) ||
      command.length === 0 ||
      !command.every((a) => typeof a === 'string') ||
      command[0] === ''
    )
      throw new WorkerConfigError(
        `"command" expected an argv array like ["claude", "-p", "{prompt}"], got ${describeValue(command)}`,
        'the arguments are passed to the program as they are, without a shell; set "shell": true and give one string to use shell syntax',
      );
    for (const a of command) checkTemplate(a);
  }
  const out: CliAdapterConfig = { adapter: 'cli', command: command as string[] | string, shell };
  const oneOf = <T extends string>(key: string, values: readonly T[]): T | undefined => {
    const v = c[key];
    if (v === undefined) return undefined;
    if (typeof v !== 'string' || !(values as readonly string[]).includes(v))
      throw new WorkerConfigError(`"${key}" expected one of ${values.join(', ')}, got ${describeValue(v)}`);
    return v as T;
  };
  const stdin = oneOf('stdin', ['context', 'prompt', 'none'] as const);
  if (stdin !== undefined) out.stdin = stdin;
  const keep = oneOf('keep_workdir', ['always', 'on_failure', 'never'] as const);
  if (keep !== undefined) out.keep_workdir = keep;
  const stream = oneOf('stream', ['stderr', 'stdout', 'both', 'none'] as const);
  if (stream !== undefined) out.stream = stream;
  const output = c['output'];
  if (output !== undefined && output !== 'stdout') {
    const file = (output as { file?: unknown } | null)?.file;
    if (typeof file !== 'string' || file === '' || isAbsolute(file) || normalize(file).startsWith('..'))
      throw new WorkerConfigError(
        `"output" expected "stdout" or { "file": "<path inside the working directory>" }, got ${describeValue(output)}`,
      );
    out.output = { file: normalize(file) };
  } else if (output === 'stdout') out.output = 'stdout';
  for (const key of ['workdir_root', 'cwd'] as const) {
    const v = c[key];
    if (v === undefined) continue;
    if (typeof v !== 'string' || v === '') throw new WorkerConfigError(`"${key}" expected a directory path`);
    out[key] = resolve(v);
  }
  const envAllow = c['env_allow'];
  if (envAllow !== undefined) {
    if (
      !Array.isArray(envAllow) ||
      !envAllow.every((n) => typeof n === 'string' && /^[A-Za-z_][A-Za-z0-9_]*\*?$/.test(n))
    )
      throw new WorkerConfigError(
        `"env_allow" expected variable names or PREFIX_* patterns, got ${describeValue(envAllow)}`,
      );
    out.env_allow = envAllow as string[];
  }
  const env = c['env'];
  if (env !== undefined) {
    if (
      env === null ||
      typeof env !== 'object' ||
      Array.isArray(env) ||
      !Object.entries(env).every(([k, v]) => /^[A-Za-z_][A-Za-z0-9_]*$/.test(k) && typeof v === 'string')
    )
      throw new WorkerConfigError('"env" expected an object of variable names to string values');
    out.env = { ...(env as Record<string, string>) };
  }
  for (const key of ['timeout_ms', 'kill_grace_ms'] as const) {
    const v = c[key];
    if (v === undefined) continue;
    if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0 || v > MAX_TIMER_MS)
      throw new WorkerConfigError(
        `"${key}" expected a positive integer of milliseconds, at most ${MAX_TIMER_MS} (about 24 days), got ${describeValue(v)}`,
      );
    out[key] = v;
  }
  const rejectCode = c['reject_exit_code'];
  if (rejectCode !== undefined) {
    if (typeof rejectCode !== 'number' || !Number.isInteger(rejectCode) || rejectCode < 1 || rejectCode > 255)
      throw new WorkerConfigError(`"reject_exit_code" expected an exit status from 1 to 255`);
    out.reject_exit_code = rejectCode;
  }
  return out;
}

/** Throws unless every `{name}` in `template` is a known placeholder (`{{` and `}}` are literal braces). */
function checkTemplate(template: string): void {
  for (const m of template.matchAll(/\{\{|\}\}|\{([^{}]*)\}/g)) {
    if (m[1] === undefined) continue;
    if (!(PLACEHOLDERS as readonly string[]).includes(m[1]))
      throw new WorkerConfigError(
        `"command" uses the unknown placeholder {${m[1]}}`,
        `placeholders are ${PLACEHOLDERS.map((p) => `{${p}}`).join(', ')}; write {{ and }} for literal braces`,
      );
  }
}

/**
 * Throws when a placeholder of a shell command line stands where its single-quoted value would not
 * stay one plain word: inside '…' or "…", right after a backslash, or in a here-document (`<<`),
 * where `$(…)` in an agent-written value would run.
 */
function checkShellPlaces(template: string): void {
  const refuse = (name: string, where: string) => {
    throw new WorkerConfigError(
      `"command" has {${name}} ${where}: its value could run as shell code there`,
      `write placeholders bare, e.g. printf %s {prompt}; they are single-quoted for you`,
    );
  };
  /** The name of the placeholder starting at `i` (not a literal `{{`), if one does. */
  const placeholderAt = (i: number): string | undefined =>
    template.startsWith('{{', i) ? undefined : /^\{([^{}]*)\}/.exec(template.slice(i))?.[1];
  let quote: "'" | '"' | undefined;
  let heredoc = false;
  for (let i = 0; i < template.length; i++) {
    const ch = template[i];
    if (template.startsWith('{{', i) || template.startsWith('}}', i)) {
      i++;
      continue;
    }
    const name = ch === '{' ? placeholderAt(i) : undefined;
    if (name !== undefined) {
      if (quote !== undefined) refuse(name, `inside ${quote === "'" ? 'single' : 'double'} quotes`);
      if (heredoc) refuse(name, 'after a here-document (<<)');
      i += name.length + 1;
      continue;
    }
    if (quote === "'") {
      if (ch === "'") quote = undefined;
    } else if (ch === '\\') {
      const escaped = placeholderAt(i + 1);
      if (escaped !== undefined) refuse(escaped, 'right after a backslash');
      i++;
    } else if (quote === '"') {
      if (ch === '"') quote = undefined;
    } else if (ch === "'" || ch === '"') {
      quote = ch;
    } else if (ch === '<' && template[i + 1] === '<') {
      heredoc = true;
    }
  }
}

function fillTemplate(
  template: string,
  values: Record<Placeholder, string>,
  quote: (v: string) => string,
): string {
  return template.replace(/\{\{|\}\}|\{([^{}]*)\}/g, (all, name: string | undefined) =>
    name === undefined ? (all[0] as string) : quote(values[name as Placeholder]),
  );
}

/** POSIX shell single quoting. */
function shellQuote(v: string): string {
  return `'${v.replaceAll("'", `'\\''`)}'`;
}

/**
 * `<os tmp>/anx-workers-<uid>`, created mode 0700; refused when it exists but is not a directory of
 * this user's that only this user can open (another user could have made it first, to read or
 * replace the tasks' files).
 */
async function defaultWorkdirRoot(): Promise<string> {
  const uid = process.getuid?.();
  const root = join(tmpdir(), uid === undefined ? 'anx-workers' : `anx-workers-${uid}`);
  await mkdir(root, { recursive: true, mode: 0o700 });
  const st = await lstat(root);
  if (!st.isDirectory() || (uid !== undefined && st.uid !== uid) || (st.mode & 0o077) !== 0)
    throw new WorkerConfigError(
      `the default working directory root ${root} is not a private directory of this user (mode ${(st.mode & 0o777).toString(8)}, owner ${st.uid})`,
      'remove it, or set "workdir_root" to a directory only you can open',
    );
  return root;
}

/** A path segment safe on any file system. */
function safeSegment(s: string): string {
  const cleaned = s.replace(/[^A-Za-z0-9._-]/g, '_');
  return cleaned === '' || cleaned === '.' || cleaned === '..' ? '_' : cleaned;
}

/** The task's working directory under `root`: one per run and task (stage, attempt, shard). */
export function taskWorkdir(root: string, task: StageTask): string {
  const rest = task.task_id.startsWith(`${task.run_id}/`)
    ? task.task_id.slice(task.run_id.length + 1)
    : task.task_id;
  return join(root, safeSegment(task.run_id), safeSegment(rest.replaceAll('/', '-')));
}

/** The environment of the command: the base names and the allow-list from the host, then `env`, then ANX_*. */
export function childEnv(
  config: Pick<CliAdapterConfig, 'env_allow' | 'env'>,
  extra: Record<string, string>,
  host: NodeJS.ProcessEnv = process.env,
): Record<string, string> {
  const env: Record<string, string> = {};
  const exact = new Set<string>(BASE_ENV);
  const prefixes: string[] = [];
  for (const n of config.env_allow ?? []) {
    if (n.endsWith('*')) prefixes.push(n.slice(0, -1));
    else exact.add(n);
  }
  for (const [name, value] of Object.entries(host)) {
    if (value === undefined) continue;
    if (exact.has(name) || prefixes.some((p) => name.startsWith(p))) env[name] = value;
  }
  return Object.assign(env, config.env ?? {}, extra);
}

/** Runs tasks as a local command: argv (or an opted-in shell line) per task in its own working directory. */
export class CliAdapter implements WorkerAdapter {
  readonly kind = 'cli';
  readonly config: CliAdapterConfig;

  constructor(config: unknown) {
    this.config = checkCliConfig(config);
  }

  async run(input: AdapterInput): Promise<AdapterOutcome> {
    const c = this.config;
    const { task } = input;
    const root = c.workdir_root ?? (await defaultWorkdirRoot());
    const workdir = taskWorkdir(root, task);
    // A task handed again after a crash starts from a clean directory.
    await rm(workdir, { recursive: true, force: true });
    const files = {
      context: join(workdir, '.anx', 'context.json'),
      prompt: join(workdir, '.anx', 'prompt.md'),
      inputs: join(workdir, 'inputs'),
      output: join(workdir, typeof c.output === 'object' ? c.output.file : join('.anx', 'output')),
    };
    // The task's files (its inputs, the snapshot, the prompt) are the user's alone.
    await mkdir(join(workdir, '.anx'), { recursive: true, mode: 0o700 });
    await mkdir(files.inputs, { recursive: true, mode: 0o700 });
    const contextJson = JSON.stringify(input.snapshot, null, 2);
    await writeFile(files.context, contextJson, { mode: 0o600 });
    await writeFile(files.prompt, input.prompt, { mode: 0o600 });
    for (const artifact of input.inputs) {
      const path = join(files.inputs, ...artifact.ref.key.split('/').map(safeSegment));
      await mkdir(dirname(path), { recursive: true, mode: 0o700 });
      await writeFile(path, artifact.content, { mode: 0o600 });
    }
    await mkdir(dirname(files.output), { recursive: true, mode: 0o700 });
    const values: Record<Placeholder, string> = {
      prompt: input.prompt,
      prompt_file: files.prompt,
      context_file: files.context,
      inputs_dir: files.inputs,
      workdir,
      output_file: files.output,
      run_id: task.run_id,
      task_id: task.task_id,
      stage: task.stage,
      role: task.role,
      attempt: String(task.attempt),
    };
    const env = childEnv(c, {
      ANX_RUN_ID: task.run_id,
      ANX_TASK_ID: task.task_id,
      ANX_STAGE: task.stage,
      ANX_ROLE: task.role,
      ANX_ATTEMPT: String(task.attempt),
      ANX_WORKER_DID: task.did,
      ANX_WORKDIR: workdir,
      ANX_CONTEXT_FILE: files.context,
      ANX_PROMPT_FILE: files.prompt,
      ANX_INPUTS_DIR: files.inputs,
      ANX_OUTPUT_FILE: files.output,
    });
    const argv = c.shell
      ? ['/bin/sh', '-c', fillTemplate(c.command as string, values, shellQuote)]
      : (c.command as string[]).map((a) => fillTemplate(a, values, (v) => v));
    const stdin = c.stdin ?? 'context';
    const started = Date.now();
    input.emit({ kind: 'status', payload: { adapter: 'cli', state: 'started', workdir } });
    const result = await this.spawn(
      argv,
      { cwd: c.cwd ?? workdir, env },
      stdin === 'context' ? contextJson : stdin === 'prompt' ? input.prompt : undefined,
      input,
    );
    input.emit({
      kind: 'status',
      payload: {
        adapter: 'cli',
        state: 'exited',
        code: result.code,
        signal: result.signal,
        timed_out: result.timedOut,
        duration_ms: Date.now() - started,
      },
    });
    const outcome = await this.outcome(result, argv[0] as string, files.output);
    const keep = c.keep_workdir ?? 'on_failure';
    if (keep === 'never' || (keep === 'on_failure' && outcome.status !== 'failed'))
      await rm(workdir, { recursive: true, force: true }).catch(() => {});
    return outcome;
  }

  private async outcome(r: ProcessResult, program: string, outputFile: string): Promise<AdapterOutcome> {
    const c = this.config;
    const name = c.shell ? 'the shell command' : program;
    if (r.spawnError !== undefined)
      return fail(
        'spawn',
        `cannot run ${name}: ${r.spawnError}${
          r.spawnError.includes('E2BIG')
            ? ' (the arguments are too long: pass the prompt as {prompt_file} or with "stdin": "prompt")'
            : ''
        }`,
      );
    if (r.timedOut)
      return fail(
        'timeout',
        `${name} timed out after ${c.timeout_ms ?? 1_800_000} ms${stderrTail(r.stderr)}`,
      );
    if (r.tooLarge) return fail('output', `${name} wrote more than ${STDOUT_MAX} bytes to stdout`);
    const output = async (): Promise<Buffer | undefined> => {
      if (typeof c.output !== 'object') return r.stdout;
      try {
        return await readFile(outputFile);
      } catch {
        return undefined;
      }
    };
    if (r.code === 0) {
      const value = await output();
      if (value === undefined)
        return fail('output', `${name} exited with 0 but wrote no ${(c.output as { file: string }).file}`);
      return { status: 'delivered', value, summary: firstLine(value.toString('utf8')) };
    }
    if (r.code === (c.reject_exit_code ?? 10)) {
      const reason = ((await output())?.toString('utf8').trim() || r.stderr.trim()).slice(0, 2000);
      return { status: 'rejected', reason: reason || 'rejected' };
    }
    const how = r.code === null ? `was killed by ${r.signal}` : `exited with ${r.code}`;
    return fail('exit', `${name} ${how}${stderrTail(r.stderr)}`);
  }

  private spawn(
    argv: string[],
    options: { cwd: string; env: Record<string, string> },
    stdinText: string | undefined,
    input: AdapterInput,
  ): Promise<ProcessResult> {
    const c = this.config;
    const stream = c.stream ?? 'stderr';
    const decoderOut = new TextDecoder();
    const decoderErr = new TextDecoder();
    return runProcess({
      argv,
      ...options,
      ...(stdinText === undefined ? {} : { stdin: stdinText }),
      timeoutMs: c.timeout_ms ?? 30 * 60_000,
      graceMs: c.kill_grace_ms ?? 2000,
      signal: input.signal,
      onStdout: (d) => {
        if (stream === 'stdout' || stream === 'both')
          input.emit({ kind: 'message', payload: { text: decoderOut.decode(d, { stream: true }) } });
      },
      onStderr: (d) => {
        if (stream === 'stderr' || stream === 'both')
          input.emit({ kind: 'reasoning', payload: { text: decoderErr.decode(d, { stream: true }) } });
      },
    });
  }
}
