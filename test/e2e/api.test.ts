import { createHash } from 'node:crypto';
import { Packr } from 'msgpackr';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiClient, ApiError } from '../../bridge/api/client.ts';
import { type ApiServer, startApiServer } from '../../bridge/api/server.ts';
import { Host } from '../../runtime/host.ts';
import { cleanupTempDirs, tempDir } from '../helpers/tmp.ts';

let host: Host;
let api: ApiServer;
let client: ApiClient;

beforeAll(async () => {
  host = await Host.open({ dataDir: tempDir() });
  api = await startApiServer(host, { port: 0, token: 'test-token-0123456789' });
  client = new ApiClient(api.url, 'test-token-0123456789');
});

afterAll(async () => {
  await api.close();
  await host.close();
  cleanupTempDirs();
});

async function expectApiError(p: Promise<unknown>, status: number, code: string): Promise<ApiError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ApiError);
  expect((err as ApiError).status).toBe(status);
  expect((err as ApiError).code).toBe(code);
  return err as ApiError;
}

describe('local API', () => {
  it('listens on loopback only', () => {
    expect(api.url).toMatch(/^http:\/\/127\.0\.0\.1:/);
  });

  it('refuses requests without the token or with a wrong one', async () => {
    await expectApiError(
      new ApiClient(api.url, 'wrong-token-0123456789').get('/v1/status'),
      401,
      'ANX_UNAUTHORIZED',
    );
    const res = await fetch(`${api.url}/v1/status`);
    expect(res.status).toBe(401);
    // Idle connections are kept a minute (clients' calls are often seconds apart), not Node's 5 s.
    expect(res.headers.get('keep-alive')).toBe('timeout=65');
  });

  it('answers bad requests with typed errors that name the field', async () => {
    const a = await client.post<{ did: string }>('/v1/identities', { name: 'a' });
    const b = await client.post<{ did: string }>('/v1/identities', { name: 'b' });
    let err = await expectApiError(
      client.post('/v1/messages', { from: a.did, to: 42 }),
      400,
      'ANX_REQUEST_INVALID',
    );
    expect(err.message).toContain('"to" expected a DID or actor address of at most 256 characters, got 42');
    err = await expectApiError(
      client.post('/v1/messages', { from: a.did, to: b.did, type: 'Bad Type!' }),
      400,
      'ANX_REQUEST_INVALID',
    );
    expect(err.message).toContain('"type" expected');
    err = await expectApiError(
      client.post('/v1/messages', {
        messages: [
          { from: a.did, to: b.did },
          { from: a.did, to: 'did:agentnexus:zzz' },
        ],
      }),
      400,
      'ANX_DID_INVALID',
    );
    expect(err.message).toContain('messages[1].to');
    await expectApiError(client.post('/v1/messages', { messages: [] }), 400, 'ANX_REQUEST_INVALID');
    const raw = await fetch(`${api.url}/v1/messages`, {
      method: 'POST',
      headers: { authorization: 'Bearer test-token-0123456789', 'content-type': 'application/json' },
      body: '{not json',
    });
    expect(raw.status).toBe(400);
    expect(((await raw.json()) as { error: { code: string } }).error.code).toBe('ANX_REQUEST_INVALID');
    await expectApiError(client.get('/v1/nowhere'), 404, 'ANX_NOT_FOUND');
    // Nothing half-accepted: the batch with one bad message sent nothing.
    await host.system.quiesce();
    expect((await client.get<{ received: number }>(`/v1/inbox/${b.did}`)).received).toBe(0);
  });

  it('takes msgpack request bodies as it takes JSON ones, and refuses what JSON cannot say', async () => {
    const packed = new ApiClient(api.url, 'test-token-0123456789', { bodies: 'msgpack' });
    const a = await packed.post<{ did: string }>('/v1/identities', { name: 'mp-a' });
    const b = await packed.post<{ did: string }>('/v1/identities', { name: 'mp-b' });
    const body = { text: 'héllo ✓', n: 2 ** 40 + 1, f: 0.5, list: [null, true, { deep: 'x' }] };
    const sent = await packed.post<{ results: Array<{ id: string; duplicate: boolean }> }>('/v1/messages', {
      messages: [
        { from: a.did, to: b.did, body },
        { from: a.did, to: b.did, body: 'second' },
      ],
    });
    expect(sent.results.map((r) => r.duplicate)).toEqual([false, false]);
    await host.system.quiesce();
    const inbox = await client.get<{ messages: Array<{ body: unknown }> }>(`/v1/inbox/${b.did}`);
    expect(inbox.messages.map((m) => m.body)).toEqual([body, 'second']);
    // The same typed errors as JSON, naming the field.
    const err = await expectApiError(
      packed.post('/v1/messages', { from: a.did, to: 42 }),
      400,
      'ANX_REQUEST_INVALID',
    );
    expect(err.message).toContain('"to" expected a DID');

    const post = async (bytes: Uint8Array, type = 'application/msgpack') => {
      const res = await fetch(`${api.url}/v1/messages`, {
        method: 'POST',
        headers: { authorization: 'Bearer test-token-0123456789', 'content-type': type },
        body: new Uint8Array(bytes),
      });
      return {
        status: res.status,
        error: ((await res.json()) as { error: { code: string; message: string } }).error,
      };
    };
    const pack = (value: unknown) => new Packr({ useRecords: false }).pack(value);
    const message = (extra: unknown) => pack({ from: a.did, to: b.did, body: extra });
    const cases: Array<[string, Uint8Array, RegExp]> = [
      ['bytes', message({ data: new Uint8Array([1, 2, 3]) }), /"\$\.body\.data" expected JSON data .*bytes/],
      ['a timestamp', message({ at: new Date(0) }), /"\$\.body\.at" expected JSON data .*Date/],
      ['NaN', message([1, Number.NaN]), /"\$\.body\[1\]" expected a finite number/],
      // uint64 2^60 (written by hand: msgpackr itself writes such numbers as floats): beyond exact
      // numbers, refused rather than rounded.
      [
        'a 64-bit integer beyond 2^53',
        Buffer.concat([
          Buffer.from([0x83]),
          pack('from'),
          pack(a.did),
          pack('to'),
          pack(b.did),
          pack('body'),
          Buffer.from([0xcf, 0x10, 0, 0, 0, 0, 0, 0, 0]),
        ]),
        /"\$\.body" expected JSON data .*bigint/,
      ],
      ['trailing bytes', Buffer.concat([message('x'), Buffer.from([0xc0])]), /expected one msgpack value/],
      ['a cut-off value', message('x').subarray(0, 20), /expected one msgpack value/],
      ['an unknown extension', Buffer.from([0xd4, 0x05, 0x00]), /expected one msgpack value/],
      [
        'nesting past 64 levels',
        message(JSON.parse(`${'['.repeat(80)}${']'.repeat(80)}`)),
        /levels of nested/,
      ],
    ];
    for (const [what, bytes, message] of cases) {
      const { status, error } = await post(bytes);
      expect({ what, status, code: error.code }).toEqual({ what, status: 400, code: 'ANX_REQUEST_INVALID' });
      expect(error.message, what).toMatch(message);
    }
    // A body sent as msgpack under the JSON type is read as JSON (and refused as such).
    expect((await post(message('x'), 'application/json')).error.message).toMatch(/expected JSON/);
    // Nothing of the refused bodies arrived; the API goes on.
    await host.system.quiesce();
    expect((await client.get<{ received: number }>(`/v1/inbox/${b.did}`)).received).toBe(2);
    expect(() => new ApiClient(api.url, 't', { bodies: 'xml' as 'json' })).toThrow(/"json" or "msgpack"/);
  });

  it('takes artifacts far larger than other requests, and answers an oversized body with 413', async () => {
    const owner = await client.post<{ did: string }>('/v1/identities', { name: 'big-owner' });
    const { enclave_id } = await client.post<{ enclave_id: string }>('/v1/enclaves', { owner: owner.did });
    // 12 MiB of binary content is about 16 MiB of JSON: above the 8 MiB of ordinary requests.
    const content = new Uint8Array(12 * 1024 * 1024);
    for (let i = 0; i < content.length; i += 4096) content[i] = (i / 4096) % 251;
    const { ref } = await client.post<{ ref: { hash: string; size: number } }>(
      `/v1/vault/${enclave_id}/put`,
      {
        as: owner.did,
        key: 'big/blob.bin',
        kind: 'binary',
        content_base64: Buffer.from(content).toString('base64'),
      },
    );
    expect(ref.size).toBe(content.length);
    expect(ref.hash).toBe(createHash('sha256').update(content).digest('hex'));

    const err = await expectApiError(
      client.post('/v1/messages', { from: owner.did, to: owner.did, body: 'x'.repeat(9 * 1024 * 1024) }),
      413,
      'ANX_REQUEST_TOO_LARGE',
    );
    expect(err.message).toContain(`${8 * 1024 * 1024} bytes`);
    expect(err.hint).toMatch(/artifact/);
    // The host is fine and the API answers the next request.
    expect((await client.get<{ pid: number }>('/v1/status')).pid).toBe(process.pid);
  });

  it('streams committed events over SSE', async () => {
    const a = await client.post<{ did: string }>('/v1/identities', { name: 'sse-a' });
    const b = await client.post<{ did: string }>('/v1/identities', { name: 'sse-b' });
    const controller = new AbortController();
    const res = await fetch(
      `${api.url}/v1/events?id=${encodeURIComponent(b.did)}&token=test-token-0123456789`,
      {
        signal: controller.signal,
      },
    );
    expect(res.headers.get('content-type')).toBe('text/event-stream');
    const reader = res.body!.getReader();
    const { results } = await client.post<{ results: Array<{ id: string }> }>('/v1/messages', {
      from: a.did,
      to: b.did,
      body: 'hi',
    });
    let text = '';
    const deadline = Date.now() + 10_000;
    while (!text.includes(results[0]!.id) && Date.now() < deadline) {
      const { value, done } = await reader.read();
      if (done) break;
      text += new TextDecoder().decode(value);
    }
    controller.abort();
    expect(text).toContain('event: anx');
    expect(text).toContain(results[0]!.id);
  });
});
