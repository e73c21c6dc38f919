// Who may give work to a worker of another host: a worker bound to an Owner takes assignments only from that
// Owner, its Secretaries, or a coordinator presenting the Owner's capability token; refusals are typed and audited.
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { AuditEntry } from '../../runtime/authority/audit.ts';
import { type DaemonProcess, runCli, runCliJson, waitFor } from '../helpers/daemon.ts';
import { startRelayedDaemons } from '../helpers/nats.ts';
import { cleanupTempDirs, tempDir } from '../helpers/tmp.ts';
import { createEnclave, seeEachOther } from './relayed.ts';

let relayed: Awaited<ReturnType<typeof startRelayedDaemons>>;
let home: DaemonProcess;
let away: DaemonProcess;

beforeAll(async () => {
  relayed = await startRelayedDaemons('anx-assign-auth');
  [home, away] = relayed.daemons;
}, 120_000);

afterAll(async () => {
  await relayed?.stop();
  cleanupTempDirs();
}, 60_000);

interface RunStatus {
  state: string;
  stages: Array<{ stage: string; status: string; attempt: number; last_error?: string | null }>;
}

/** A one-stage playbook whose writer writes notes.md (no retries: a refusal goes straight to the Owner). */
const playbook = (name: string) => ({
  name,
  version: '1.0.0',
  objective: '{{objective}}',
  defaults: { max_retries: 0 },
  stages: [{ id: 'write', role: 'writer', brief: 'Write.', output: { kind: 'text', key: 'notes.md' } }],
});

/** The script every test worker runs: it leaves a marker file (its first argument), then writes notes. */
const SCRIPT = "require('node:fs').writeFileSync(process.argv[1], 'ran');process.stdout.write('notes')";

/** Makes `did` a script worker of the writer role on host B, leaving its marker at `file`. */
const scriptWriter = (did: string, file: string) =>
  away.api.post('/v1/workers/scripts', { did, role: 'writer', argv: [process.execPath, '-e', SCRIPT, file] });

const runOf = (runId: string) => home.api.get<RunStatus>(`/v1/runs/${runId}`);

it('refuses work for a bound worker from a stranger, and takes it with a token from its Owner', async () => {
  // Host B: the worker's Owner and the worker, bound to it; the worker is a script worker there.
  const owner = (await away.api.post<{ did: string }>('/v1/owners', { name: 'Olga' })).did;
  const worker = (await away.api.post<{ did: string }>('/v1/identities', { name: 'Wes' })).did;
  await away.api.post('/v1/bindings', { owner_did: owner, agent_did: worker, role: 'developer' });
  const markers = tempDir('anx-assign-marker-');
  let script = 0;
  const marker = () => join(markers, `ran-${++script}`);
  const scripted = (file: string) => scriptWriter(worker, file);
  // Host A: a coordinator of its own, with the worker in its Enclave.
  const alice = (await home.api.post<{ did: string }>('/v1/identities', { name: 'Alice' })).did;
  await seeEachOther(home, worker, away, alice);
  await createEnclave(home, 'assign-auth', alice, [worker]);
  const start = (name: string, tokens?: Record<string, string>, runId?: string) =>
    home.api.post<{ run_id: string }>('/v1/runs', {
      playbook: playbook(name),
      objective: 'notes',
      owner: alice,
      enclave: 'assign-auth',
      assignments: { writer: worker },
      ...(tokens === undefined ? {} : { tokens }),
      ...(runId === undefined ? {} : { run_id: runId }),
    });
  /** Host B's audit records of stage assignments with this decision, and what each of ours names. */
  const assignAudit = async (decision: 'allow' | 'deny') =>
    (
      await away.api.get<{ entries: AuditEntry[] }>(
        `/v1/audit?${new URLSearchParams({ action: 'stage.assign', decision })}`,
      )
    ).entries;
  const decided = { actor: alice, principal: owner, resource: `worker:${worker}` };
  /** A token issued on host B by `issuer` to Alice for stage.assign on the worker. */
  const assignToken = async (issuer: string, constraints?: Record<string, unknown>) =>
    (
      await away.api.post<{ token: string }>('/v1/tokens', {
        issuer,
        audience: alice,
        resource: `worker:${worker}`,
        actions: ['stage.assign'],
        ttl_ms: 600_000,
        ...(constraints === undefined ? {} : { constraints }),
      })
    ).token;
  const refusedWith = async (runId: string, code: string, what: string) => {
    await waitFor(async () => (await runOf(runId)).state === 'takeover', 60_000, what);
    const stage = (await runOf(runId)).stages[0];
    expect(stage?.status).toBe('takeover');
    expect(stage?.last_error).toContain(code);
  };

  // 1. Alice is not the worker's Owner, not its Secretary, and presents nothing: refused on host B.
  const first = marker();
  await scripted(first);
  const stranger = await start('stranger');
  await refusedWith(stranger.run_id, 'ANX_FORBIDDEN_ASSIGNER', 'the stranger run is refused');
  expect(existsSync(first)).toBe(false);
  expect(await assignAudit('deny')).toContainEqual(
    expect.objectContaining({ ...decided, code: 'ANX_FORBIDDEN_ASSIGNER' }),
  );
  const events = await away.api.get<{ events: Array<{ kind: string; payload: { code?: string } }> }>(
    `/v1/trace/${encodeURIComponent(worker)}`,
  );
  expect(events.events.some((e) => e.kind === 'error' && e.payload.code === 'ANX_FORBIDDEN_ASSIGNER')).toBe(
    true,
  );

  // 2. A token the worker itself issued does not lead back to its Owner: refused with the token's error.
  const second = marker();
  await scripted(second);
  const forged = await start('self-issued', { [worker]: await assignToken(worker) });
  await refusedWith(forged.run_id, 'ANX_TOKEN', 'the run with a token not from the Owner is refused');
  expect(existsSync(second)).toBe(false);

  // 3. The Owner's token holds for one run only (a ctx constraint): another run presenting it is refused.
  const forRun = await assignToken(owner, { ctx: { run_id: 'run-granted' } });
  const fourth = marker();
  await scripted(fourth);
  const other = await start('other-run', { [worker]: forRun }, 'run-other');
  await refusedWith(other.run_id, 'ANX_TOKEN', 'a run the token does not name is refused');
  expect(existsSync(fourth)).toBe(false);

  // 4. The run it names goes through, started with the CLI's --token: the worker takes it on the Owner's word.
  const third = marker();
  await scripted(third);
  const file = join(markers, 'with-token.json');
  writeFileSync(file, JSON.stringify(playbook('with-token')));
  const runArgs = ['run', 'start', '--playbook', file, '--objective', 'notes', '--owner', alice];
  runArgs.push('--enclave', 'assign-auth', '--assign', `writer=${worker}`, '--run-id', 'run-granted');
  const refusedArg = await runCli(relayed.dirs[0], ...runArgs, '--token', 'not-a-did-and-token');
  expect(refusedArg.code).toBe(2);
  expect(refusedArg.stderr).toContain('--token expected WORKER_DID=TOKEN, got "not-a-did-and-token"');
  // The token from a file (kept out of the process list).
  const tokenFile = join(markers, 'assign.token');
  writeFileSync(tokenFile, `${forRun}\n`, { mode: 0o600 });
  const missing = await runCli(relayed.dirs[0], ...runArgs, '--token', `${worker}=@${tokenFile}.missing`);
  expect(missing.code).toBe(2);
  expect(missing.stderr).toContain(`cannot read the token for ${worker} from @${tokenFile}.missing`);
  const allowed = await runCliJson<{ run_id: string }>(
    relayed.dirs[0],
    ...runArgs,
    '--token',
    `${worker}=@${tokenFile}`,
  );
  expect(allowed.run_id).toBe('run-granted');
  await waitFor(async () => (await runOf(allowed.run_id)).state === 'completed', 60_000, 'the run completes');
  expect(existsSync(third)).toBe(true);
  expect(await assignAudit('allow')).toContainEqual(
    expect.objectContaining({
      ...decided,
      details: expect.objectContaining({ basis: 'token', proven_by: 'sender' }),
    }),
  );

  // A token kept by a run is checked: not a token at all is refused when the run is started.
  await expect(start('bad-token', { [worker]: '' })).rejects.toMatchObject({ code: 'ANX_TEAMWORK_INVALID' });
}, 180_000);

it('takes work for a worker bound to nobody from anyone its gatekeeper lets in', async () => {
  const worker = (await away.api.post<{ did: string }>('/v1/identities', { name: 'Free' })).did;
  const file = join(tempDir('anx-assign-free-'), 'ran');
  await scriptWriter(worker, file);
  const bob = (await home.api.post<{ did: string }>('/v1/identities', { name: 'Bob' })).did;
  await seeEachOther(home, worker, away, bob);
  await createEnclave(home, 'assign-free', bob, [worker]);
  const { run_id } = await home.api.post<{ run_id: string }>('/v1/runs', {
    playbook: playbook('free'),
    objective: 'notes',
    owner: bob,
    enclave: 'assign-free',
    assignments: { writer: worker },
  });
  await waitFor(async () => (await runOf(run_id)).state === 'completed', 60_000, 'the run completes');
  expect(existsSync(file)).toBe(true);
}, 120_000);
