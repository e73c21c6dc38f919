// The HTTP LLM adapter on its own, against servers on loopback: both protocols' streams, errors, retries, timeouts and the API key.
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { AdapterOutcome } from '../../bridge/workers/adapter.ts';
import { chatUrl, checkHttpLlmConfig, HttpLlmAdapter } from '../../bridge/workers/http-llm.ts';
import { isAnxError } from '../../runtime/errors.ts';
import { type FakeLlm, lastUser, type Protocol, type Reply, startFakeLlm } from './fake-llm.ts';
import { emittedText, testInput } from './input.ts';

const KEY = 'sk-live-0123456789abcdef';
const env = { LLM_KEY: KEY };
let fake: FakeLlm | undefined;
afterEach(async () => {
  await fake?.close();
  fake = undefined;
});

async function serve(protocol: Protocol, reply: (n: number, body: Record<string, unknown>) => Reply) {
  fake = await startFakeLlm(protocol, (body, n) => reply(n, body));
  return fake;
}

function llm(protocol: Protocol, url: string, over: Record<string, unknown> = {}) {
  return new HttpLlmAdapter(
    { adapter: protocol, endpoint: url, model: 'm-1', api_key_env: 'LLM_KEY', retry_backoff_ms: 20, ...over },
    env,
  );
}

function failed(outcome: AdapterOutcome) {
  if (outcome.status !== 'failed') throw new Error(`expected a failure, got ${JSON.stringify(outcome)}`);
  return outcome;
}

for (const protocol of ['openai', 'ollama'] as Protocol[]) {
  describe(`${protocol} protocol`, () => {
    it('streams the answer as message events and reasoning as reasoning events, and delivers the answer', async () => {
      const f = await serve(protocol, (_n, body) => ({
        type: 'stream',
        reasoning: 'let me think it through',
        text: `# Spec\n\n${lastUser(body).length} chars of prompt`,
        chunk: 5,
      }));
      const input = testInput();
      const out = await llm(protocol, f.url, { temperature: 0.2, max_tokens: 300, system: 'Be brief.' }).run(
        input,
      );
      const text = `# Spec\n\n${input.prompt.length} chars of prompt`;
      expect(out).toEqual({ status: 'delivered', value: text, summary: '# Spec' });
      expect(emittedText(input, 'message')).toBe(text);
      expect(emittedText(input, 'reasoning')).toBe('let me think it through');
      expect(input.emitted.filter((p) => p.kind === 'message').length).toBeGreaterThan(3);
      const req = f.requests[0];
      expect(req?.headers.authorization).toBe(`Bearer ${KEY}`);
      expect(req?.body['model']).toBe('m-1');
      expect(req?.body['stream']).toBe(true);
      expect(req?.body['messages']).toEqual([
        { role: 'system', content: 'Be brief.' },
        { role: 'user', content: input.prompt },
      ]);
      if (protocol === 'openai') {
        expect(req?.body['temperature']).toBe(0.2);
        expect(req?.body['max_tokens']).toBe(300);
      } else {
        expect(req?.body['options']).toEqual({ temperature: 0.2, num_predict: 300 });
      }
      // The key is sent, never emitted.
      expect(JSON.stringify(input.emitted)).not.toContain(KEY);
    });

    it('fails with the status and the server message on an HTTP error, fatal for a bad key, with the key redacted', async () => {
      const f = await serve(protocol, () => ({
        type: 'error',
        status: 401,
        message: `Incorrect API key provided: ${KEY}`,
      }));
      const out = failed(await llm(protocol, f.url).run(testInput()));
      expect(out.reason).toBe('http');
      expect(out.fatal).toBe(true);
      expect(out.error).toMatch(/answered 401 Unauthorized: Incorrect API key provided: \[redacted\]/);
      expect(out.error).not.toContain(KEY);
      expect(f.requests).toHaveLength(1);
    });

    it('tries again after 503 and 429 before anything streamed, then delivers', async () => {
      const f = await serve(protocol, (n) =>
        n === 0
          ? { type: 'error', status: 503, message: 'overloaded' }
          : n === 1
            ? { type: 'error', status: 429, message: 'slow down', headers: { 'retry-after': '0.05' } }
            : { type: 'stream', text: 'third time lucky' },
      );
      const input = testInput();
      const out = await llm(protocol, f.url).run(input);
      expect(out).toMatchObject({ status: 'delivered', value: 'third time lucky' });
      expect(f.requests).toHaveLength(3);
      const retries = input.emitted.filter((p) => (p.payload as { state?: string }).state === 'retrying');
      expect(retries.map((p) => (p.payload as { attempt: number }).attempt)).toEqual([2, 3]);
    });

    it('gives up after its retries with the last error, not fatal, so the run may retry the stage', async () => {
      const f = await serve(protocol, () => ({ type: 'error', status: 500, message: 'internal' }));
      const out = failed(await llm(protocol, f.url, { retries: 1 }).run(testInput()));
      expect(out.error).toMatch(/answered 500 Internal Server Error: internal \(after 2 attempts\)/);
      expect(out.fatal).toBeUndefined();
      expect(f.requests).toHaveLength(2);
    });

    it('fails without retrying when the stream breaks off half-way', async () => {
      const f = await serve(protocol, () => ({ type: 'broken', text: 'a partial answer' }));
      const out = failed(await llm(protocol, f.url).run(testInput()));
      expect(['network', 'protocol']).toContain(out.reason);
      expect(out.error).toMatch(/broke off|ended before/);
      expect(f.requests).toHaveLength(1);
    });

    it('fails when the endpoint falls silent mid-answer for longer than the idle timeout', async () => {
      const f = await serve(protocol, () => ({ type: 'hang' }));
      const out = failed(await llm(protocol, f.url, { idle_timeout_ms: 400 }).run(testInput()));
      expect(out.reason).toBe('timeout');
      expect(out.error).toMatch(/sent nothing for 400 ms/);
    });

    it('stops the request when the task is aborted', async () => {
      const f = await serve(protocol, () => ({ type: 'hang' }));
      const input = testInput();
      const running = llm(protocol, f.url).run(input);
      const deadline = Date.now() + 20_000;
      while (f.requests.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      input.controller.abort();
      expect(failed(await running).reason).toBe('aborted');
      await f.requests[0]?.closed;
    });

    it('accepts a whole JSON answer from a server that does not stream', async () => {
      const f = await serve(protocol, () => ({ type: 'json', text: 'all at once' }));
      const input = testInput();
      expect(await llm(protocol, f.url).run(input)).toMatchObject({
        status: 'delivered',
        value: 'all at once',
      });
      expect(emittedText(input, 'message')).toBe('all at once');
    });

    it('fails on an empty answer', async () => {
      const f = await serve(protocol, () => ({ type: 'stream', text: '' }));
      expect(failed(await llm(protocol, f.url).run(testInput())).reason).toBe('empty');
    });

    it('keeps <think> spans (even split across chunks) out of the artifact and in reasoning', async () => {
      const f = await serve(protocol, () => ({
        type: 'stream',
        text: '<think>first, the risks</think>\n# Plan\nstep one',
        chunk: 3,
      }));
      const input = testInput();
      const out = await llm(protocol, f.url).run(input);
      expect(out).toMatchObject({ status: 'delivered', value: '\n# Plan\nstep one', summary: '# Plan' });
      expect(emittedText(input, 'reasoning')).toBe('first, the risks');
    });
  });
}

describe('wire details', () => {
  it('reads SSE with comments, CRLF, data without a space, multi-line data and extra fields', async () => {
    const chunk = (content: string) => JSON.stringify({ choices: [{ index: 0, delta: { content } }] });
    const body = [
      ': keep-alive\r\n\r\n',
      `event: message\r\nid: 1\r\ndata:${chunk('Hello')}\r\n\r\n`,
      `data: {"choices":[{"index":0,\ndata: "delta":{"content":", world"}}]}\n\n`,
      `data: ${JSON.stringify({ choices: [{ index: 0, delta: {}, finish_reason: 'stop' }], usage: { total_tokens: 9 } })}\n\n`,
      'data: [DONE]\n\n',
    ].join('');
    const f = await serve('openai', () => ({ type: 'raw', body }));
    const input = testInput();
    expect(await llm('openai', f.url).run(input)).toMatchObject({
      status: 'delivered',
      value: 'Hello, world',
    });
    const done = input.emitted.find((p) => (p.payload as { state?: string }).state === 'done');
    expect(done?.payload).toMatchObject({ finish_reason: 'stop', usage: { total_tokens: 9 } });
  });

  it('fails on an error sent inside the stream, and on a stream that ends without its end mark', async () => {
    const error = `data: ${JSON.stringify({ error: { message: 'context length exceeded' } })}\n\n`;
    let f = await serve('openai', () => ({ type: 'raw', body: error }));
    expect(failed(await llm('openai', f.url).run(testInput())).error).toMatch(
      /reported an error.*context length exceeded/,
    );
    await f.close();
    f = await serve('ollama', () => ({
      type: 'raw',
      body: `${JSON.stringify({ message: { content: 'cut' }, done: false })}\n`,
    }));
    expect(failed(await llm('ollama', f.url).run(testInput())).error).toMatch(/ended before "done": true/);
    await f.close();
    f = await serve('openai', () => ({ type: 'raw', body: 'data: {not json\n\n' }));
    expect(failed(await llm('openai', f.url).run(testInput()))).toMatchObject({ reason: 'protocol' });
  });

  it('says it cannot reach an endpoint that refuses connections, after its retries', async () => {
    const port = await new Promise<number>((resolve) => {
      const s = createServer();
      s.listen(0, '127.0.0.1', () => {
        const p = (s.address() as { port: number }).port;
        s.close(() => resolve(p));
      });
    });
    const out = failed(await llm('ollama', `http://127.0.0.1:${port}`, { retries: 1 }).run(testInput()));
    expect(out.reason).toBe('network');
    expect(out.error).toMatch(
      /cannot reach http:\/\/127\.0\.0\.1:\d+\/api\/chat: ECONNREFUSED \(after 2 attempts\)/,
    );
  });

  it('sends the key in another header when asked, and only there', async () => {
    const f = await serve('openai', () => ({ type: 'stream', text: 'ok' }));
    await llm('openai', f.url, { api_key_header: 'api-key' }).run(testInput());
    expect(f.requests[0]?.headers['api-key']).toBe(KEY);
    expect(f.requests[0]?.headers.authorization).toBeUndefined();
  });

  it('does not follow a redirect, which would carry the key and the prompt to another address', async () => {
    const elsewhere = await rawServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify({ choices: [{ message: { content: 'from elsewhere' }, finish_reason: 'stop' }] }),
      );
    });
    const redirecting = await rawServer((_req, res) => {
      res.writeHead(307, { location: `${elsewhere.url}/v1/chat/completions?sig=secret` });
      res.end();
    });
    try {
      const out = failed(
        await llm('openai', redirecting.url, { api_key_header: 'x-api-key' }).run(testInput()),
      );
      expect(out.fatal).toBe(true);
      expect(out.error).toContain('answered 307 redirecting to');
      expect(out.error).toContain('/v1/chat/completions');
      expect(out.error).not.toContain('secret');
      expect(redirecting.hits).toBe(1);
      expect(elsewhere.hits).toBe(0);
    } finally {
      await redirecting.close();
      await elsewhere.close();
    }
  });

  it('takes a slow single JSON answer whose bytes keep coming, and refuses one larger than an artifact', async () => {
    const doc = JSON.stringify({
      choices: [{ message: { content: '# slow but steady' }, finish_reason: 'stop' }],
    });
    const slow = await rawServer(async (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      // Longer in total than the idle limit, never idle for as long.
      for (let i = 0; i < doc.length; i += Math.ceil(doc.length / 4)) {
        res.write(doc.slice(i, i + Math.ceil(doc.length / 4)));
        await new Promise((resolve) => setTimeout(resolve, 150));
      }
      res.end();
    });
    const huge = await rawServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      const piece = 'x'.repeat(1024 * 1024);
      res.write('{"choices":[{"message":{"content":"');
      for (let i = 0; i < 17; i++) res.write(piece);
      res.end('"},"finish_reason":"stop"}]}');
    });
    try {
      const out = await llm('openai', slow.url, { idle_timeout_ms: 400, retries: 0 }).run(testInput());
      expect(out).toMatchObject({ status: 'delivered', value: '# slow but steady' });
      const big = failed(await llm('openai', huge.url, { retries: 2 }).run(testInput()));
      expect(big.reason).toBe('output');
      expect(big.error).toContain('more than 16777216 bytes');
      expect(huge.hits).toBe(1);
    } finally {
      await slow.close();
      await huge.close();
    }
  });

  it('makes no request for a task stopped before it starts', async () => {
    const f = await serve('openai', () => ({ type: 'stream', text: 'ok' }));
    const input = testInput();
    input.controller.abort();
    const out = failed(await llm('openai', f.url).run(input));
    expect(out.reason).toBe('aborted');
    expect(f.requests).toHaveLength(0);
  });

  it('adds the protocol path to a base URL and leaves a full one alone', () => {
    const url = (adapter: 'openai' | 'ollama', endpoint: string) => chatUrl({ adapter, endpoint }).toString();
    expect(url('openai', 'https://api.openai.com/v1')).toBe('https://api.openai.com/v1/chat/completions');
    expect(url('openai', 'http://127.0.0.1:8000')).toBe('http://127.0.0.1:8000/v1/chat/completions');
    expect(url('openai', 'http://h/openai/v1/chat/completions')).toBe('http://h/openai/v1/chat/completions');
    expect(url('ollama', 'http://127.0.0.1:11434/')).toBe('http://127.0.0.1:11434/api/chat');
    expect(url('ollama', 'http://h/api/chat')).toBe('http://h/api/chat');
  });

  it('refuses configurations that are wrong or would put a key where it does not belong', () => {
    const bad: Array<[Record<string, unknown>, RegExp]> = [
      [{ endpoint: 'ftp://x', model: 'm' }, /http\(s\) URL/],
      [{ endpoint: 'not a url', model: 'm' }, /http\(s\) URL/],
      [{ endpoint: 'https://user:pw@h/v1', model: 'm' }, /must not hold credentials/],
      [{ endpoint: 'http://h', model: '' }, /"model"/],
      [{ endpoint: 'http://h', model: 'm', api_key_env: 'sk-123' }, /name of an environment variable/],
      [
        { endpoint: 'http://h', model: 'm', headers: { Authorization: 'Bearer x' } },
        /must not set Authorization/,
      ],
      [{ endpoint: 'http://h', model: 'm', temperature: 3 }, /temperature/],
      [{ endpoint: 'http://h', model: 'm', retries: 50 }, /retries/],
      [{ endpoint: 'http://h', model: 'm', api_key: 'sk' }, /no setting "api_key"/],
      [{ endpoint: 'http://h', model: 'm', api_key_header: 'x-key' }, /needs "api_key_env"/],
      [
        {
          endpoint: 'http://h',
          model: 'm',
          api_key_env: 'K',
          api_key_header: 'x-key',
          headers: { 'X-Key': 'v' },
        },
        /must not set/,
      ],
    ];
    for (const [config, message] of bad) {
      let caught: unknown;
      try {
        checkHttpLlmConfig({ adapter: 'openai', ...config });
      } catch (err) {
        caught = err;
      }
      expect(isAnxError(caught, 'ANX_WORKER_CONFIG_INVALID'), JSON.stringify(config)).toBe(true);
      expect((caught as Error).message).toMatch(message);
    }
    let missing: unknown;
    try {
      new HttpLlmAdapter(
        { adapter: 'openai', endpoint: 'http://h', model: 'm', api_key_env: 'NOT_SET_ANYWHERE' },
        {},
      );
    } catch (err) {
      missing = err;
    }
    expect(isAnxError(missing, 'ANX_WORKER_CONFIG_INVALID')).toBe(true);
    expect((missing as Error).message).toMatch(/NOT_SET_ANYWHERE named by "api_key_env" is not set/);
  });
});

/** A plain HTTP server on loopback that counts its requests. */
async function rawServer(handle: (req: IncomingMessage, res: ServerResponse) => void | Promise<void>) {
  const server = createHttpServer((req, res) => {
    state.hits++;
    req.resume();
    void handle(req, res);
  });
  const state = { hits: 0 };
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}`,
    get hits() {
      return state.hits;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
