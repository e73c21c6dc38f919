// Workers on another host than their run, over a real relay (a JetStream hub and two leaves, one daemon on each):
// a dev-team run of host A completes with every stage worked on host B; refused and forged requests write nothing.
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type SignedManifest, verifyManifest } from '../../actors/manifest.ts';
import type { StageContext } from '../../actors/worker-runtime.ts';
import { connect } from '../../bridge/sdk/index.ts';
import type { ArtifactRef } from '../../machines/playbook/definition.ts';
import { defaultSuite } from '../../runtime/crypto/index.ts';
import { createEnvelope, encodeEnvelope, envelopeSigningInput } from '../../runtime/envelope/index.ts';
import { didFromPublicKey } from '../../runtime/identity/did.ts';
import { type DaemonProcess, waitFor } from '../helpers/daemon.ts';
import { startRelayedDaemons } from '../helpers/nats.ts';
import { cleanupTempDirs, tempDir } from '../helpers/tmp.ts';
import { processGone } from './agent.ts';
import { codeOf, createEnclave, restartHard, seeEachOther } from './relayed.ts';

let relayed: Awaited<ReturnType<typeof startRelayedDaemons>>;
let home: DaemonProcess;
let away: DaemonProcess;
let dirs: [string, string];

beforeAll(async () => {
  relayed = await startRelayedDaemons('anx-remote-worker');
  [home, away] = relayed.daemons;
  dirs = relayed.dirs;
}, 120_000);

afterAll(async () => {
  await relayed?.stop();
  cleanupTempDirs();
}, 60_000);

interface RunStatus {
  state: string;
  stages: Array<{ stage: string; status: string; attempt: number; worker: string | null }>;
}

interface Version {
  version: number;
  author: string;
  hash: string;
}

const ROLES = ['pm', 'architect', 'developer', 'tester', 'reviewer'] as const;

/** Creates the Enclave `id` on host A, owned by `owner`, with `members` as read/write members. */
const enclave = (id: string, owner: string, members: string[]) => createEnclave(home, id, owner, members);

/** A one-stage playbook: a writer writes notes.md. */
function writerPlaybook(name: string, options: { timeout?: number; retries?: number } = {}) {
  return {
    name,
    version: '1.0.0',
    objective: '{{objective}}',
    ...(options.retries === undefined
      ? {}
      : { defaults: { max_retries: options.retries, backoff: { initial: 10, factor: 1, max: 10 } } }),
    stages: [
      {
        id: 'write',
        role: 'writer',
        brief: 'Write.',
        ...(options.timeout === undefined ? {} : { timeout: options.timeout }),
        output: { kind: 'text', key: 'notes.md' },
      },
    ],
  };
}

/**
 * On host B a new DID `name` whose writer is the script worker `node -e script marker`; on host A an
 * Enclave `enclaveId` with it as member, and a one-stage run assigned to it.
 */
async function scriptedWriterRun(
  owner: string,
  name: string,
  enclaveId: string,
  script: string,
  marker: string,
  options: { timeout?: number; retries?: number } = {},
): Promise<{ did: string; run_id: string }> {
  const did = (await away.api.post<{ did: string }>('/v1/identities', { name })).did;
  await away.api.post('/v1/workers/scripts', {
    did,
    role: 'writer',
    argv: [process.execPath, '-e', script, marker],
  });
  await seeEachOther(home, did, away, owner);
  await enclave(enclaveId, owner, [did]);
  const { run_id } = await home.api.post<{ run_id: string }>('/v1/runs', {
    playbook: writerPlaybook(enclaveId, options),
    objective: 'release notes',
    owner,
    enclave: enclaveId,
    assignments: { writer: did },
  });
  return { did, run_id };
}

const completed = (runId: string, what: string) =>
  waitFor(
    async () => (await home.api.get<RunStatus>(`/v1/runs/${runId}`)).state === 'completed',
    90_000,
    what,
  );

/** Stops the process whose pid a script left in `marker`, should it outlive the test. */
function stopPidIn(marker: string): void {
  const pid = existsSync(marker) ? Number(readFileSync(marker, 'utf8')) : 0;
  if (pid > 0 && !processGone(pid)) process.kill(pid, 'SIGKILL');
}

it('completes a dev-team run of host A whose worker DID lives on host B: artifacts in A’s vault by the worker, manifest resolving', async () => {
  const alice = await connect({ dataDir: dirs[0], name: 'Alice' });
  const bob = await connect({ dataDir: dirs[1], name: 'Bob' });
  try {
    await seeEachOther(home, bob.did, away, alice.did);
    // The tester is a script worker inside host B's daemon (the in-process handler path).
    const tess = (await away.api.post<{ did: string }>('/v1/identities', { name: 'Tess' })).did;
    await away.api.post('/v1/workers/scripts', {
      did: tess,
      role: 'tester',
      argv: [
        process.execPath,
        '-e',
        "let s='';process.stdin.on('data',(d)=>(s+=d)).on('end',()=>process.stdout.write('tested '+JSON.parse(s).inputs.length+' inputs by '+process.env.ANX_WORKER_DID))",
      ],
    });
    await enclave('team', alice.did, [bob.did, tess]);
    // What each stage read of its inputs (through host A), by stage and attempt.
    const reads = new Map<string, string[]>();
    const handler = async (ctx: StageContext) => {
      const { stage } = ctx.snapshot;
      const texts: string[] = [];
      for (const ref of ctx.snapshot.inputs) texts.push(await ctx.vault.text(ref));
      reads.set(`${stage.id}/${ctx.task.attempt}`, texts);
      await ctx.progress({ kind: 'status', payload: `${stage.id}: read ${texts.length} inputs` });
      if (stage.id === 'review' && ctx.task.attempt === 1) {
        await ctx.reject({ reason: 'add rate limiting' });
        return;
      }
      // A key read back by name, through host A.
      if (stage.id === 'review') expect(await ctx.vault.text('design/spec.md')).toContain('design by');
      await ctx.deliver({
        value: `${stage.id} by ${ctx.task.did} attempt ${ctx.task.attempt}\n${texts.join('\n')}`,
        summary: `${stage.id} done`,
      });
    };
    for (const role of ROLES) bob.worker.onStage(role, handler as never);

    const { run_id } = await home.api.post<{ run_id: string }>('/v1/runs', {
      playbook: 'dev-team',
      objective: 'ship the login page',
      owner: alice.did,
      enclave: 'team',
      assignments: { ...Object.fromEntries(ROLES.map((r) => [r, bob.did])), tester: tess },
    });
    await waitFor(
      async () => (await home.api.get<RunStatus>(`/v1/runs/${run_id}`)).state === 'completed',
      90_000,
      'the run completes',
    );
    const status = await home.api.get<RunStatus>(`/v1/runs/${run_id}`);
    expect(status.stages.map((s) => [s.stage, s.status, s.worker])).toEqual(
      ['requirements', 'design', 'implement', 'test', 'review'].map((s) => [
        s,
        'delivered',
        s === 'test' ? tess : bob.did,
      ]),
    );
    // The rejection reached the run: implement, test and review ran twice.
    expect(status.stages.find((s) => s.stage === 'implement')?.attempt).toBe(2);
    expect([...reads.keys()]).toContain('review/2');
    // Stage inputs were read from host A's vault: the design read exactly what requirements delivered.
    expect(reads.get('design/1')?.[0]).toMatch(/^requirements by did:agentnexus:.+ attempt 1/);

    // Every artifact is in host A's vault, authored by the worker DID of host B.
    for (const key of [
      'requirements/requirements.md',
      'design/spec.md',
      'impl/diff.patch',
      'test/report.md',
      'review/report.md',
    ]) {
      const { versions } = await home.api.get<{ versions: Version[] }>(
        `/v1/vault/team/history?${new URLSearchParams({ key, as: alice.did })}`,
      );
      expect(versions.length).toBeGreaterThan(0);
      const author = key === 'test/report.md' ? tess : bob.did;
      expect(versions.every((v) => v.author === author)).toBe(true);
    }
    const report = await home.api.get<{ content: string }>(
      `/v1/vault/team/get?${new URLSearchParams({ key: 'test/report.md', as: alice.did })}`,
    );
    expect(report.content).toBe(`tested 2 inputs by ${tess}`);
    const { versions: impl } = await home.api.get<{ versions: Version[] }>(
      `/v1/vault/team/history?${new URLSearchParams({ key: 'impl/diff.patch', as: alice.did })}`,
    );
    expect(impl.map((v) => v.version)).toEqual([1, 2]);

    // The manifest is signed by the coordinator, and each ref resolves to content of its hash.
    let signed: SignedManifest | undefined;
    await waitFor(
      async () => {
        signed = (
          await home.api.get<{ signed: SignedManifest }>(`/v1/runs/${run_id}/manifest`).catch(() => undefined)
        )?.signed;
        return signed !== undefined;
      },
      30_000,
      'the manifest',
    );
    expect(verifyManifest(signed as SignedManifest)).toBe(true);
    const manifest = (signed as SignedManifest).manifest;
    expect(manifest.final.length).toBe(1);
    const refs: ArtifactRef[] = [...manifest.stages.flatMap((s) => s.refs), ...manifest.final];
    for (const ref of refs) {
      const found = await home.api.post<{ content_base64: string; meta: Version }>('/v1/vault/resolve', {
        ref,
        as: alice.did,
      });
      expect([bob.did, tess]).toContain(found.meta.author);
      expect(createHash('sha256').update(Buffer.from(found.content_base64, 'base64')).digest('hex')).toBe(
        ref.hash,
      );
    }
    // Progress reached the run's trace on host A.
    const { events } = await home.api.get<{ events: Array<{ kind: string; payload: unknown }> }>(
      `/v1/trace/${run_id}`,
    );
    expect(events.filter((e) => e.kind === 'status' && String(e.payload).includes('inputs')).length).toBe(6);
  } finally {
    for (const c of [alice, bob]) await c.close();
  }
}, 180_000);

it('refuses a removed member and forged senders with typed errors, writes nothing, and cancels the task when the run ends', async () => {
  const alice = await connect({ dataDir: dirs[0], name: 'Alice' });
  const carol = await connect({ dataDir: dirs[1], name: 'Carol' });
  const mallory = await connect({ dataDir: dirs[1], name: 'Mallory' });
  try {
    await seeEachOther(home, carol.did, away, alice.did);
    await enclave('solo', alice.did, [carol.did]);
    let removed!: () => void;
    const whenRemoved = new Promise<void>((r) => {
      removed = r;
    });
    const refusals: string[] = [];
    let taskId: string | undefined;
    let calls = 0;
    carol.worker.onStage('writer', async (ctx) => {
      calls++;
      // Only the first call tries: a task the worker could not answer is handed to it again.
      if (calls > 1) return new Promise<void>(() => {});
      taskId = ctx.task.task_id;
      await whenRemoved;
      for (const attempt of [
        () => ctx.vault.text('brief.md'),
        () => ctx.deliver({ value: 'written anyway' }),
        () => ctx.fail('gave up'),
      ])
        await attempt().then(
          () => refusals.push('accepted'),
          (err) => refusals.push(codeOf(err)),
        );
      return new Promise<void>(() => {});
    });
    await home.api.post('/v1/vault/solo/put', {
      as: alice.did,
      key: 'brief.md',
      kind: 'markdown',
      content: 'write the release notes',
      summary: 'brief',
    });
    const { run_id } = await home.api.post<{ run_id: string }>('/v1/runs', {
      playbook: writerPlaybook('solo'),
      objective: 'release notes',
      owner: alice.did,
      enclave: 'solo',
      assignments: { writer: carol.did },
    });
    await waitFor(() => taskId !== undefined, 60_000, 'the task reaches host B');
    await home.api.post('/v1/enclaves/solo/members/remove', { as: alice.did, did: carol.did });
    removed();
    await waitFor(() => refusals.length === 3, 60_000, 'three answers from host A');
    expect(refusals).toEqual(['ANX_FORBIDDEN_ENCLAVE', 'ANX_FORBIDDEN_ENCLAVE', 'ANX_FORBIDDEN_ENCLAVE']);

    // Forged: a statement claiming to be Carol's but signed by another key, and a valid one by a stranger
    // sent as Mallory. Each gets a typed answer in Mallory's inbox.
    const suite = defaultSuite();
    const stranger = suite.randomBytes(32);
    const statement = (from: string) => {
      const env = createEnvelope(
        { type: 'worker.deliver', from, to: alice.did, body: { task_id: taskId, value: 'forged' } },
        {},
      );
      env.sig = suite.sign(stranger, envelopeSigningInput(env));
      return Buffer.from(encodeEnvelope(env)).toString('base64url');
    };
    for (const forged of [
      statement(carol.did),
      statement(didFromPublicKey(suite.ed25519PublicKey(stranger))),
    ])
      await away.api.post('/v1/messages', {
        from: mallory.did,
        to: alice.did,
        type: 'worker.deliver',
        body: { statement: forged },
      });
    const answers = async () =>
      (await mallory.inbox()).messages
        .filter((m) => m.type === 'worker.answer')
        .map((m) => (m.body as { code?: string }).code);
    await waitFor(async () => (await answers()).length === 2, 60_000, 'answers to the forged requests');
    expect(await answers()).toEqual(['ANX_FORBIDDEN_SENDER', 'ANX_FORBIDDEN_SENDER']);

    // Nothing was written, and the run still waits for its stage.
    const { artifacts } = await home.api.get<{ artifacts: Version[] }>(
      `/v1/vault/solo/list?${new URLSearchParams({ as: alice.did })}`,
    );
    expect(artifacts.map((a) => a.author)).toEqual([alice.did]);
    expect((await home.api.get<RunStatus>(`/v1/runs/${run_id}`)).state).toBe('running');

    // Aborted at home: host B hears it, and the task is no longer open there.
    const pending = async () =>
      (await away.api.get<{ tasks: unknown[] }>(`/v1/workers/${encodeURIComponent(carol.did)}/tasks`)).tasks;
    expect(await pending()).toHaveLength(1);
    await home.api.post(`/v1/runs/${run_id}/control`, { action: 'abort', reason: 'no writer' });
    await waitFor(async () => (await pending()).length === 0, 60_000, 'the cancel reaches host B');
  } finally {
    for (const c of [alice, carol, mallory]) await c.close();
  }
}, 180_000);

it('finishes a remote task after the worker host is killed with -9 in the middle of it, and writes the delivery once', async () => {
  const alice = await connect({ dataDir: dirs[0], name: 'Alice' });
  const marker = `${tempDir('anx-remote-crash-')}/started`;
  try {
    // The first run of the script leaves its pid and never ends; after the restart it delivers.
    const { did: dave, run_id } = await scriptedWriterRun(
      alice.did,
      'Dave',
      'crash',
      "const fs=require('fs');const f=process.argv[1];if(fs.existsSync(f))process.stdout.write('notes after the restart');else{fs.writeFileSync(f,String(process.pid));setInterval(()=>{},1000)}",
      marker,
    );
    await waitFor(() => existsSync(marker) && readFileSync(marker, 'utf8') !== '', 60_000, 'the script runs');
    away = await restartHard(relayed, 1, { ANX_HEARTBEAT_MS: '400' });
    await completed(run_id, 'the run completes after the restart');
    const { versions } = await home.api.get<{ versions: Version[] }>(
      `/v1/vault/crash/history?${new URLSearchParams({ key: 'notes.md', as: alice.did })}`,
    );
    expect(versions.map((v) => [v.version, v.author])).toEqual([[1, dave]]);
    const notes = await home.api.get<{ content: string }>(
      `/v1/vault/crash/get?${new URLSearchParams({ key: 'notes.md', as: alice.did })}`,
    );
    expect(notes.content).toBe('notes after the restart');
  } finally {
    // The first script outlived its daemon.
    stopPidIn(marker);
    await alice.close();
  }
}, 180_000);

it('stops the work on host B when the run on host A moves on without it (a stage timeout), and the retry delivers', async () => {
  const alice = await connect({ dataDir: dirs[0], name: 'Alice' });
  const marker = `${tempDir('anx-remote-timeout-')}/first`;
  try {
    // The first attempt leaves its pid and never ends; the second delivers.
    const { did: erin, run_id } = await scriptedWriterRun(
      alice.did,
      'Erin',
      'slow',
      "const fs=require('fs');if(process.env.ANX_ATTEMPT==='1'){fs.writeFileSync(process.argv[1],String(process.pid));setInterval(()=>{},1000)}else process.stdout.write('notes, second attempt')",
      marker,
      { timeout: 3000, retries: 1 },
    );
    await completed(run_id, 'the run completes on its second attempt');
    expect((await home.api.get<RunStatus>(`/v1/runs/${run_id}`)).stages[0]).toMatchObject({
      status: 'delivered',
      attempt: 2,
    });
    // The first attempt's process was stopped on host B when host A's stage.cancel arrived.
    const first = Number(readFileSync(marker, 'utf8'));
    await waitFor(() => processGone(first), 30_000, 'the first attempt to be stopped');
    // Host B learns its delivery was taken from the home's answer, which may land after the run
    // completed on host A: then nothing is open on B any more.
    await waitFor(
      async () =>
        (await away.api.get<{ tasks: unknown[] }>(`/v1/workers/${encodeURIComponent(erin)}/tasks`)).tasks
          .length === 0,
      30_000,
      'no open task left on host B',
    );
  } finally {
    stopPidIn(marker);
    await alice.close();
  }
}, 180_000);
