// The CLI adapter on its own: environment allow-list, argv without a shell, opted-in shell quoting, process groups, output and config errors.
import { chmodSync, existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { AdapterOutcome } from '../../bridge/workers/adapter.ts';
import { CliAdapter, checkCliConfig } from '../../bridge/workers/cli.ts';
import { isAnxError } from '../../runtime/errors.ts';
import { waitFor } from '../helpers/daemon.ts';
import { cleanupTempDirs, tempDir } from '../helpers/tmp.ts';
import { AGENT, processGone } from './agent.ts';
import { emittedText, testInput } from './input.ts';

const NODE = process.execPath;
afterEach(() => {
  delete process.env['ANX_TEST_SECRET_TOKEN'];
  delete process.env['ANX_TEST_OTHER'];
  cleanupTempDirs();
});

function delivered(outcome: AdapterOutcome): string {
  if (outcome.status !== 'delivered') throw new Error(`expected a delivery, got ${JSON.stringify(outcome)}`);
  return Buffer.from(outcome.value).toString('utf8');
}

function adapter(config: Record<string, unknown>): CliAdapter {
  return new CliAdapter({ adapter: 'cli', workdir_root: join(tempDir(), 'work'), ...config });
}

describe('environment', () => {
  it("does not pass the host's variables to the command unless they are allow-listed", async () => {
    process.env['ANX_TEST_SECRET_TOKEN'] = 'secret-3e1f';
    process.env['ANX_TEST_OTHER'] = 'other-9a0c';
    const run = async (extra: Record<string, unknown>) =>
      JSON.parse(
        delivered(await adapter({ command: [NODE, AGENT, 'env'], ...extra }).run(testInput())),
      ) as Record<string, string>;
    const plain = await run({});
    expect(plain['ANX_TEST_SECRET_TOKEN']).toBeUndefined();
    expect(plain['ANX_TEST_OTHER']).toBeUndefined();
    expect(JSON.stringify(plain)).not.toContain('secret-3e1f');
    expect(plain['PATH']).toBe(process.env['PATH']);
    expect(plain['ANX_TASK_ID']).toBe('run-1/design/1');
    expect(plain['ANX_ROLE']).toBe('architect');
    expect(plain['ANX_CONTEXT_FILE']).toMatch(/\.anx\/context\.json$/);

    const named = await run({ env_allow: ['ANX_TEST_SECRET_TOKEN'] });
    expect(named['ANX_TEST_SECRET_TOKEN']).toBe('secret-3e1f');
    expect(named['ANX_TEST_OTHER']).toBeUndefined();

    const prefix = await run({ env_allow: ['ANX_TEST_*'], env: { FIXED: 'v1' } });
    expect(prefix['ANX_TEST_SECRET_TOKEN']).toBe('secret-3e1f');
    expect(prefix['ANX_TEST_OTHER']).toBe('other-9a0c');
    expect(prefix['FIXED']).toBe('v1');
  });
});

describe('command template', () => {
  const hostile = (dir: string) =>
    `x $(touch ${dir}/pwned1); touch ${dir}/pwned2 \`touch ${dir}/pwned3\` '"; exit 1`;

  it('passes placeholders as single argv elements, never through a shell', async () => {
    const dir = tempDir();
    const input = testInput({ objective: hostile(dir) });
    const out = await adapter({
      command: [NODE, AGENT, 'argv', '{prompt}', '--file={context_file}', '{{literal}}', '{stage}-{attempt}'],
    }).run(input);
    const argv = JSON.parse(delivered(out)) as string[];
    expect(argv).toHaveLength(4);
    expect(argv[0]).toBe(input.prompt);
    expect(argv[0]).toContain(hostile(dir));
    expect(argv[1]).toMatch(/^--file=.*context\.json$/);
    expect(argv[2]).toBe('{literal}');
    expect(argv[3]).toBe('design-1');
    for (const f of ['pwned1', 'pwned2', 'pwned3']) expect(existsSync(join(dir, f))).toBe(false);
  });

  it('with shell: true, quotes every placeholder so its value stays one word', async () => {
    const dir = tempDir();
    const input = testInput({ objective: hostile(dir) });
    const out = await adapter({
      shell: true,
      command: 'printf "%s" {prompt} | wc -c; printf "%s" {prompt}',
    }).run(input);
    const text = delivered(out);
    const [count, ...rest] = text.split('\n');
    expect(Number(count?.trim())).toBe(Buffer.byteLength(input.prompt));
    expect(rest.join('\n')).toBe(input.prompt);
    for (const f of ['pwned1', 'pwned2', 'pwned3']) expect(existsSync(join(dir, f))).toBe(false);
  });

  it('refuses unknown placeholders, unknown settings and unsafe shapes with a typed error', () => {
    const bad: Array<[Record<string, unknown>, RegExp]> = [
      [{ command: ['agent', '{promt}'] }, /unknown placeholder \{promt\}/],
      [{ command: 'claude -p {prompt}' }, /argv array/],
      [{ command: ['a'], shell: true }, /one command line/],
      [{ command: [] }, /argv array/],
      [{ command: ['a'], output: { file: '../escape.md' } }, /inside the working directory/],
      [{ command: ['a'], output: { file: '/etc/passwd' } }, /inside the working directory/],
      [{ command: ['a'], env_allow: ['BAD-NAME'] }, /env_allow/],
      [{ command: ['a'], env: { K: 1 } }, /"env"/],
      [{ command: ['a'], timeout_ms: 0 }, /timeout_ms/],
      [{ command: ['a'], stdin: 'file' }, /"stdin" expected one of context, prompt, none/],
      [{ command: ['a'], comand: ['b'] }, /no setting "comand"/],
      // Where a single-quoted value would not stay one plain word, agent text could run as code.
      [{ command: 'printf %s "{prompt}"', shell: true }, /\{prompt\} inside double quotes/],
      [{ command: "printf %s '{prompt}'", shell: true }, /\{prompt\} inside single quotes/],
      [{ command: 'echo "a $(cat {prompt_file})"', shell: true }, /\{prompt_file\} inside double quotes/],
      [{ command: 'echo \\{stage}', shell: true }, /\{stage\} right after a backslash/],
      [{ command: 'cat <<EOF\n{prompt}\nEOF', shell: true }, /\{prompt\} after a here-document/],
    ];
    // Bare placeholders, literal braces and quotes elsewhere on the line are fine.
    checkCliConfig({
      adapter: 'cli',
      shell: true,
      command: `printf '%s\\n' "{{x}}" {prompt} 'it''s' > {output_file}`,
    });
    for (const [config, message] of bad) {
      let caught: unknown;
      try {
        checkCliConfig({ adapter: 'cli', ...config });
      } catch (err) {
        caught = err;
      }
      expect(isAnxError(caught, 'ANX_WORKER_CONFIG_INVALID'), JSON.stringify(config)).toBe(true);
      expect((caught as Error).message).toMatch(message);
    }
  });
});

describe('process', () => {
  it('kills the whole process group on timeout and says it timed out', async () => {
    const dir = tempDir();
    const state = join(dir, 'pids');
    const out = await adapter({
      command: [NODE, AGENT, 'hang', state],
      timeout_ms: 1500,
      kill_grace_ms: 300,
    }).run(testInput());
    expect(out).toMatchObject({ status: 'failed', reason: 'timeout' });
    expect((out as { error: string }).error).toMatch(/timed out after 1500 ms: thinking forever/);
    const pids = readFileSync(state, 'utf8').split(' ').map(Number);
    expect(pids).toHaveLength(2);
    for (const pid of pids) expect(processGone(pid)).toBe(true);
  });

  it('stops the process group when the task is aborted', async () => {
    const dir = tempDir();
    const state = join(dir, 'pids');
    const input = testInput();
    const running = adapter({ command: [NODE, AGENT, 'hang', state], kill_grace_ms: 300 }).run(input);
    const deadline = Date.now() + 30_000;
    while (!existsSync(state) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    input.controller.abort();
    const out = await running;
    expect(out.status).toBe('failed');
    // SIGKILL is delivered asynchronously: under load the grandchild may take a moment to die.
    const pids = readFileSync(state, 'utf8').split(' ').map(Number);
    expect(pids).toHaveLength(2);
    await waitFor(() => pids.every(processGone), 10_000, 'the whole process group to be gone');
  });

  it('fails with the tail of stderr, not all of it', async () => {
    const script = "process.stderr.write('x'.repeat(20000) + '\\nLAST LINE\\n'); process.exit(7)";
    const out = await adapter({ command: [NODE, '-e', script] }).run(testInput());
    expect(out).toMatchObject({ status: 'failed', reason: 'exit' });
    const error = (out as { error: string }).error;
    expect(error).toMatch(/exited with 7: …x+\nLAST LINE$/);
    expect(error.length).toBeLessThan(2200);
  });

  it('fails saying the program cannot be run when it does not exist', async () => {
    const out = await adapter({ command: ['/nonexistent/agent-binary'] }).run(testInput());
    expect(out).toMatchObject({ status: 'failed', reason: 'spawn' });
    expect((out as { error: string }).error).toMatch(/cannot run \/nonexistent\/agent-binary: .*ENOENT/);
  });

  it('rejects with the output as the reason on the reject exit status', async () => {
    const out = await adapter({
      command: [NODE, '-e', "process.stdout.write('needs tests'); process.exit(12)"],
      reject_exit_code: 12,
    }).run(testInput());
    expect(out).toEqual({ status: 'rejected', reason: 'needs tests' });
  });
});

describe('input and output', () => {
  it('hands the snapshot on stdin by default, the prompt or nothing when asked, and the inputs as files', async () => {
    const cat = [NODE, '-e', "process.stdout.write(require('fs').readFileSync(0, 'utf8'))"];
    const input = testInput();
    expect(JSON.parse(delivered(await adapter({ command: cat }).run(input)))).toEqual(input.snapshot);
    expect(delivered(await adapter({ command: cat, stdin: 'prompt' }).run(input))).toBe(input.prompt);
    expect(delivered(await adapter({ command: cat, stdin: 'none' }).run(input))).toBe('');
    const readInput = [
      NODE,
      '-e',
      "process.stdout.write(require('fs').readFileSync(process.argv[1] + '/requirements/req.md', 'utf8'))",
      '{inputs_dir}',
    ];
    expect(delivered(await adapter({ command: readInput, stdin: 'none' }).run(input))).toBe(
      'REQ: lock the form after five failures\n',
    );
  });

  it('delivers a named output file, and fails when the command does not write it', async () => {
    const write = [
      NODE,
      '-e',
      "require('fs').writeFileSync(process.argv[1], '# From the file\\n')",
      '{output_file}',
    ];
    const out = await adapter({ command: write, output: { file: 'result/out.md' } }).run(testInput());
    expect(delivered(out)).toBe('# From the file\n');
    expect(out).toMatchObject({ summary: '# From the file' });
    const none = await adapter({ command: [NODE, '-e', ''], output: { file: 'out.md' } }).run(testInput());
    expect(none).toMatchObject({ status: 'failed', reason: 'output' });
    expect((none as { error: string }).error).toMatch(/exited with 0 but wrote no out\.md/);
  });

  it('streams stderr as reasoning and, when asked, stdout as message', async () => {
    const input = testInput();
    const out = await adapter({ command: [NODE, AGENT, 'echo'], stream: 'both' }).run(input);
    expect(emittedText(input, 'reasoning')).toBe('thinking about design\n');
    expect(emittedText(input, 'message')).toBe(delivered(out));
    expect(
      input.emitted.filter((p) => p.kind === 'status').map((p) => (p.payload as { state: string }).state),
    ).toEqual(['started', 'exited']);
  });

  it('removes the working directory after a delivery and keeps it after a failure (by default)', async () => {
    const root = join(tempDir(), 'work');
    const ok = testInput({ runId: 'run-ok' });
    await new CliAdapter({ adapter: 'cli', command: [NODE, AGENT, 'echo'], workdir_root: root }).run(ok);
    expect(existsSync(join(root, 'run-ok', 'design-1'))).toBe(false);
    const bad = testInput({ runId: 'run-bad' });
    await new CliAdapter({ adapter: 'cli', command: [NODE, AGENT, 'fail'], workdir_root: root }).run(bad);
    expect(readFileSync(join(root, 'run-bad', 'design-1', '.anx', 'prompt.md'), 'utf8')).toBe(bad.prompt);
    expect(existsSync(join(root, 'run-bad', 'design-1', 'inputs', 'requirements', 'req.md'))).toBe(true);
  });
});

describe('working directories', () => {
  it("keeps a task's files private to the user, and refuses a default root that is not", async () => {
    const root = join(tempDir(), 'work');
    const bad = testInput({ runId: 'run-private' });
    await new CliAdapter({ adapter: 'cli', command: [NODE, AGENT, 'fail'], workdir_root: root }).run(bad);
    const task = join(root, 'run-private', 'design-1');
    for (const path of [task, join(task, '.anx'), join(task, 'inputs', 'requirements')])
      expect(statSync(path).mode & 0o077, path).toBe(0);
    for (const path of [
      join(task, '.anx', 'prompt.md'),
      join(task, '.anx', 'context.json'),
      join(task, 'inputs', 'requirements', 'req.md'),
    ])
      expect(statSync(path).mode & 0o077, path).toBe(0);

    const tmp = tempDir();
    const before = process.env['TMPDIR'];
    process.env['TMPDIR'] = tmp;
    try {
      const shared = join(tmp, `anx-workers-${process.getuid?.()}`);
      mkdirSync(shared, { mode: 0o755 });
      chmodSync(shared, 0o755);
      await expect(
        new CliAdapter({ adapter: 'cli', command: [NODE, AGENT, 'echo'] }).run(testInput()),
      ).rejects.toThrow(/not a private directory of this user/);
      chmodSync(shared, 0o700);
      const out = await new CliAdapter({ adapter: 'cli', command: [NODE, AGENT, 'echo'] }).run(testInput());
      expect(out.status).toBe('delivered');
    } finally {
      if (before === undefined) delete process.env['TMPDIR'];
      else process.env['TMPDIR'] = before;
    }
  });
});

describe('long prompts', () => {
  it('says how to pass a prompt too long for one argument', async () => {
    const input = testInput({ inputText: 'y'.repeat(200_000) });
    const out = await adapter({ command: [NODE, AGENT, 'argv', '{prompt}'] }).run(input);
    expect(out).toMatchObject({ status: 'failed', reason: 'spawn' });
    expect((out as { error: string }).error).toMatch(/E2BIG.*\{prompt_file\}/);
    const viaFile = await adapter({
      command: [
        NODE,
        '-e',
        "process.stdout.write(String(require('fs').statSync(process.argv[1]).size))",
        '{prompt_file}',
      ],
    }).run(input);
    expect(Number(delivered(viaFile))).toBe(Buffer.byteLength(input.prompt));
  });
});

describe('retry safety', () => {
  it('starts a task handed out again from a clean working directory', async () => {
    const root = join(tempDir(), 'work');
    const script =
      "const fs = require('fs'); const seen = fs.existsSync('leftover'); fs.writeFileSync('leftover', 'x'); process.stdout.write(String(seen)); process.exit(seen ? 0 : 5)";
    const cli = new CliAdapter({
      adapter: 'cli',
      command: [NODE, '-e', script],
      workdir_root: root,
      keep_workdir: 'always',
    });
    const input = testInput();
    expect(await cli.run(input)).toMatchObject({ status: 'failed', reason: 'exit' });
    expect(existsSync(join(root, 'run-1', 'design-1', 'leftover'))).toBe(true);
    // The same task again (a crash, a restarted worker): the leftover of the first run is gone.
    expect(await cli.run(input)).toMatchObject({ status: 'failed', reason: 'exit' });
  });
});
