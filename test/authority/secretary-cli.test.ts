// The CLI of who acts for whom against a real daemon: owner, secretary, bind, dispatch (and its refusals), status, abort, gatekeeper.
import { afterAll, beforeAll, expect, it } from 'vitest';
import {
  type CliResult,
  type DaemonProcess,
  killHard,
  runCli,
  runCliJson,
  startDaemonProcess,
} from '../helpers/daemon.ts';
import { cleanupTempDirs, tempDir } from '../helpers/tmp.ts';

let daemon: DaemonProcess;
let dataDir: string;

const cli = (...args: string[]): Promise<CliResult> => runCli(dataDir, ...args);

const json = <T>(...args: string[]): Promise<T> => runCliJson<T>(dataDir, ...args);

beforeAll(async () => {
  dataDir = tempDir();
  daemon = await startDaemonProcess(dataDir);
}, 60_000);
afterAll(async () => {
  await killHard(daemon);
  cleanupTempDirs();
});

it('registers, binds, dispatches, shows who does what and aborts; refusals exit 5 with a hint', async () => {
  const owner = (await json<{ did: string }>('owner', 'register', 'Kevin')).did;
  const secretary = (await json<{ did: string }>('secretary', 'register', owner, '--name', 'Sec')).did;
  const dev = (await json<{ did: string }>('id', 'new', '--name', 'dev')).did;
  const bound = await json<{ state: string; statement: { role: string } }>(
    'owner',
    'bind',
    owner,
    dev,
    '--role',
    'developer',
    '--expires',
    '30d',
  );
  expect(bound).toMatchObject({ state: 'active', statement: { role: 'developer' } });

  const args = ['--session', 'sess_cli', '--owner', owner, '--actor', secretary, '--role', 'developer'];
  const first = await cli('dispatch', ...args, '--source', 'message_ref=msg_9', 'Implement', 'login');
  expect(first.code, first.stderr).toBe(0);
  expect(first.stdout).toMatch(/dispatch sess_cli: waiting/);
  expect(first.stdout).toMatch(
    /developer\s+did:agentnexus:\S+\s+unknown, trust 0\.50, 0 running task\(s\); best of 1/,
  );

  const replay = await cli('dispatch', ...args, 'Something else');
  expect(replay.code).toBe(5);
  expect(replay.stderr).toMatch(/session sess_cli was dispatched before/);
  expect(replay.stderr).toMatch(/^hint: /m);
  const unbound = await cli(
    'dispatch',
    '--session',
    's2',
    '--owner',
    owner,
    '--actor',
    dev,
    '--role',
    'developer',
    'x',
  );
  expect(unbound.code).toBe(5);
  expect(unbound.stderr).toMatch(/bound to .* as developer, which does not let it dispatch/);
  const noTester = await cli('dispatch', ...args.slice(0, 6), '--session', 's3', '--role', 'tester', 'x');
  expect(noTester.code).toBe(5);
  expect(noTester.stderr).toContain('no worker for role "tester"');

  const status = await json<{ state: string; source: Record<string, string>; run: { stages: unknown[] } }>(
    'dispatches',
    'status',
    'sess_cli',
    '--actor',
    owner,
  );
  expect(status).toMatchObject({ state: 'waiting', source: { channel: 'cli', message_ref: 'msg_9' } });
  expect(status.run.stages).toHaveLength(1);
  const aborted = await cli('abort', 'sess_cli', '--actor', owner, '--reason', 'changed');
  expect(aborted.code, aborted.stderr).toBe(0);
  expect(aborted.stdout).toMatch(/dispatch sess_cli: aborted/);
  const list = await json<Array<{ session_id: string; state: string }>>('dispatches');
  expect(list).toEqual([expect.objectContaining({ session_id: 'sess_cli', state: 'aborted' })]);
  const missing = await cli('dispatches', 'status', 'nope');
  expect(missing.code).toBe(4);

  const unbind = await json<{ unbound: unknown[] }>('owner', 'unbind', owner, dev);
  expect(unbind.unbound).toHaveLength(1);
  const bindings = await json<Array<{ state: string; statement: { role: string } }>>(
    'owner',
    'bindings',
    '--owner',
    owner,
  );
  expect(bindings.map((b) => `${b.statement.role}:${b.state}`).sort()).toEqual([
    'developer:unbound',
    'secretary:active',
  ]);
}, 180_000);

it("holds a stranger's message in ask mode and lets the owner approve it from the CLI", async () => {
  const me = (await json<{ did: string }>('id', 'new', '--name', 'me')).did;
  const stranger = (await json<{ did: string }>('id', 'new', '--name', 'stranger')).did;
  const set = await json<{ mode: string }>('gatekeeper', 'set', me, '--mode', 'ask', '--pending-ttl', '1h');
  expect(set.mode).toBe('ask');
  expect((await cli('send', '--from', stranger, '--to', me, 'knock knock')).code).toBe(0);
  let pending: Array<{ id: string; from: string }> = [];
  for (let i = 0; i < 100 && pending.length === 0; i++) {
    pending = await json('gatekeeper', 'pending', me);
    if (pending.length === 0) await new Promise((r) => setTimeout(r, 100));
  }
  expect(pending).toEqual([expect.objectContaining({ from: stranger })]);
  const approved = await cli('gatekeeper', 'approve', me, (pending[0] as { id: string }).id);
  expect(approved.code, approved.stderr).toBe(0);
  const inbox = await json<{ messages: Array<{ from: string }> }>('inbox', me);
  expect(inbox.messages.map((m) => m.from)).toEqual([stranger]);
  const shown = await json<{ allow: string[]; held: number }>('gatekeeper', 'show', me);
  expect(shown).toMatchObject({ allow: [stranger], held: 0 });
  const again = await cli('gatekeeper', 'deny', me, (pending[0] as { id: string }).id);
  expect(again.code).toBe(4);
  expect(again.stderr).toMatch(/hint: list what waits/);
  // An id that begins with '-' (possible for ids made elsewhere) is passed after '--'; without it the
  // error says how.
  const dashed = await cli('gatekeeper', 'deny', me, '-9WH9Ds0EVGzvrCB8f8n1g');
  expect(dashed.code).toBe(2);
  expect(dashed.stderr).toContain("hint: an argument that begins with '-' goes after '--'");
  expect((await cli('gatekeeper', 'deny', me, '--', '-9WH9Ds0EVGzvrCB8f8n1g')).code).toBe(4);
  const badMode = await cli('gatekeeper', 'set', me, '--mode', 'open');
  expect(badMode.code).toBe(2);
}, 120_000);
