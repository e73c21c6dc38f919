// The orchestration flow of the reference document end to end: a daemon, the Owner's side in this process, the developer in another.
import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, expect, it } from 'vitest';
import { orchestrate } from '../../docs/examples/orchestration.ts';
import { type DaemonProcess, killHard, startDaemonProcess, waitFor } from '../helpers/daemon.ts';
import { cleanupTempDirs, tempDir } from '../helpers/tmp.ts';

const WORKER = fileURLToPath(new URL('../../docs/examples/orchestration-worker.ts', import.meta.url));

let daemon: DaemonProcess | undefined;
const workers: ChildProcess[] = [];

afterAll(async () => {
  for (const w of workers) {
    if (w.exitCode === null && w.signalCode === null) {
      const exited = new Promise<void>((resolve) => w.once('exit', () => resolve()));
      process.kill(w.pid as number, 'SIGKILL');
      await exited;
    }
  }
  if (daemon !== undefined) await killHard(daemon);
  cleanupTempDirs();
});

/** Starts the developer's stage handler in its own process; resolves once it is ready. */
function startWorker(dataDir: string, did: string): Promise<void> {
  const child = spawn(
    process.execPath,
    ['--conditions=anx-source', '--import', 'tsx', WORKER, dataDir, did],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  workers.push(child);
  let err = '';
  child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
  return new Promise((resolve, reject) => {
    child.stdout?.on('data', (d: Buffer) => {
      if (d.toString().includes('"ready":true')) resolve();
    });
    child.once('exit', (code) => reject(new Error(`worker exited with ${code}: ${err}`)));
  });
}

it('owner register → secretary register → bind developer → dispatch → worker delivers → status → abort', async () => {
  const dataDir = tempDir();
  daemon = await startDaemonProcess(dataDir);
  const api = daemon.api;
  const r = await orchestrate(dataDir, (did) => startWorker(dataDir, did));

  // The worker in the other process delivered; the Secretary signed the manifest and reported it.
  expect(r.delivered).toMatchObject({
    session_id: 'sess_login_001',
    state: 'done',
    owner: r.owner,
    secretary: r.secretary,
    actor: r.secretary,
    authorization: { basis: 'binding', proven_by: 'local-key' },
    workers: [expect.objectContaining({ role: 'developer', did: r.developer, candidates: 1 })],
    result: { signer: r.secretary },
    source: { channel: 'sdk', message_ref: 'msg_001' },
  });
  expect(r.delivered.run?.state).toBe('completed');
  expect(r.delivered.run?.stages).toEqual([
    expect.objectContaining({ stage: 'developer', worker: r.developer, status: 'delivered' }),
  ]);
  const manifest = await api.get<{ signed: { signer: string; manifest: { session_id: string } } }>(
    `/v1/runs/${r.delivered.run_id}/manifest`,
  );
  expect(manifest.signed).toMatchObject({ signer: r.secretary, manifest: { session_id: 'sess_login_001' } });

  // The second dispatch was aborted by the Owner while the developer held it.
  expect(r.aborted).toMatchObject({
    session_id: 'sess_login_002',
    state: 'aborted',
    abort: { actor: r.owner, reason: 'requirements changed: stop this run' },
  });
  expect(r.aborted.run?.state).toBe('aborted');

  // The Owner got the result (with the manifest) and the abort notice as messages.
  const ownerInbox = () =>
    api.get<{ messages: Array<{ type: string; body: Record<string, unknown> }> }>(
      `/v1/inbox/${encodeURIComponent(r.owner)}`,
    );
  await waitFor(
    async () => (await ownerInbox()).messages.some((m) => m.type === 'secretary.aborted'),
    30_000,
    'the abort notice in the owner inbox',
  );
  const inbox = await ownerInbox();
  const result = inbox.messages.find((m) => m.type === 'secretary.result');
  expect(result?.body).toMatchObject({
    session_id: 'sess_login_001',
    run_id: r.delivered.run_id,
    signer: r.secretary,
    manifest_ref: { key: `manifest/${r.delivered.run_id}.json` },
  });
  expect(inbox.messages.map((m) => m.type)).toContain('secretary.aborted');

  // A repeat of the first dispatch returns the same run; the dispatch and abort are audited.
  const again = await api.post<{ run_id: string; state: string }>('/v1/dispatch', {
    session_id: 'sess_login_001',
    owner_did: r.owner,
    actor_did: r.secretary,
    objective: 'Implement and review the login module',
    required_roles: ['developer'],
    source: { channel: 'sdk', message_ref: 'msg_001' },
  });
  expect(again).toMatchObject({ run_id: r.delivered.run_id, state: 'done' });
  const audit = await api.get<{ entries: Array<{ action: string; decision: string; actor?: string }> }>(
    '/v1/audit?decision=allow',
  );
  const actions = audit.entries.map(
    (e) => `${e.action}:${e.actor === r.owner ? 'owner' : e.actor === r.secretary ? 'secretary' : 'other'}`,
  );
  expect(actions).toEqual(expect.arrayContaining(['dispatch:secretary', 'abort:owner', 'owner.bind:owner']));
  const verify = await api.get<{ ok: boolean }>('/v1/audit/verify');
  expect(verify.ok).toBe(true);
}, 180_000);
