// The authority CLI against a real daemon process: freeze/thaw through the local API (persisted across a restart), tokens, and
// `audit verify` catching a record edited in LMDB while the daemon was stopped.
import { spawnSync } from 'node:child_process';
import { open } from 'lmdb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI, type DaemonProcess, startDaemonProcess } from '../helpers/daemon.ts';
import { cleanupTempDirs, tempDir } from '../helpers/tmp.ts';

let dataDir: string;
let daemon: DaemonProcess;
let owner: string;
let worker: string;

function cli(...args: string[]) {
  const r = spawnSync(process.execPath, [CLI, '--data-dir', dataDir, ...args], {
    encoding: 'utf8',
    timeout: 60_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function json<T>(...args: string[]): T {
  const r = cli('--json', ...args);
  if (r.code !== 0) throw new Error(`anx-runtime ${args.join(' ')} exited ${r.code}: ${r.stdout}${r.stderr}`);
  return JSON.parse(r.stdout) as T;
}

/**
 * The test's API client. A request that never reached the daemon (refused: it is restarting) is sent
 * once more. (Idle connections live a minute on the daemon's side, longer than the CLI processes run
 * between calls here; a read cut off on one is sent again by the client itself.)
 */
async function again<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (err) {
    if ((err as { code?: string }).code !== 'ANX_DAEMON_NOT_RUNNING') throw err;
    return call();
  }
}
const client = {
  get: <T>(path: string) => again(() => daemon.api.get<T>(path)),
  post: <T>(path: string, body?: unknown) => again(() => daemon.api.post<T>(path, body)),
};

async function stop(): Promise<void> {
  if (daemon.child.exitCode !== null) return;
  const exited = new Promise<void>((r) => daemon.child.once('exit', () => r()));
  process.kill(daemon.pid, 'SIGTERM');
  await exited;
}

beforeAll(async () => {
  dataDir = tempDir('anx-freeze-cli-');
  daemon = await startDaemonProcess(dataDir, 60_000);
  owner = json<{ did: string }>('id', 'new', '--name', 'owner').did;
  worker = json<{ did: string }>('id', 'new', '--name', 'worker').did;
  await client.post('/v1/enclaves', { owner, id: 'enc1' });
}, 300_000);

afterAll(async () => {
  await stop();
  cleanupTempDirs();
});

describe('authority CLI', () => {
  it('freezes the host through the local API: writes refused with exit code 5, reads served, state kept across a restart', async () => {
    const frozen = json<{ frozen: boolean; reason: string }>('freeze', '--reason', 'incident drill');
    expect(frozen).toMatchObject({ frozen: true, reason: 'incident drill' });
    const put = await client.post('/v1/vault/enc1/put', { as: owner, key: 'notes/a.md', content: 'x' }).then(
      () => 'ALLOWED',
      (err: { code?: string }) => err.code,
    );
    expect(put).toBe('ANX_FROZEN');
    const issue = cli(
      'token',
      'issue',
      '--from',
      owner,
      '--to',
      worker,
      '--resource',
      'vault:enc1',
      '--action',
      'vault.get',
    );
    expect(issue.code).toBe(5);
    expect(issue.stderr).toMatch(/frozen/);
    expect((await client.get<{ identities: number }>('/v1/status')).identities).toBe(2);
    expect(cli('freeze', '--status').stdout).toMatch(
      /frozen \(read-only\) since .* by operator: incident drill/,
    );

    await stop();
    daemon = await startDaemonProcess(dataDir, 60_000);
    expect(json<{ frozen: boolean }>('freeze', '--status').frozen).toBe(true);
    expect(json<{ frozen: boolean }>('thaw').frozen).toBe(false);
    const ok = await client.post<{ ref: { version: number } }>('/v1/vault/enc1/put', {
      as: owner,
      key: 'notes/a.md',
      content: 'x',
    });
    expect(ok.ref.version).toBe(1);
  }, 300_000);

  it('issues, delegates, inspects and revokes tokens from the command line', () => {
    const root = cli(
      'token',
      'issue',
      '--from',
      owner,
      '--to',
      worker,
      '--resource',
      'vault:enc1',
      '--action',
      'vault.get,vault.put',
      '--ttl',
      '1h',
    );
    expect(root.code).toBe(0);
    const token = root.stdout.trim();
    expect(token.startsWith('anx1.')).toBe(true);
    const widened = cli('token', 'delegate', token, '--to', owner, '--action', 'vault.delete');
    expect(widened.code).toBe(5);
    expect(widened.stderr).toMatch(/ANX_TOKEN_WIDENED|widen/);
    const child = json<{ token: string; grant: { actions: string[]; holder: string } }>(
      'token',
      'delegate',
      token,
      '--to',
      owner,
      '--action',
      'vault.get',
      '--max-bytes',
      '1000',
    );
    expect(child.grant).toMatchObject({ actions: ['vault.get'], holder: owner });
    const inspected = json<{ chain: string[]; valid_now: boolean }>('token', 'inspect', child.token);
    expect(inspected).toMatchObject({ valid_now: true });
    expect(inspected.chain).toHaveLength(2);
    const revoked = json<{ id: string; by: string; distributed: boolean }>(
      'token',
      'revoke',
      token,
      '--reason',
      'rotated',
    );
    expect(revoked).toMatchObject({ by: owner, distributed: false });
    const after = json<{ valid_now: boolean; revoked: string }>('token', 'inspect', child.token);
    expect(after.valid_now).toBe(false);
    expect(after.revoked).toMatch(/revoked/);
  }, 300_000);

  it('answers trust and revocation requests through the API and `trust show`', async () => {
    const att = await client.post<{ iss: string; sub: string; value: number }>('/v1/trust/attest', {
      issuer: owner,
      subject: worker,
      value: 70,
      note: 'delivers on time',
    });
    expect(att).toMatchObject({ iss: owner, sub: worker, value: 70 });
    const bad = await client.post('/v1/trust/attestations', { attestation: { ...att, value: 90 } }).then(
      () => 'ALLOWED',
      (err: { code?: string }) => err.code,
    );
    expect(bad).toBe('ANX_ATTESTATION_INVALID');
    const forged = await client.post('/v1/revocations', { revocation: { v: 1 } }).then(
      () => 'ALLOWED',
      (err: { code?: string }) => err.code,
    );
    expect(forged).toBe('ANX_REVOCATION_INVALID');
    const shown = cli('trust', 'show', worker);
    expect(shown.code).toBe(0);
    expect(shown.stdout).toMatch(new RegExp(`${worker}: 0\\.\\d\\d[\\s\\S]*attestation 70 by ${owner}`));
  }, 300_000);

  it('lists audit records and verifies the log; an edit made in LMDB makes verify fail with exit code 6', async () => {
    const list = json<{ entries: Array<{ seq: number; action: string; decision: string }> }>('audit', 'list');
    const actions = list.entries.map((e) => `${e.action}:${e.decision}`);
    expect(actions).toEqual(
      expect.arrayContaining([
        'host.freeze:allow',
        'vault.put:deny',
        'token.issue:deny',
        'host.thaw:allow',
        'token.issue:allow',
        'token.revoke:allow',
      ]),
    );
    const q = 'decision=deny&action=token.delegate';
    expect((await client.get<{ entries: unknown[] }>(`/v1/audit?${q}`)).entries).toHaveLength(1);
    const good = json<{ ok: boolean; count: number }>('audit', 'verify');
    expect(good).toMatchObject({ ok: true, count: list.entries.length });

    await stop();
    const env = open({ path: dataDir, maxDbs: 64, compression: false });
    const db = env.openDB({ name: 'audit', useRecords: false } as never);
    const rec = db.get(2) as Record<string, unknown>;
    await db.put(2, { ...rec, decision: 'allow', reason: 'edited' });
    await env.close();
    daemon = await startDaemonProcess(dataDir, 60_000);
    const bad = cli('--json', 'audit', 'verify');
    expect(bad.code).toBe(6);
    expect(JSON.parse(bad.stdout)).toMatchObject({
      ok: false,
      problems: [expect.objectContaining({ seq: 2, kind: 'altered' })],
    });
    const text = cli('audit', 'verify');
    expect(text.code).toBe(6);
    expect(text.stdout).toMatch(/does NOT verify[\s\S]*#2 altered/);
  }, 300_000);
});
