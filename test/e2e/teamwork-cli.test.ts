// Teamwork from the outside: a worker in another process over the local API, and the CLI's vault, playbook and run commands.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { RemoteWorker } from '../../bridge/api/worker-client.ts';
import type { ContextSnapshot } from '../../machines/playbook/context.ts';
import {
  type CliResult,
  type DaemonProcess,
  killHard,
  runCli,
  startDaemonProcess,
  waitFor,
} from '../helpers/daemon.ts';
import { cleanupTempDirs, tempDir } from '../helpers/tmp.ts';

let daemon: DaemonProcess;
let dataDir: string;
let owner: string;
let worker: string;
let stranger: string;

const cli = (...args: string[]): Promise<CliResult> => runCli(dataDir, ...args);

beforeAll(async () => {
  dataDir = tempDir();
  daemon = await startDaemonProcess(dataDir);
  owner = (await daemon.api.post<{ did: string }>('/v1/identities', { name: 'owner' })).did;
  worker = (await daemon.api.post<{ did: string }>('/v1/identities', { name: 'worker' })).did;
  stranger = (await daemon.api.post<{ did: string }>('/v1/identities', { name: 'stranger' })).did;
}, 60_000);
afterAll(async () => {
  await killHard(daemon);
  cleanupTempDirs();
});

it('points at the bad field when validating a playbook, and lists the templates', async () => {
  const file = join(dataDir, 'bad.yaml');
  writeFileSync(
    file,
    'name: broken\nversion: "1"\nstages:\n  - id: a\n    role: dev\n    output: { kind: md, key: a.md }\n  - id: b\n    role: reviewer\n    output: { kind: md, key: b.md }\n    review: { on_reject: nowhere }\n',
  );
  const bad = await cli('playbook', 'validate', file);
  expect(bad.code).toBe(2);
  expect(bad.stderr).toContain('stages[1].review.on_reject: expected the id of an earlier stage');
  const list = await cli('playbook', 'list');
  expect(list.code).toBe(0);
  for (const name of [
    'dev-team',
    'pipeline',
    'incident-triage',
    'code-fix',
    'parallel',
    'map-reduce',
    'vote',
  ])
    expect(list.stdout).toContain(name);
}, 30_000);

it('puts, gets and lists the history of artifacts with the CLI, refusing strangers and forged authors', async () => {
  expect((await cli('enclave', 'create', '--owner', owner, '--id', 'cli', '--backend', 'git')).code).toBe(0);
  expect(
    (
      await cli(
        'enclave',
        'member',
        'cli',
        worker,
        '--role',
        'developer',
        '--permissions',
        'read,write',
        '--as',
        owner,
      )
    ).code,
  ).toBe(0);
  const file = join(dataDir, 'spec.md');
  writeFileSync(file, '# Spec v1\n');
  const put = await cli(
    'vault',
    'put',
    'cli',
    'design/spec.md',
    file,
    '--as',
    worker,
    '--kind',
    'markdown',
    '--summary',
    'first',
  );
  expect(put.code).toBe(0);
  expect(put.stdout).toMatch(/^design\/spec\.md@1 sha256:[0-9a-f]{64}/);
  writeFileSync(file, '# Spec v2\n');
  await cli('vault', 'put', 'cli', 'design/spec.md', file, '--as', worker);
  expect((await cli('vault', 'get', 'cli', 'design/spec.md')).stdout).toBe('# Spec v2\n');
  expect((await cli('vault', 'get', 'cli', 'design/spec.md', '--version', '1')).stdout).toBe('# Spec v1\n');
  const history = await cli('vault', 'history', 'cli', 'design/spec.md');
  expect(history.stdout.split('\n').filter((l) => /^\d/.test(l))).toHaveLength(2);
  const refused = await cli('vault', 'put', 'cli', 'design/spec.md', file, '--as', stranger);
  expect(refused.code).toBe(5);
  expect(refused.stderr).toContain('not a member');
  const forged = await daemon.api
    .post('/v1/vault/cli/put', { key: 'design/spec.md', as: worker, author: owner, content: 'x' })
    .catch((e: { status: number; code: string }) => e);
  expect((forged as { status: number; code: string }).status).toBe(403);
  expect((forged as { code: string }).code).toBe('ANX_FORBIDDEN_AUTHOR');
  expect((await cli('vault', 'get', 'cli', 'nothing/here')).code).toBe(4);
  const versions = await daemon.api.get<{ versions: unknown[] }>('/v1/vault/cli/history?key=design/spec.md');
  expect(versions.versions).toHaveLength(2);
}, 180_000);

it('registers a script worker with paths made absolute where the CLI runs, and refuses a missing one', async () => {
  const dir = tempDir();
  writeFileSync(join(dir, 'w.sh'), '#!/bin/sh\necho "# from w.sh"\n', { mode: 0o755 });
  const script = (cwd: string, ...argv: string[]) =>
    cli('--json', 'worker', 'script', '--did', worker, '--role', 'scribe', '--cwd', cwd, '--', ...argv);
  const ok = await script(dir, './w.sh', 'x');
  expect(ok.code).toBe(0);
  expect(JSON.parse(ok.stdout)).toMatchObject({ role: 'scribe', argv: [join(dir, 'w.sh'), 'x'], cwd: dir });
  const missing = await script(dir, './nope.sh');
  expect(missing.code).toBe(2);
  expect(missing.stdout + missing.stderr).toContain(`the command ${join(dir, 'nope.sh')} does not exist`);
  const badDir = await script(join(dir, 'no-dir'), 'true');
  expect(badDir.code).toBe(2);
  expect(badDir.stdout + badDir.stderr).toContain('--cwd expected a directory');

  // Listed, then removed; a second removal says there is nothing to remove.
  const listed = await cli('--json', 'worker', 'scripts');
  expect(JSON.parse(listed.stdout)).toContainEqual(expect.objectContaining({ did: worker, role: 'scribe' }));
  expect((await cli('worker', 'scripts')).stdout).toContain(join(dir, 'w.sh'));
  const removed = await cli('--json', 'worker', 'remove-script', '--did', worker, '--role', 'scribe');
  expect(removed.code).toBe(0);
  expect(JSON.parse(removed.stdout)).toMatchObject({
    did: worker,
    role: 'scribe',
    argv: [join(dir, 'w.sh'), 'x'],
  });
  const listedAfter = JSON.parse((await cli('--json', 'worker', 'scripts')).stdout) as Array<{
    role: string;
  }>;
  expect(listedAfter.filter((w) => w.role === 'scribe')).toEqual([]);
  const again = await cli('worker', 'remove-script', '--did', worker, '--role', 'scribe');
  expect(again.code).toBe(4);
  expect(again.stdout + again.stderr).toContain('no script worker is registered');
});

it('runs a playbook whose worker lives in another process and answers over the local API', async () => {
  await daemon.api.post('/v1/enclaves', { owner, id: 'remote' });
  await daemon.api.post('/v1/enclaves/remote/members', {
    as: owner,
    did: worker,
    role: 'dev',
    permissions: ['read', 'write'],
  });
  const playbook = {
    name: 'remote',
    version: '1',
    stages: [
      { id: 'draft', role: 'dev', output: { kind: 'md', key: 'draft.md' } },
      {
        id: 'check',
        role: 'dev',
        inputs: ['draft'],
        output: { kind: 'md', key: 'check.md' },
        review: { on_reject: 'draft' },
      },
    ],
  };
  const { run_id } = await daemon.api.post<{ run_id: string }>('/v1/runs', {
    playbook,
    objective: 'remote work',
    owner,
    enclave: 'remote',
    assignments: { dev: worker },
  });
  // This test process is the worker: it polls its tasks and answers through the API.
  type Task = { task_id: string; stage: string; attempt: number; context: ContextSnapshot };
  const answered = new Set<string>();
  const next = async (): Promise<Task> => {
    let found: Task | undefined;
    await waitFor(
      async () => {
        const { tasks } = await daemon.api.get<{ tasks: Task[] }>(
          `/v1/workers/${encodeURIComponent(worker)}/tasks`,
        );
        found = tasks.find((t) => !answered.has(t.task_id));
        return found !== undefined;
      },
      20_000,
      'a task',
    );
    answered.add((found as Task).task_id);
    return found as Task;
  };
  const w = `/v1/workers/${encodeURIComponent(worker)}`;
  const draft1 = await next();
  expect(draft1.stage).toBe('draft');
  await daemon.api.post(`${w}/deliver`, {
    task_id: draft1.task_id,
    value: 'first draft',
    summary: 'draft 1',
  });
  // A second answer for the same task is refused: the run has moved on.
  const again = await daemon.api
    .post(`${w}/deliver`, { task_id: draft1.task_id, value: 'again' })
    .catch((e: { code: string }) => e);
  expect((again as { code: string }).code).toBe('ANX_TASK_NOT_RUNNING');
  const check1 = await next();
  expect(check1.context.inputs[0]?.key).toBe('draft.md');
  await daemon.api.post(`${w}/reject`, { task_id: check1.task_id, reason: 'too short' });
  const draft2 = await next();
  expect(draft2.attempt).toBe(2);
  expect(draft2.context.feedback).toContain('too short');
  await daemon.api.post(`${w}/deliver`, {
    task_id: draft2.task_id,
    value: 'a longer draft',
    summary: 'draft 2',
  });
  const check2 = await next();
  await daemon.api.post(`${w}/deliver`, { task_id: check2.task_id, value: 'ok', summary: 'approved' });
  await waitFor(async () => (await cli('run', 'manifest', run_id)).code === 0, 20_000, 'the manifest');
  const status = await cli('--json', 'run', 'status', run_id);
  const parsed = JSON.parse(status.stdout) as {
    state: string;
    stages: Array<{ stage: string; attempt: number }>;
  };
  expect(parsed.state).toBe('completed');
  expect(parsed.stages.map((s) => [s.stage, s.attempt])).toEqual([
    ['draft', 2],
    ['check', 2],
  ]);
  const text = await cli('run', 'status', run_id);
  expect(text.stdout).toContain('completed');
  expect(text.stdout).toContain('draft.md@2');
  const manifest = JSON.parse((await cli('run', 'manifest', run_id)).stdout) as { signer: string };
  expect(manifest.signer).toBe(owner);
  expect((await cli('run', 'pause', run_id)).code).toBe(5);
  expect((await cli('run', 'status', 'no-such-run')).code).toBe(4);
}, 180_000);

it('runs dev-team with every worker in this process through RemoteWorker, one review rejection included', async () => {
  await daemon.api.post('/v1/enclaves', { owner, id: 'sdk' });
  const roles = ['pm', 'architect', 'developer', 'tester', 'reviewer'];
  const workers: Record<string, string> = {};
  const remote: RemoteWorker[] = [];
  let reviews = 0;
  for (const role of roles) {
    const did = (await daemon.api.post<{ did: string }>('/v1/identities', { name: `sdk-${role}` })).did;
    workers[role] = did;
    await daemon.api.post('/v1/enclaves/sdk/members', {
      as: owner,
      did,
      role,
      permissions: ['read', 'write'],
    });
    const w = new RemoteWorker(daemon.api, did, 50).onStage(role, async (ctx) => {
      const inputs = await Promise.all(ctx.snapshot.inputs.map((r) => ctx.vault.text(r)));
      if (role === 'reviewer' && ++reviews === 1) {
        await ctx.reject({ reason: 'needs tests for the lockout' });
        return;
      }
      await ctx.deliver({
        value: `${ctx.task.stage} #${ctx.task.attempt} (${inputs.length} inputs)`,
        summary: role,
      });
    });
    w.start();
    remote.push(w);
  }
  try {
    const { run_id } = await daemon.api.post<{ run_id: string }>('/v1/runs', {
      playbook: 'dev-team',
      objective: 'remote team',
      owner,
      enclave: 'sdk',
      assignments: workers,
    });
    await waitFor(async () => (await cli('run', 'manifest', run_id)).code === 0, 30_000, 'the manifest');
    const status = JSON.parse((await cli('--json', 'run', 'status', run_id)).stdout) as {
      state: string;
      stages: Array<{ stage: string; attempt: number; worker: string }>;
    };
    expect(status.state).toBe('completed');
    expect(Object.fromEntries(status.stages.map((s) => [s.stage, s.attempt]))).toEqual({
      requirements: 1,
      design: 1,
      implement: 2,
      test: 2,
      review: 2,
    });
    const impl = await daemon.api.get<{ content: string; meta: { author: string } }>(
      '/v1/vault/sdk/get?key=impl/diff.patch',
    );
    expect(impl.content).toBe('implement #2 (2 inputs)');
    expect(impl.meta.author).toBe(workers['developer']);
  } finally {
    for (const w of remote) w.stop();
  }
}, 90_000);
