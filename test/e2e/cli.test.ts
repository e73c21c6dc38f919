import { spawnSync } from 'node:child_process';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { type AddressInfo, createServer } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkCliConfig } from '../../bridge/workers/cli.ts';
import { checkScriptSpec } from '../../bridge/workers/script.ts';
import { formatDuration, printable } from '../../runtime/cli/format.ts';
import { secretArg } from '../../runtime/cli/secret-arg.ts';
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
  it('shows control characters from others as visible escapes in text output, keeping lines and tabs', () => {
    // A window title, a screen clear, a clipboard write (OSC 52), a carriage return and a C1 CSI.
    const hostile = 'evil \u001b]0;pwned\u0007 \u001b[2J \u001b]52;c;ZXZpbA==\u0007 a\rb \u009b31m';
    expect(printable(hostile)).toBe(
      'evil \\x1b]0;pwned\\x07 \\x1b[2J \\x1b]52;c;ZXZpbA==\\x07 a\\x0db \\x9b31m',
    );
    expect(printable('two\tcolumns\nnext line é ✓')).toBe('two\tcolumns\nnext line é ✓');
  });

  it('states a duration in the largest whole unit', () => {
    expect([7 * 86_400_000, 36 * 3_600_000, 90_000, 1_500, 250, 0].map(formatDuration)).toEqual([
      '7d',
      '36h',
      '90s',
      '1500ms',
      '250ms',
      '0ms',
    ]);
  });

  it('refuses worker time limits that Node timers cannot hold (they would fire at once)', () => {
    expect(() => checkScriptSpec({ argv: ['true'], timeout_ms: 25 * 24 * 3_600_000 })).toThrow(
      /at most 2147483647/,
    );
    expect(() => checkCliConfig({ adapter: 'cli', command: ['true'], timeout_ms: 2 ** 31 })).toThrow(
      /at most/,
    );
    expect(checkScriptSpec({ argv: ['true'], timeout_ms: 2 ** 31 - 1 }).timeout_ms).toBe(2 ** 31 - 1);
  });

  it('documents every command and the exit codes in --help', () => {
    const r = cli('--help');
    expect(r.code).toBe(0);
    for (const command of ['start', 'status', 'stop', 'id', 'send', 'inbox', 'trace', 'Exit codes']) {
      expect(r.stdout).toContain(command);
    }
    expect(cli('send', '--help').stdout).toContain('--from <did>');
  });

  it('reports usage errors and the version as JSON on stdout with --json', () => {
    for (const args of [['send'], ['bogus'], ['id', 'new', '--bogus']]) {
      const r = cli('--json', ...args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr).toBe('');
      const { error } = JSON.parse(r.stdout) as { error: { code: string; message: string; hint: string } };
      expect(error.code).toBe('ANX_ARGUMENT_USAGE');
      expect(error.message.length).toBeGreaterThan(0);
      expect(error.hint.length).toBeGreaterThan(0);
    }
    const plain = cli('send');
    expect(plain.code).toBe(2);
    expect(plain.stderr).toContain("required option '--from <did>' not specified");
    expect(JSON.parse(cli('--json', '--version').stdout)).toEqual({ version: expect.any(String) });
    expect(cli('--version').stdout.trim()).toMatch(/^\d+\.\d+\.\d+/);
  });

  it('refuses a bad artifact version instead of printing the program version, with a hint', () => {
    for (const args of [
      ['vault', 'get', 'enc', 'key', '--version', 'latest'],
      ['run', 'takeover', 'r1', 'deliver', '--version', '0'],
    ]) {
      const r = cli(...args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stdout).toBe('');
      expect(r.stderr).toMatch(/--version expected an artifact version/);
      expect(r.stderr).toContain('hint: leave --version out for the latest version');
    }
  });

  it('gives every argument error a hint, pointing at the command when it has none of its own', () => {
    const port = cli('--json', 'start', '--port', 'abc');
    expect(port.code).toBe(2);
    expect(JSON.parse(port.stdout).error.hint).toBe(
      'see `anx-runtime start --help` for what each option takes',
    );
    const takeover = cli('run', 'takeover', 'r1', 'explode');
    expect(takeover.stderr).toContain('hint: see `anx-runtime run takeover --help`');
    const template = cli(
      'run',
      'start',
      '--playbook',
      'nosuch',
      '--objective',
      'x',
      '--owner',
      'did:x',
      '--enclave',
      'e',
    );
    expect(template.code).toBe(2);
    expect(template.stderr).toContain('no such template or file');
    expect(template.stderr).toContain('hint: the templates are dev-team, pipeline');
  });

  it('inspects a token with no daemon: chain verified here, revocation said to be unchecked', () => {
    const vectors = JSON.parse(
      readFileSync(join(import.meta.dirname, '../vectors/capability-tokens.json'), 'utf8'),
    ) as {
      valid: Array<{ token: string; grant: { id: string; holder: string } }>;
      invalid: Array<{ name: string; token: string; code: string }>;
    };
    const chain = vectors.valid[1] as (typeof vectors.valid)[number];
    const r = cli('--json', 'token', 'inspect', chain.token);
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as Record<string, unknown>;
    expect(out).toMatchObject({
      id: chain.grant.id,
      holder: chain.grant.holder,
      offline: true,
      valid_now: false,
      revoked: null,
    });
    expect(out['unverifiable']).toMatch(/revocation not checked/);
    expect(out['chain']).toHaveLength(3);
    const text = cli('token', 'inspect', chain.token);
    expect(text.stdout).toContain('revocation not checked (no daemon runs for this data directory)');
    const tampered = vectors.invalid.find(
      (v) => v.code === 'ANX_TOKEN_INVALID',
    ) as (typeof vectors.invalid)[number];
    const bad = cli('--json', 'token', 'inspect', tampered.token);
    expect(bad.code).toBe(5);
    expect(JSON.parse(bad.stdout).error.code).toBe('ANX_TOKEN_INVALID');
  });

  it('reads secret arguments from text, @FILE or stdin, and names what it could not read', () => {
    const file = join(tempDir(), 'secret');
    writeFileSync(file, '  s3cret-value\n', { mode: 0o600 });
    expect(secretArg('plain', '--secret')).toBe('plain');
    expect(secretArg(`@${file}`, '--secret')).toBe('s3cret-value');
    expect(() => secretArg(`@${file}.missing`, 'the token')).toThrow(/cannot read the token from @.*missing/);
    writeFileSync(file, '\n');
    expect(() => secretArg(`@${file}`, '--secret')).toThrow(/--secret from @.* is empty/);
    // `-` is stdin: a dispatch given its token that way fails on the token, not on reading it.
    const r = spawnSync(
      process.execPath,
      [CLI, '--data-dir', tempDir(), 'abort', 'sess', '--actor', 'did:agentnexus:z6Mkx', '--token', '-'],
      { input: '', encoding: 'utf8', timeout: 60_000 },
    );
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('the token from stdin is empty');
  });

  it('says clearly that no daemon runs, with exit code 3', () => {
    const r = cli('status');
    expect(r.code).toBe(3);
    expect(r.stderr).toContain('no anx-runtime daemon is running');
    expect(r.stderr).toContain('hint: start one with `anx-runtime start`');
  });

  it('reports why a detached daemon could not start, with its exit code, instead of only that it exited', async () => {
    const holder = createServer();
    await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', resolve));
    try {
      const port = (holder.address() as AddressInfo).port;
      const own = tempDir();
      const r = spawnSync(
        process.execPath,
        [CLI, '--data-dir', own, 'start', '--detach', '--port', String(port)],
        {
          encoding: 'utf8',
          timeout: 60_000,
        },
      );
      expect(r.status).toBe(5);
      expect(r.stderr).toContain(`error: port ${port} on 127.0.0.1 is in use`);
      expect(r.stderr).toMatch(/hint: stop what holds it.*the daemon's log: .*daemon\.log/);
    } finally {
      holder.close();
    }
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

    const status = json<{
      running: boolean;
      identities: number;
      outbox: number;
      seen: { entries: number; retentionMs: number };
    }>('status');
    expect(status).toMatchObject({ running: true, identities: 2, outbox: 0 });
    // Ids the host made itself leave no marker; one a caller gives is kept for dedupe, a day on a host
    // without a relay.
    const given = 'cli-given-id-0000000001';
    expect(
      json<{ id: string }>('send', '--from', alice.did, '--to', bob.did, '--id', given, 'again').id,
    ).toBe(given);
    expect(json<{ seen: { entries: number } }>('status').seen.entries).toBe(status.seen.entries + 1);
    expect(status.seen.retentionMs).toBe(24 * 60 * 60_000);
    expect(cli('status').stdout).toMatch(/accepted ids kept\s+\d+ \(for 1d after their ts\)/);
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
