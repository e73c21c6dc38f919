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
  });

  it('answers bad requests with typed errors that name the field', async () => {
    const a = await client.post<{ did: string }>('/v1/identities', { name: 'a' });
    const b = await client.post<{ did: string }>('/v1/identities', { name: 'b' });
    let err = await expectApiError(
      client.post('/v1/messages', { from: a.did, to: 42 }),
      400,
      'ANX_REQUEST_INVALID',
    );
    expect(err.message).toContain('"to" expected a DID or actor address, got 42');
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
