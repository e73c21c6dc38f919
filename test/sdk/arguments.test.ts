// Bad arguments to every SDK call: a typed error with a stable code that says what was expected and what came.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type AnxClient,
  AnxError,
  connect,
  SdkArgumentError,
  SdkClosedError,
  SdkIdentityError,
} from '../../bridge/sdk/index.ts';
import { Host } from '../../runtime/host.ts';
import { cleanupTempDirs, tempDir } from '../helpers/tmp.ts';

let host: Host;
let client: AnxClient;
const OTHER = 'did:agentnexus:z6MkhepuLTxXGkgddhp52Emmtvb1iwGi6oBvoaivbYLdWqpr';

beforeAll(async () => {
  host = await Host.open({ dataDir: tempDir(), noSync: true });
  client = await connect({ mode: 'embedded', host, name: 'Checker' });
});

afterAll(async () => {
  await client.close();
  await host.close();
  cleanupTempDirs();
});

/** Expects `run` to throw (or reject with) an SdkArgumentError with this message. */
async function refuses(run: () => unknown, message: string): Promise<void> {
  let error: unknown;
  try {
    await run();
  } catch (err) {
    error = err;
  }
  expect(error).toBeInstanceOf(SdkArgumentError);
  expect(error).toBeInstanceOf(AnxError);
  expect(error).toMatchObject({ code: 'ANX_SDK_ARGUMENT', message });
}

describe('connect', () => {
  it('refuses options that are not an object', async () => {
    await refuses(() => connect(null as never), '"options" expected an object, got null');
  });
  it('refuses an unknown mode', async () => {
    await refuses(
      () => connect({ mode: 'remote' as never, name: 'x' }),
      '"mode" expected "daemon" or "embedded", got "remote"',
    );
  });
  it('refuses neither a name nor a DID', async () => {
    await refuses(
      () => connect({ mode: 'embedded', host }),
      '"name" expected a name of 1 to 128 characters (or a "did"), got undefined',
    );
  });
  it('refuses both a name and a DID', async () => {
    await refuses(
      () => connect({ mode: 'embedded', host, name: 'x', did: OTHER }),
      `"did" expected nothing when "name" is given (give one of them), got "${OTHER}"`,
    );
  });
  it('refuses a DID that is not one', async () => {
    await refuses(
      () => connect({ mode: 'embedded', host, did: 'bob' }),
      '"did" expected a did:agentnexus DID, got "bob"',
    );
  });
  it('refuses an empty data directory, and takes the default one (as the CLI does) when none is given', async () => {
    await refuses(
      () => connect({ name: 'x', dataDir: '' }),
      '"dataDir" expected the path of a data directory, got ""',
    );
    const dir = tempDir();
    const saved = process.env['ANX_DATA_DIR'];
    process.env['ANX_DATA_DIR'] = dir;
    try {
      // No daemon runs there: the error names the default directory it looked in.
      await expect(connect('x')).rejects.toMatchObject({
        code: 'ANX_DAEMON_NOT_RUNNING',
        message: expect.stringContaining(dir),
      });
    } finally {
      if (saved === undefined) delete process.env['ANX_DATA_DIR'];
      else process.env['ANX_DATA_DIR'] = saved;
    }
  });
  it('refuses a host in daemon mode', async () => {
    await refuses(
      () => connect({ host, name: 'x' }),
      '"host" expected nothing in daemon mode (use mode: "embedded"), got an object',
    );
  });
  it('refuses a bad poll interval', async () => {
    for (const [pollMs, got] of [
      [0, '0'],
      [2 ** 31, String(2 ** 31)],
    ] as const)
      await refuses(
        () => connect({ mode: 'embedded', host, name: 'x', pollMs }),
        `"pollMs" expected a number of milliseconds from 1 to 3600000 (an hour), got ${got}`,
      );
  });
  it('gives clients connecting under one new name at once one identity', async () => {
    const racing = await Promise.all([1, 2, 3].map(() => connect({ mode: 'embedded', host, name: 'Racer' })));
    expect(new Set(racing.map((c) => c.did)).size).toBe(1);
    expect(host.identities().filter((i) => i.name === 'Racer')).toHaveLength(1);
    for (const c of racing) await c.close();
  });
  it('refuses a DID whose key the host does not hold with ANX_SDK_IDENTITY', async () => {
    const err = await connect({ mode: 'embedded', host, did: OTHER }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SdkIdentityError);
    expect(err).toMatchObject({ code: 'ANX_SDK_IDENTITY' });
  });
});

describe('client calls', () => {
  it('checks orchestration and discussion arguments itself, the same in both modes', async () => {
    await refuses(
      () => client.owner.unbind(client.did, OTHER, { role: 5 as never }),
      '"role" expected a role name, got 5',
    );
    await refuses(
      () => client.owner.bind(client.did, OTHER, { role: 5 as never }),
      '"role" expected a role name, got 5',
    );
    await refuses(
      () => client.secretary.register(client.did, { name: 5 as never }),
      '"name" expected a name, got 5',
    );
    await refuses(
      () => client.discussions.open({ topic: 't', participants: [OTHER], options: 'yes' as never }),
      '"options.options" expected a list of choices, e.g. ["yes", "no"], got "yes"',
    );
    await expect(client.discussions.list({ state: 'bogus' })).rejects.toMatchObject({
      code: 'ANX_DISCUSSION_INVALID',
      message: '"state" expected one of open, concluded, archived, got "bogus"',
    });
  });

  it('send takes JSON data as the body in both modes, since readers through the API get JSON', async () => {
    const cases: Array<[unknown, string]> = [
      [
        new Uint8Array([1, 2]),
        '"body" expected JSON data (text, numbers, booleans, null, lists, plain objects), not bytes (send them as base64 text), got 2 bytes',
      ],
      [
        { at: new Date(0) },
        '"body.at" expected JSON data (text, numbers, booleans, null, lists, plain objects), not a Date, got an object',
      ],
      [
        { list: [1, 10n] },
        '"body.list[1]" expected JSON data (text, numbers, booleans, null, lists, plain objects), not a bigint, got 10',
      ],
      [
        { m: new Map() },
        '"body.m" expected JSON data (text, numbers, booleans, null, lists, plain objects), not a Map, got an object',
      ],
      [Number.NaN, '"body" expected a finite number, got NaN'],
    ];
    for (const [body, message] of cases) await refuses(() => client.send(client.did, body), message);
    const before = (await client.inbox()).received;
    await client.send(client.did, { text: 'fine', n: [1, 2.5, null, true], nested: { a: {} } });
    expect((await client.inbox()).received).toBe(before + 1);
  });

  it('send refuses a recipient that is not a DID or address', async () => {
    await refuses(
      () => client.send('', 'x'),
      '"to" expected a DID or actor address of at most 256 characters, got ""',
    );
    await refuses(
      () => client.send(42 as never, 'x'),
      '"to" expected a DID or actor address of at most 256 characters, got 42',
    );
    await refuses(
      () => client.send(`run/${'x'.repeat(20_000)}`, 'x'),
      `"to" expected a DID or actor address of at most 256 characters, got "run/${'x'.repeat(57)}..."`,
    );
    // Ids longer than any are no run's: a typed not-found, not an LMDB key error.
    await expect(client.runs.getStatus('x'.repeat(70_000))).rejects.toMatchObject({
      code: 'ANX_RUN_NOT_FOUND',
    });
    await refuses(
      () => client.send('did:agentnexus:nope', 'x'),
      '"to" expected a did:agentnexus DID, got "did:agentnexus:nope"',
    );
  });
  it('send refuses a bad message type or id', async () => {
    await refuses(
      () => client.send(OTHER, 'x', { type: 'Chat Hello' }),
      '"type" expected a lowercase message type like "message" or "task.propose", got "Chat Hello"',
    );
    await refuses(
      () => client.send(OTHER, 'x', { type: 'anx.batch' }),
      '"type" expected a message type other than "anx.batch" (the kernel\'s own event), got "anx.batch"',
    );
    await refuses(
      () => client.send(OTHER, 'x', { id: 'short' }),
      '"id" expected 16 to 64 characters of [A-Za-z0-9_-], got "short"',
    );
  });
  it('inbox refuses a bad limit or afterSeq', async () => {
    await refuses(() => client.inbox({ limit: 0 }), '"limit" expected an integer from 1 to 1000, got 0');
    await refuses(() => client.inbox({ afterSeq: -1 }), '"afterSeq" expected a non-negative integer, got -1');
  });
  it('messages refuses a bad afterSeq or signal, at the call', () => {
    expect(() => client.messages({ afterSeq: 1.5 })).toThrow(
      '"afterSeq" expected a non-negative integer, got 1.5',
    );
    expect(() => client.messages({ signal: {} as never })).toThrow(
      '"signal" expected an AbortSignal, got an object',
    );
  });
  it('runs.getStatus refuses an empty run id', async () => {
    await refuses(() => client.runs.getStatus(''), '"runId" expected a run id, got ""');
  });
  it('vault calls refuse bad enclave ids, keys, versions and artifacts', async () => {
    await refuses(() => client.vault.get('', 'k'), '"enclaveId" expected an Enclave id, got ""');
    await refuses(
      () => client.vault.get('e', undefined as never),
      '"key" expected a vault key, got undefined',
    );
    await refuses(
      () => client.vault.get('e', 'k', { version: 0 }),
      '"version" expected a positive integer, got 0',
    );
    await refuses(
      () => client.vault.put('e', 'k', { content: 5 as never }),
      '"artifact.content" expected a string or Uint8Array, got 5',
    );
    await refuses(() => client.vault.put('e', 'k', null as never), '"artifact" expected an object, got null');
  });
  it('worker.onStage refuses a missing role or handler', async () => {
    await refuses(() => client.worker.onStage('', async () => {}), '"role" expected a role name, got ""');
    await refuses(
      () => client.worker.onStage('developer', 'run' as never),
      '"handler" expected a function (ctx) => …, got "run"',
    );
  });
  it('every call after close() fails with ANX_SDK_CLOSED', async () => {
    const closed = await connect({ mode: 'embedded', host, name: 'Closed' });
    await closed.close();
    await closed.close();
    await expect(closed.send(OTHER, 'x')).rejects.toBeInstanceOf(SdkClosedError);
    await expect(closed.inbox()).rejects.toMatchObject({
      code: 'ANX_SDK_CLOSED',
      message: 'inbox() was called after close()',
    });
    expect(() => closed.messages()).toThrow(SdkClosedError);
    expect(() => closed.worker.onStage('x', () => {})).toThrow(SdkClosedError);
  });
});
