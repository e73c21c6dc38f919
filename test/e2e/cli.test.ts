import { spawnSync } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI, waitFor } from '../helpers/daemon.ts';
import { cleanupTempDirs, tempDir } from '../helpers/tmp.ts';

let dataDir: string;

function cli(...args: string[]) {
  const result = spawnSync(process.execPath, [CLI, '--data-dir', dataDir, ...args], {
    encoding: 'utf8',
    timeout: 60_000,
  });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

function json<T>(...args: string[]): T {
  const r = cli('--json', ...args);
  expect(r.code, r.stderr + r.stdout).toBe(0);
  return JSON.parse(r.stdout) as T;
}

beforeAll(() => {
  dataDir = tempDir();
});

afterAll(() => {
  // Stop the daemon we started if a test failed before `stop`.
  try {
    const info = JSON.parse(readFileSync(join(dataDir, 'daemon.json'), 'utf8')) as { pid: number };
    process.kill(info.pid, 'SIGTERM');
  } catch {
    // not running
  }
  cleanupTempDirs();
});

describe('anx-runtime CLI', () => {
  it('documents every command and the exit codes in --help', () => {
    const r = cli('--help');
    expect(r.code).toBe(0);
    for (const command of ['start', 'status', 'stop', 'id', 'send', 'inbox', 'trace', 'Exit codes']) {
      expect(r.stdout).toContain(command);
    }
    expect(cli('send', '--help').stdout).toContain('--from <did>');
  });

  it('says clearly that no daemon runs, with exit code 3', () => {
    const r = cli('status');
    expect(r.code).toBe(3);
    expect(r.stderr).toContain('no anx-runtime daemon is running');
    expect(r.stderr).toContain('hint: start one with `anx-runtime start`');
  });

  it('runs the whole flow against a detached daemon', { timeout: 240_000 }, async () => {
    const started = json<{ url: string; pid: number }>('start', '--detach', '--port', '0');
    expect(started.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(statSync(join(dataDir, 'api.token')).mode & 0o777).toBe(0o600);
    expect(statSync(join(dataDir, 'host.key')).mode & 0o777).toBe(0o600);

    const again = cli('start', '--port', '0');
    expect(again.code).toBe(5);
    expect(again.stderr).toContain('already running');

    const alice = json<{ did: string }>('id', 'new', '--name', 'alice');
    const bob = json<{ did: string }>('id', 'new', '--name', 'bob');
    expect(alice.did).toMatch(/^did:agentnexus:z6Mk/);
    const shown = json<{ did: string; document: { id: string; keyAgreement: unknown[] } }>(
      'id',
      'show',
      alice.did,
    );
    expect(shown.document.id).toBe(alice.did);
    expect(shown.document.keyAgreement).toHaveLength(1);
    expect(JSON.stringify(shown)).not.toMatch(/seed|private/i);
    const ids = json<Array<{ did: string; name: string }>>('id', 'list');
    expect(ids.map((i) => i.name).sort()).toEqual(['alice', 'bob']);

    const sent = cli('send', '--from', alice.did, '--to', bob.did, 'hello', 'bob');
    expect(sent.code, sent.stderr).toBe(0);
    const messageId = sent.stdout.trim();
    await waitFor(() => json<{ received: number }>('inbox', bob.did).received === 1, 30_000, 'delivery');
    const inbox = json<{ messages: Array<{ id: string; from: string; body: { text: string } }> }>(
      'inbox',
      bob.did,
    );
    expect(inbox.messages).toEqual([
      expect.objectContaining({ id: messageId, from: alice.did, body: { text: 'hello bob' } }),
    ]);
    expect(cli('inbox', bob.did).stdout).toContain('hello bob');

    const events = json<Array<{ kind: string; payload: { id: string } }>>(
      'trace',
      bob.did,
      '--kind',
      'message',
    );
    expect(events.map((e) => e.payload.id)).toEqual([messageId]);
    expect(cli('trace', bob.did).stdout).toContain('message');

    const status = json<{ running: boolean; identities: number; outbox: number }>('status');
    expect(status).toMatchObject({ running: true, identities: 2, outbox: 0 });
    // No private key material anywhere in what the CLI prints.
    const seedish = readFileSync(join(dataDir, 'host.key')).toString('hex');
    expect(JSON.stringify(ids) + JSON.stringify(status)).not.toContain(seedish);

    // Bad input: typed errors, documented exit codes, the daemon keeps running.
    const badDid = cli('send', '--from', 'bob', '--to', bob.did, 'x');
    expect(badDid.code).toBe(2);
    expect(badDid.stderr).toContain('"from" expected a did:agentnexus DID, got "bob"');
    const notLocal = cli(
      'send',
      '--from',
      'did:agentnexus:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK',
      '--to',
      bob.did,
      'x',
    );
    expect(notLocal.code).toBe(5);
    expect(notLocal.stderr).toContain('holds no key');
    const unknown = cli('inbox', 'did:agentnexus:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK');
    expect(unknown.code).toBe(4);
    const badKind = cli('trace', bob.did, '--kind', 'gossip');
    expect(badKind.code).toBe(2);
    expect(badKind.stderr).toContain('"kind" expected one of');
    const badJson = cli('--json', 'send', '--from', alice.did, '--to', bob.did, '--body-json', '{oops');
    expect(badJson.code).toBe(2);
    expect(JSON.parse(badJson.stdout).error.code).toBe('ANX_ARGUMENT_INVALID');
    expect(json<{ running: boolean }>('status').running).toBe(true);

    const stopped = cli('stop');
    expect(stopped.code).toBe(0);
    expect(cli('status').code).toBe(3);
  });
});
