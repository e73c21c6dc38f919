import { createHash } from 'node:crypto';
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
