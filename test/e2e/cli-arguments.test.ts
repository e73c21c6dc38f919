// The CLI's own checks of its arguments (numbers, JSON, files, option pairs), run as the real `anx-runtime`.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseInteger } from '../../runtime/cli/args.ts';
import { relayJoinOptions } from '../../runtime/cli/relay-commands.ts';
import {
  type CliResult,
  type DaemonProcess,
  killHard,
  runCli,
  startDaemonProcess,
} from '../helpers/daemon.ts';
import { cleanupTempDirs, tempDir } from '../helpers/tmp.ts';

const DID = 'did:agentnexus:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK';

// No daemon runs for this directory: an argument the CLI refuses exits 2, one it takes reaches the
// point of asking the daemon and exits 3.
let noDaemon: string;
const cli = (...args: string[]): Promise<CliResult> => runCli(noDaemon, ...args);

interface JsonError {
  error: { code: string; message: string; hint?: string };
}

async function refused(args: string[], code = 2): Promise<JsonError['error']> {
  const r = await cli('--json', ...args);
  expect(r.code, `${args.join(' ')}: ${r.stdout}${r.stderr}`).toBe(code);
  return (JSON.parse(r.stdout) as JsonError).error;
}

beforeAll(() => {
  noDaemon = tempDir();
});
afterAll(() => cleanupTempDirs());

describe('send --body-json', () => {
  it('refuses a number JSON cannot hold (1e999 would be sent as null), naming the option and where', async () => {
    const nested = await refused(['send', '--from', DID, '--to', DID, '--body-json', '{"a":[1,1e999]}']);
    expect(nested.code).toBe('ANX_ARGUMENT_INVALID');
    expect(nested.message).toBe(
      '--body-json expected JSON with finite numbers (at most about 1.8e308 in size), got a number out of range at $.a[1]',
    );
    expect(nested.hint).toMatch(/give it as a string/);
    const top = await refused(['send', '--from', DID, '--to', DID, '--body-json', '-1e999']);
    expect(top.message).toMatch(/^--body-json expected JSON with finite numbers.* at \$$/);
    // A large number a double holds is JSON: it is taken (and the command goes on to find no daemon).
    const large = await cli('send', '--from', DID, '--to', DID, '--body-json', '{"a":1e308}');
    expect(large.code, large.stderr).toBe(3);
  });
});

describe('options that take a number', () => {
  it('refuses an empty, blank or non-decimal value instead of reading it as 0, naming the flag and the range', async () => {
    const cases: Array<[string[], string]> = [
      [['inbox', DID, '--limit', ''], '--limit expected an integer of 0 or more, got ""'],
      [['inbox', DID, '--after', ' '], '--after expected an integer of 0 or more, got " "'],
      [['inbox', DID, '--mark-read', '--through', ''], '--through expected an integer of 0 or more, got ""'],
      [['trace', DID, '--limit', '1e3'], '--limit expected an integer of 0 or more, got "1e3"'],
      [['audit', 'list', '--limit', ''], '--limit expected an integer from 1 to 10000, got ""'],
      [['audit', 'list', '--after', '0x10'], '--after expected an integer of 0 or more, got "0x10"'],
      [
        ['trust', 'attest', '--from', DID, '--about', DID, '--value', ''],
        '--value expected an integer from -100 to 100, got ""',
      ],
      [
        [
          'token',
          'issue',
          '--from',
          DID,
          '--to',
          DID,
          '--resource',
          'vault:e',
          '--action',
          'vault.get',
          '--max-bytes',
          '',
        ],
        '--max-bytes expected an integer of 0 or more, got ""',
      ],
      [['token', 'revoke', 'anx1.x', '--link', ''], '--link expected an integer from 0 to 7, got ""'],
      [['card', 'publish', DID, '--qps', ''], '--qps expected an integer of 0 or more, got ""'],
      [
        ['worker', 'run', '--did', DID, '--role', 'dev', '--config', 'w.yaml', '--poll', ''],
        '--poll expected an integer of 1 or more (milliseconds), got ""',
      ],
      [
        ['worker', 'run', '--did', DID, '--role', 'dev', '--config', 'w.yaml', '--max-tasks', '1.0'],
        '--max-tasks expected an integer of 1 or more, got "1.0"',
      ],
      [['relay', 'start', '--leaf-port', ''], '--leaf-port expected an integer from 0 to 65535, got ""'],
      // `start --leaf-port` used to be reported as --port.
      [['start', '--leaf-port', 'x'], '--leaf-port expected an integer from 0 to 65535, got "x"'],
    ];
    for (const [args, message] of cases) {
      const error = await refused(args);
      expect(error.code, args.join(' ')).toBe('ANX_ARGUMENT_INVALID');
      expect(error.message, args.join(' ')).toBe(message);
    }
    // A number with blanks around it is still that number.
    expect((await cli('inbox', DID, '--limit', ' 5 ')).code).toBe(3);
  });

  it('parses whole numbers in decimal digits only, within the range', () => {
    expect(parseInteger('--n', '42')).toBe(42);
    expect(parseInteger('--n', '-7', -10, 10)).toBe(-7);
    expect(parseInteger('--n', '007')).toBe(7);
    for (const bad of ['', '  ', '1e3', '0x10', '1.5', '+', '-', 'Infinity', '9007199254740993'])
      expect(() => parseInteger('--n', bad), JSON.stringify(bad)).toThrow(/--n expected an integer/);
    expect(() => parseInteger('--n', '11', 0, 10)).toThrow('--n expected an integer from 0 to 10, got "11"');
  });
});

describe('token issue and token delegate', () => {
  it('refuses --ttl together with --expires instead of letting one win', async () => {
    for (const args of [
      ['token', 'issue', '--from', DID, '--to', DID, '--resource', 'vault:e', '--action', 'vault.get'],
      ['token', 'delegate', 'anx1.x', '--to', DID],
    ]) {
      const error = await refused([...args, '--ttl', '1h', '--expires', '2030-01-01T00:00:00Z']);
      expect(error.code).toBe('ANX_ARGUMENT_INVALID');
      expect(error.message).toContain('--ttl or --expires, not both');
      // Either alone is taken.
      expect((await cli(...args, '--ttl', '1h')).code).toBe(3);
    }
  });
});

describe('flags checked before the daemon is asked', () => {
  it('refuses a bad --expires, --pending-ttl or --assign as the user error it is, whether a daemon runs or not', async () => {
    const cases: Array<[string[], string]> = [
      [['owner', 'bind', DID, DID, '--expires', 'soon'], '--expires expected a duration'],
      [['secretary', 'register', DID, '--expires', 'soon'], '--expires expected a duration'],
      [['gatekeeper', 'set', DID, '--pending-ttl', 'forever'], '--pending-ttl expected a duration'],
      [
        [
          'run',
          'start',
          '--playbook',
          'dev-team',
          '--objective',
          'x',
          '--owner',
          DID,
          '--enclave',
          'e',
          '--assign',
          'bad',
        ],
        '--assign expected ROLE=DID',
      ],
    ];
    for (const [args, message] of cases) {
      const error = await refused(args);
      expect(error.code).toBe('ANX_ARGUMENT_INVALID');
      expect(error.message).toContain(message);
    }
    // Good values get as far as asking the daemon (none runs here: exit 3).
    expect((await cli('secretary', 'register', DID, '--expires', '30d')).code).toBe(3);
    expect((await cli('gatekeeper', 'set', DID, '--pending-ttl', '15m')).code).toBe(3);
  });
});

describe('files named on the command line', () => {
  it('refuses a file that cannot be read as the user error it is (exit 2), with the reason and a hint', async () => {
    const missing = join(noDaemon, 'missing.md');
    const plain = await cli('run', 'takeover', 'r1', 'deliver', '--file', missing);
    expect(plain.code, plain.stderr).toBe(2);
    expect(plain.stderr).toContain(
      `error: --file expected a file to read, got "${missing}": no such file or directory (ENOENT)`,
    );
    expect(plain.stderr).toContain('hint: give the path of the file to deliver');
    const cases: Array<[string[], string]> = [
      [
        ['run', 'takeover', 'r1', 'deliver', '--file', noDaemon],
        `--file expected a file to read, got "${noDaemon}": it is a directory (EISDIR)`,
      ],
      [
        ['vault', 'put', 'e', 'k', missing, '--as', DID],
        `FILE expected a file to read, got "${missing}": no such file or directory (ENOENT)`,
      ],
      [
        ['playbook', 'validate', noDaemon],
        `FILE expected a file to read, got "${noDaemon}": it is a directory (EISDIR)`,
      ],
      [
        ['run', 'start', '--playbook', noDaemon, '--objective', 'o', '--owner', DID, '--enclave', 'e'],
        `--playbook expected a file to read, got "${noDaemon}": it is a directory (EISDIR)`,
      ],
      [
        [
          'dispatch',
          '--session',
          's',
          '--owner',
          DID,
          '--actor',
          DID,
          '--role',
          'dev',
          '--playbook',
          `${missing}.yaml`,
          'obj',
        ],
        `--playbook expected a file to read, got "${missing}.yaml": no such file or directory (ENOENT)`,
      ],
    ];
    for (const [args, message] of cases) {
      const error = await refused(args);
      expect(error.code, args.join(' ')).toBe('ANX_ARGUMENT_INVALID');
      expect(error.message, args.join(' ')).toBe(message);
      expect(error.hint, args.join(' ')).toBeTruthy();
    }
  });

  it('refuses a --relay-ca the leaf could not read before starting anything', () => {
    const missing = join(noDaemon, 'ca.pem');
    expect(() => relayJoinOptions({ port: 0, relay: 'tls://u:p@127.0.0.1:7422', relayCa: missing })).toThrow(
      `--relay-ca expected a file to read, got "${missing}": no such file or directory (ENOENT)`,
    );
  });
});

describe('start without a relay', () => {
  it('refuses the relay options it would otherwise drop, naming each, before starting anything', async () => {
    const error = await refused([
      'start',
      '--port',
      '0',
      '--relay-ca',
      join(noDaemon, 'ca.pem'),
      '--leaf-port',
      '4300',
      '--leaf-host',
      '0.0.0.0',
    ]);
    expect(error.code).toBe('ANX_ARGUMENT_INVALID');
    expect(error.message).toBe(
      'start expected --relay-ca, --leaf-port, --leaf-host only with --relay or --nats',
    );
    expect(error.hint).toMatch(/--relay nats-leaf:\/\/… \(or \$ANX_RELAY\)/);
    expect(() => relayJoinOptions({ port: 0, revocationMaxStaleness: 60 })).toThrow(
      'start expected --revocation-max-staleness only with --relay or --nats',
    );
  });
});

describe('--help of every command', () => {
  it('lists the global options, as the top-level --help does', async () => {
    for (const args of [['run', 'start'], ['token', 'issue'], ['enclave'], ['id', 'new']]) {
      const r = await cli(...args, '--help');
      expect(r.code).toBe(0);
      const global = r.stdout.slice(r.stdout.indexOf('Global Options:'));
      expect(r.stdout, args.join(' ')).toContain('Global Options:');
      expect(global, args.join(' ')).toContain('-d, --data-dir <dir>');
      expect(global, args.join(' ')).toContain('--json');
      expect(global, args.join(' ')).toContain('-v, --version');
    }
    // Where --version names an artifact version it is not listed as the program's.
    const vaultGet = await cli('vault', 'get', '--help');
    expect(vaultGet.stdout).toContain('Global Options:');
    expect(vaultGet.stdout).not.toContain('print the version');
    // `mcp` takes --data-dir itself: listed once.
    const mcp = await cli('mcp', '--help');
    expect(mcp.stdout.match(/--data-dir <dir>/g)).toHaveLength(1);
  });
});

describe('an id given for something new that is taken', () => {
  let daemon: DaemonProcess;
  let dataDir: string;
  let owner: string;
  const run = (...args: string[]): Promise<CliResult> => runCli(dataDir, ...args);

  beforeAll(async () => {
    dataDir = tempDir();
    daemon = await startDaemonProcess(dataDir);
    owner = (await daemon.api.post<{ did: string }>('/v1/identities', { name: 'owner' })).did;
  });
  afterAll(async () => {
    await killHard(daemon);
  });

  async function conflict(args: string[], message: string): Promise<void> {
    const r = await run('--json', ...args);
    expect(r.code, `${args.join(' ')}: ${r.stdout}${r.stderr}`).toBe(5);
    const { error } = JSON.parse(r.stdout) as JsonError;
    expect(error.code).toBe('ANX_ID_CONFLICT');
    expect(error.message).toContain(message);
    expect(error.hint).toBe('that id is taken: give another one, or leave it out to have one generated');
  }

  it('is refused with exit 5 like other conflicts; a malformed id stays exit 2', async () => {
    const enclave = ['enclave', 'create', '--owner', owner, '--id', 'taken'];
    expect((await run(...enclave)).code).toBe(0);
    await conflict(enclave, 'enclave taken exists already');
    const badEnclave = await run('enclave', 'create', '--owner', owner, '--id', 'bad id!');
    expect(badEnclave.code, badEnclave.stderr).toBe(2);

    const task = ['task', 'propose', '--as', owner, '--id', 'tsk_taken'];
    expect((await run(...task, '--title', 'first')).code).toBe(0);
    // The same proposal again is a retry: it answers the task.
    expect((await run(...task, '--title', 'first')).code).toBe(0);
    await conflict([...task, '--title', 'other'], 'task tsk_taken exists with other content');
    expect((await run('task', 'propose', '--as', owner, '--id', 'bad!', '--title', 't')).code).toBe(2);

    const discussion = ['discuss', 'new', '--as', owner, '--participant', owner, '--id', 'd_taken'];
    expect((await run(...discussion, '--topic', 'first')).code).toBe(0);
    await conflict([...discussion, '--topic', 'other'], 'discussion d_taken exists with other content');

    const playbook = join(dataDir, 'one.yaml');
    writeFileSync(
      playbook,
      'name: one\nversion: "1"\nstages:\n  - id: a\n    role: dev\n    output: { kind: md, key: a.md }\n',
    );
    const start = [
      'run',
      'start',
      '--playbook',
      playbook,
      '--objective',
      'o',
      '--owner',
      owner,
      '--enclave',
      'taken',
    ];
    const assign = ['--assign', `dev=${owner}`];
    expect((await run(...start, ...assign, '--run-id', 'run_taken')).code).toBe(0);
    await conflict([...start, ...assign, '--run-id', 'run_taken'], 'run_taken exists');
    expect((await run(...start, ...assign, '--run-id', 'bad!')).code).toBe(2);
  });
});
