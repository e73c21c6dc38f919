// A daemon killed with -9 in the middle of dispatches resumes each at its step: one Enclave, one run, each step once.
import { afterAll, expect, it } from 'vitest';
import type { ApiClient } from '../../bridge/api/client.ts';
import { type DaemonProcess, killHard, startDaemonProcess, waitFor } from '../helpers/daemon.ts';
import { cleanupTempDirs, tempDir } from '../helpers/tmp.ts';

const ROLES = ['pm', 'architect', 'developer', 'tester', 'reviewer'];
let daemon: DaemonProcess | undefined;

afterAll(async () => {
  if (daemon !== undefined) await killHard(daemon);
  cleanupTempDirs();
});

interface DispatchJson {
  state: string;
  run_id: string;
  enclave_id: string;
  workers: Array<{ role: string; did: string }>;
}

async function stateOf(api: ApiClient, session: string): Promise<string | undefined> {
  try {
    return (await api.get<DispatchJson>(`/v1/dispatches/${session}`)).state;
  } catch {
    return undefined;
  }
}

it('resumes dispatches interrupted by kill -9 without a second Enclave or run', async () => {
  const dataDir = tempDir();
  daemon = await startDaemonProcess(dataDir);
  let api = daemon.api;
  const owner = (await api.post<{ did: string }>('/v1/owners', { name: 'Kevin' })).did;
  const secretary = (await api.post<{ did: string }>('/v1/secretaries', { owner_did: owner })).did;
  for (const role of ROLES) {
    const did = (await api.post<{ did: string }>('/v1/identities', { name: role })).did;
    await api.post('/v1/bindings', { owner_did: owner, agent_did: did, role });
  }
  const request = (session: string) => ({
    session_id: session,
    owner_did: owner,
    actor_did: secretary,
    objective: `Build feature ${session}`,
    required_roles: ROLES,
    playbook: 'dev-team',
  });

  const sessions: string[] = [];
  const seenAtKill: Array<string | undefined> = [];
  for (const [i, delay] of [5, 25, 60, 120, 250].entries()) {
    const session = `sess_crash_${i}`;
    sessions.push(session);
    const pending = api.post('/v1/dispatch', request(session)).catch(() => undefined);
    await new Promise((r) => setTimeout(r, delay));
    await killHard(daemon);
    await pending;
    daemon = await startDaemonProcess(dataDir);
    api = daemon.api;
    seenAtKill.push(await stateOf(api, session));
    // A request that never committed is simply sent again; one that did is recognised (idempotent).
    const resumed = await api.post<DispatchJson>('/v1/dispatch', request(session));
    expect(['waiting', 'reporting', 'done']).toContain(resumed.state);
  }

  for (const session of sessions) {
    await waitFor(async () => (await stateOf(api, session)) === 'waiting', 60_000, `${session} waiting`);
    const d = await api.get<DispatchJson>(`/v1/dispatches/${session}`);
    expect(d.workers.map((w) => w.role).sort()).toEqual([...ROLES].sort());
    // Each step happened once, even where the daemon died between its I/O and its commit.
    const { events } = await api.get<{ events: Array<{ actor?: string; payload: { status?: string } }> }>(
      `/v1/trace/${d.run_id}`,
    );
    const steps = events.filter((e) => e.actor?.startsWith('dispatch/')).map((e) => e.payload.status);
    for (const step of [
      'secretary.intake',
      'secretary.authorized',
      'secretary.workers.selected',
      'secretary.enclave.ready',
      'secretary.run.started',
    ])
      expect(steps.filter((s) => s === step)).toHaveLength(1);
    const run = await api.get<{
      state: string;
      enclave_id: string;
      stages: Array<{ attempt: number; status: string }>;
    }>(`/v1/runs/${d.run_id}`);
    expect(run.enclave_id).toBe(d.enclave_id);
    expect(run.state).toBe('running');
    expect(run.stages[0]).toMatchObject({ attempt: 1, status: 'running' });
    const enclave = await api.get<{ members: Record<string, unknown> }>(`/v1/enclaves/${d.enclave_id}`);
    expect(Object.keys(enclave.members)).toHaveLength(ROLES.length + 2);
  }
  const { runs } = await api.get<{ runs: Array<{ run_id: string }> }>('/v1/runs');
  expect(runs).toHaveLength(sessions.length);
  const { enclaves } = await api.get<{ enclaves: Array<{ enclave_id: string }> }>('/v1/enclaves');
  expect(enclaves).toHaveLength(sessions.length);
  expect(seenAtKill).toHaveLength(sessions.length);
  console.log('SEEN', JSON.stringify(seenAtKill));
}, 300_000);
