// A playbook run through a real daemon whose stages are served by `anx-runtime worker run` processes: a CLI agent and an OpenAI-compatible endpoint.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { type SignedManifest, verifyManifest } from '../../actors/manifest.ts';
import type { EventV1 } from '../../runtime/events/event.ts';
import { CLI, type DaemonProcess, killHard, startDaemonProcess, waitFor } from '../helpers/daemon.ts';
import { cleanupTempDirs, tempDir } from '../helpers/tmp.ts';
import { AGENT, processGone } from './agent.ts';
import { type FakeLlm, lastUser, startFakeLlm } from './fake-llm.ts';

const daemons: DaemonProcess[] = [];
const children: ChildProcess[] = [];
let fake: FakeLlm | undefined;
afterAll(async () => {
  for (const c of children)
    if (c.exitCode === null && c.signalCode === null && c.pid) process.kill(c.pid, 'SIGKILL');
  for (const d of daemons) await killHard(d);
  await fake?.close();
  cleanupTempDirs();
});

interface WorkerProcess {
  child: ChildProcess;
  lines: () => Array<Record<string, unknown>>;
  stderr: () => string;
  exited: Promise<number | null>;
}

function workerRun(dataDir: string, args: string[], env: Record<string, string>): WorkerProcess {
  const child = spawn(process.execPath, [CLI, '--data-dir', dataDir, '--json', 'worker', 'run', ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...env },
  });
  children.push(child);
  let out = '';
  let err = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return {
    child,
    exited: exited.then((code) => {
      if (code !== 0) throw new Error(`worker run exited with ${code}: ${out}${err}`);
      return code;
    }),
    stderr: () => err,
    lines: () =>
      out
        .split('\n')
        .filter((l) => l.trim() !== '')
        .map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}

it('runs a playbook to a signed Delivery Manifest with one stage served by a CLI agent and one by an OpenAI-compatible endpoint', {
  timeout: 180_000,
}, async () => {
  const dataDir = tempDir();
  const work = tempDir('anx-worker-e2e-');
  const daemon = await startDaemonProcess(dataDir);
  daemons.push(daemon);
  const api = daemon.api;
  const owner = (await api.post<{ did: string }>('/v1/identities', { name: 'owner' })).did;
  await api.post('/v1/enclaves', { owner, id: 'team' });
  const dids: Record<string, string> = {};
  for (const role of ['pm', 'architect']) {
    const did = (await api.post<{ did: string }>('/v1/identities', { name: role })).did;
    dids[role] = did;
    await api.post('/v1/enclaves/team/members', { as: owner, did, role, permissions: ['read', 'write'] });
  }
  fake = await startFakeLlm('openai', (body) => ({
    type: 'stream',
    reasoning: 'weighing two designs',
    text: `# Design\n\nBased on:\n${lastUser(body)}`,
  }));
  const cliConfig = join(work, 'pm.yaml');
  writeFileSync(
    cliConfig,
    [
      'adapter: cli',
      `command: [${JSON.stringify(process.execPath)}, ${JSON.stringify(AGENT)}, echo]`,
      `workdir_root: ${JSON.stringify(join(work, 'stages'))}`,
      'timeout_ms: 60000',
      '',
    ].join('\n'),
  );
  const llmConfig = join(work, 'architect.json');
  writeFileSync(
    llmConfig,
    JSON.stringify({ endpoint: `${fake.url}/v1`, model: 'design-model', api_key_env: 'E2E_LLM_KEY' }),
  );
  const pm = workerRun(
    dataDir,
    [
      '--did',
      dids['pm'] as string,
      '--role',
      'pm',
      '--config',
      cliConfig,
      '--max-tasks',
      '1',
      '--poll',
      '100',
    ],
    {},
  );
  const architect = workerRun(
    dataDir,
    [
      '--did',
      dids['architect'] as string,
      '--role',
      'architect',
      '--adapter',
      'openai',
      '--config',
      llmConfig,
      '--max-tasks',
      '1',
      '--poll',
      '100',
    ],
    { E2E_LLM_KEY: 'sk-e2e-5b9c' },
  );
  const { run_id } = await api.post<{ run_id: string }>('/v1/runs', {
    playbook: {
      name: 'two-workers',
      version: '1.0.0',
      objective: '{{objective}}',
      stages: [
        {
          id: 'requirements',
          role: 'pm',
          brief: 'Write the requirements.',
          output: { kind: 'markdown', key: 'requirements/req.md' },
        },
        {
          id: 'design',
          role: 'architect',
          brief: 'Design the solution.',
          inputs: ['requirements'],
          output: { kind: 'markdown', key: 'design/spec.md' },
        },
      ],
    },
    objective: 'OBJ-e2e ship the login page',
    owner,
    enclave: 'team',
    assignments: { pm: dids['pm'], architect: dids['architect'] },
  });
  let signed: SignedManifest | undefined;
  let early: unknown;
  for (const w of [pm, architect]) w.exited.catch((err) => (early = err));
  await waitFor(
    async () => {
      if (early !== undefined) throw early;
      signed = await api
        .get<{ signed: SignedManifest }>(`/v1/runs/${run_id}/manifest`)
        .then((m) => m.signed)
        .catch(() => undefined);
      return signed !== undefined;
    },
    120_000,
    'the manifest',
  );
  expect(verifyManifest(signed as SignedManifest)).toBe(true);
  expect(signed?.manifest.stages.map((s) => s.stage)).toEqual(['requirements', 'design']);
  // Both workers answered their one task and stopped by themselves.
  await Promise.all([pm.exited, architect.exited]);
  expect(pm.lines().find((l) => l['state'] === 'delivered')?.['task_id']).toBe(`${run_id}/requirements/1`);
  expect(architect.lines().find((l) => l['state'] === 'delivered')?.['task_id']).toBe(`${run_id}/design/1`);
  // The design, written by the architect's DID, was made by the model from the CLI agent's requirements.
  const design = await api.get<{ meta: { author: string }; content_base64: string }>(
    `/v1/vault/team/get?key=${encodeURIComponent('design/spec.md')}&as=${encodeURIComponent(owner)}`,
  );
  expect(design.meta.author).toBe(dids['architect']);
  const text = Buffer.from(design.content_base64, 'base64').toString('utf8');
  expect(text).toContain('# requirements by the agent');
  expect(text).toContain('OBJ-e2e ship the login page');
  expect(fake.requests[0]?.headers.authorization).toBe('Bearer sk-e2e-5b9c');
  expect(fake.requests[0]?.body['model']).toBe('design-model');
  // The model's tokens reached the run's trace through the daemon, as message and reasoning events.
  const { events } = await api.get<{ events: EventV1[] }>(`/v1/trace/${run_id}?kind=message,reasoning`);
  const of = (kind: string, step: string) =>
    events
      .filter((e) => e.kind === kind && e.step === step)
      .map((e) => (e.payload as { text: string }).text)
      .join('');
  expect(of('message', 'design')).toBe(text);
  expect(of('reasoning', 'design')).toBe('weighing two designs');
  expect(of('reasoning', 'requirements')).toContain('thinking about requirements');
  // The key never reached the trace.
  expect(JSON.stringify(events)).not.toContain('sk-e2e-5b9c');
});

/** A daemon with an owner, an Enclave and a pm DID that is a member with write. */
async function team() {
  const dataDir = tempDir();
  const daemon = await startDaemonProcess(dataDir);
  daemons.push(daemon);
  const api = daemon.api;
  const owner = (await api.post<{ did: string }>('/v1/identities', { name: 'owner' })).did;
  await api.post('/v1/enclaves', { owner, id: 'team' });
  const pm = (await api.post<{ did: string }>('/v1/identities', { name: 'pm' })).did;
  await api.post('/v1/enclaves/team/members', {
    as: owner,
    did: pm,
    role: 'pm',
    permissions: ['read', 'write'],
  });
  const start = () =>
    api.post<{ run_id: string }>('/v1/runs', {
      playbook: {
        name: 'one-stage',
        version: '1.0.0',
        objective: '{{objective}}',
        stages: [
          {
            id: 'requirements',
            role: 'pm',
            brief: 'Write them.',
            output: { kind: 'markdown', key: 'req.md' },
          },
        ],
      },
      objective: 'o',
      owner,
      enclave: 'team',
      assignments: { pm },
    });
  return { dataDir, api, owner, pm, start };
}

function cliConfig(dir: string, name: string, mode: string, state: string): string {
  const file = join(dir, `${name}.json`);
  writeFileSync(
    file,
    JSON.stringify({
      adapter: 'cli',
      command: [process.execPath, AGENT, mode, state],
      workdir_root: join(dir, 'stages'),
      kill_grace_ms: 300,
    }),
  );
  return file;
}

const pidsOf = (state: string) =>
  existsSync(state) && readFileSync(state, 'utf8').includes(' ')
    ? readFileSync(state, 'utf8').split(' ').map(Number)
    : undefined;

it('leaves a task open when its worker is stopped with SIGTERM, so the next worker finishes it; stops work on an aborted run', {
  timeout: 180_000,
}, async () => {
  const { dataDir, api, pm, start } = await team();
  const dir = tempDir('anx-worker-stop-');
  const state = join(dir, 'pids');
  const hanging = workerRun(
    dataDir,
    ['--did', pm, '--role', 'pm', '--config', cliConfig(dir, 'hang', 'hang', state), '--poll', '100'],
    {},
  );
  const { run_id } = await start();
  await waitFor(() => pidsOf(state) !== undefined, 60_000, 'the agent to start');
  hanging.child.kill('SIGTERM');
  await hanging.exited;
  expect(hanging.lines().map((l) => l['state'] ?? l['event'])).toEqual([
    'serving',
    'started',
    'stopped',
    'stopped',
  ]);
  for (const pid of pidsOf(state) ?? []) expect(processGone(pid)).toBe(true);
  // Nothing was answered: the task is still open, and the next worker finishes the run.
  const { tasks } = await api.get<{ tasks: Array<{ task_id: string }> }>(
    `/v1/workers/${encodeURIComponent(pm)}/tasks`,
  );
  expect(tasks.map((t) => t.task_id)).toEqual([`${run_id}/requirements/1`]);
  const next = workerRun(
    dataDir,
    [
      '--did',
      pm,
      '--role',
      'pm',
      '--config',
      cliConfig(dir, 'echo', 'echo', state),
      '--poll',
      '100',
      '--max-tasks',
      '1',
    ],
    {},
  );
  await next.exited;
  const status = await api.get<{ state: string; stages: Array<{ attempt: number }> }>(`/v1/runs/${run_id}`);
  expect(status.state).toBe('completed');
  expect(status.stages[0]?.attempt).toBe(1);

  // A run aborted while the agent works: the worker notices the task is gone and stops the agent.
  const state2 = join(dir, 'pids2');
  const worker = workerRun(
    dataDir,
    ['--did', pm, '--role', 'pm', '--config', cliConfig(dir, 'hang2', 'hang', state2), '--poll', '100'],
    {},
  );
  const second = await start();
  await waitFor(() => pidsOf(state2) !== undefined, 60_000, 'the agent to start');
  await api.post(`/v1/runs/${second.run_id}/control`, { action: 'abort' });
  await waitFor(
    () => worker.lines().some((l) => l['state'] === 'stopped'),
    60_000,
    'the worker to stop the agent',
  );
  for (const pid of pidsOf(state2) ?? []) expect(processGone(pid)).toBe(true);
  worker.child.kill('SIGTERM');
  await worker.exited;
});

it('refuses a bad configuration before contacting anything, and reports progress errors through the API', {
  timeout: 120_000,
}, async () => {
  const dir = tempDir('anx-worker-check-');
  const bad = join(dir, 'bad.yaml');
  writeFileSync(bad, 'adapter: cli\ncommand: claude -p {prompt}\n');
  const check = spawnSync(process.execPath, [CLI, 'worker', 'check', '--config', bad], { encoding: 'utf8' });
  expect(check.status).toBe(2);
  expect(check.stderr).toMatch(/error: "command" expected an argv array/);
  expect(check.stderr).toMatch(/hint: /);
  const json = spawnSync(
    process.execPath,
    [
      CLI,
      '--json',
      'worker',
      'run',
      '--did',
      'did:x',
      '--role',
      'pm',
      '--adapter',
      'ollama',
      '--config',
      bad,
    ],
    { encoding: 'utf8' },
  );
  expect(json.status).toBe(2);
  expect(JSON.parse(json.stdout).error.code).toBe('ANX_WORKER_CONFIG_INVALID');
  expect(JSON.parse(json.stdout).error.message).toMatch(/for the "cli" adapter, not "ollama"/);
  const good = join(dir, 'good.yaml');
  writeFileSync(good, 'endpoint: http://127.0.0.1:11434\nmodel: llama3\n');
  const ok = spawnSync(
    process.execPath,
    [CLI, '--json', 'worker', 'check', '--adapter', 'ollama', '--config', good],
    {
      encoding: 'utf8',
    },
  );
  expect(JSON.parse(ok.stdout)).toEqual({ ok: true, adapter: 'ollama' });

  const { api, pm, start } = await team();
  const { run_id } = await start();
  const taskId = `${run_id}/requirements/1`;
  await waitFor(
    async () => {
      const { tasks } = await api.get<{ tasks: unknown[] }>(`/v1/workers/${encodeURIComponent(pm)}/tasks`);
      return tasks.length === 1;
    },
    60_000,
    'the task',
  );
  const path = `/v1/workers/${encodeURIComponent(pm)}/progress`;
  await expect(api.post(path, { task_id: taskId, kind: 'artifact', payload: {} })).rejects.toMatchObject({
    code: 'ANX_TEAMWORK_INVALID',
  });
  await expect(
    api.post(path, { task_id: taskId, kind: 'message', payload: { text: 'x'.repeat(70_000) } }),
  ).rejects.toMatchObject({
    code: 'ANX_TEAMWORK_INVALID',
  });
  await expect(
    api.post(path, { task_id: `${run_id}/other/1`, kind: 'message', payload: {} }),
  ).rejects.toMatchObject({
    code: 'ANX_TASK_NOT_RUNNING',
  });
  expect(await api.post(path, { task_id: taskId, kind: 'status', payload: { step: 'reading' } })).toEqual({
    recorded: true,
  });
  const { events } = await api.get<{ events: EventV1[] }>(
    `/v1/trace/${encodeURIComponent(taskId)}?kind=status`,
  );
  expect(
    events.some((e) => (e.payload as { step?: string }).step === 'reading' && e.metadata?.['worker'] === pm),
  ).toBe(true);
});
