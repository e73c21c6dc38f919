// A playbook run through a real daemon whose stages are served by `anx-runtime worker run` processes: a CLI agent and an OpenAI-compatible endpoint.
import { type ChildProcess, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { type SignedManifest, verifyManifest } from '../../actors/manifest.ts';
import type { EventV1 } from '../../runtime/events/event.ts';
import { CLI, type DaemonProcess, killHard, startDaemonProcess, waitFor } from '../helpers/daemon.ts';
import { cleanupTempDirs, tempDir } from '../helpers/tmp.ts';
import { AGENT } from './agent.ts';
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
