// LLM servers on loopback for the HTTP worker tests: OpenAI-compatible chat completions (SSE) and Ollama's chat (NDJSON).
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export type Protocol = 'openai' | 'ollama';

/** What the server does with one request. */
export type Reply =
  /** Streams `reasoning` then `text` in small chunks, and ends properly. */
  | { type: 'stream'; text: string; reasoning?: string; chunk?: number }
  /** Answers with one JSON document, ignoring `stream: true`. */
  | { type: 'json'; text: string }
  /** An HTTP error with a JSON error body in the protocol's shape. */
  | { type: 'error'; status: number; message: string; headers?: Record<string, string> }
  /** Streams `text`, then drops the connection before the end. */
  | { type: 'broken'; text: string }
  /** Sends headers, then nothing until the client gives up. */
  | { type: 'hang' }
  /** Writes these raw bytes as the body of a 200 with the protocol's content type. */
  | { type: 'raw'; body: string };

export interface Recorded {
  url: string;
  headers: IncomingMessage['headers'];
  body: Record<string, unknown>;
  /** Resolves when the client closed the connection (or the answer ended). */
  closed: Promise<void>;
}

export interface FakeLlm {
  protocol: Protocol;
  url: string;
  requests: Recorded[];
  /** The reply to the n-th request (0-based) decides the answer. */
  reply: (body: Record<string, unknown>, n: number) => Reply;
  close(): Promise<void>;
}

/** The text of the last user message of a chat request. */
export function lastUser(body: Record<string, unknown>): string {
  const messages = body['messages'] as Array<{ role: string; content: string }>;
  return [...messages].reverse().find((m) => m.role === 'user')?.content ?? '';
}

function pieces(text: string, size: number): string[] {
  const out: string[] = [];
  for (let i = 0; i < text.length; i += size) out.push(text.slice(i, i + size));
  return out;
}

function openaiChunk(delta: Record<string, unknown>, finish: string | null = null): string {
  return `data: ${JSON.stringify({ id: 'chatcmpl-1', object: 'chat.completion.chunk', choices: [{ index: 0, delta, finish_reason: finish }] })}\n\n`;
}

function ollamaChunk(message: Record<string, unknown>, done = false): string {
  return `${JSON.stringify({ model: 'm', message: { role: 'assistant', ...message }, done, ...(done ? { done_reason: 'stop', eval_count: 7, prompt_eval_count: 11 } : {}) })}\n`;
}

async function answer(protocol: Protocol, reply: Reply, res: ServerResponse): Promise<void> {
  const type = protocol === 'openai' ? 'text/event-stream' : 'application/x-ndjson';
  switch (reply.type) {
    case 'error': {
      const body =
        protocol === 'openai'
          ? { error: { message: reply.message, type: 'invalid_request_error' } }
          : { error: reply.message };
      res.writeHead(reply.status, { 'content-type': 'application/json', ...reply.headers });
      res.end(JSON.stringify(body));
      return;
    }
    case 'json': {
      const body =
        protocol === 'openai'
          ? {
              choices: [
                { index: 0, message: { role: 'assistant', content: reply.text }, finish_reason: 'stop' },
              ],
            }
          : { model: 'm', message: { role: 'assistant', content: reply.text }, done: true };
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
      return;
    }
    case 'hang':
      res.writeHead(200, { 'content-type': type });
      res.flushHeaders();
      return;
    case 'raw':
      res.writeHead(200, { 'content-type': type });
      res.end(reply.body);
      return;
    case 'broken': {
      res.writeHead(200, { 'content-type': type });
      for (const p of pieces(reply.text, 8))
        res.write(protocol === 'openai' ? openaiChunk({ content: p }) : ollamaChunk({ content: p }));
      await new Promise((r) => setTimeout(r, 20));
      res.socket?.destroy();
      return;
    }
    case 'stream': {
      res.writeHead(200, { 'content-type': type });
      const size = reply.chunk ?? 16;
      for (const p of pieces(reply.reasoning ?? '', size))
        res.write(
          protocol === 'openai'
            ? openaiChunk({ reasoning_content: p })
            : ollamaChunk({ content: '', thinking: p }),
        );
      for (const p of pieces(reply.text, size))
        res.write(protocol === 'openai' ? openaiChunk({ content: p }) : ollamaChunk({ content: p }));
      if (protocol === 'openai') {
        res.write(openaiChunk({}, 'stop'));
        res.end('data: [DONE]\n\n');
      } else {
        res.end(ollamaChunk({ content: '' }, true));
      }
      return;
    }
  }
}

/** Starts a server on 127.0.0.1 that answers the protocol's chat path (and 404 elsewhere). */
export async function startFakeLlm(protocol: Protocol, reply: FakeLlm['reply']): Promise<FakeLlm> {
  const requests: Recorded[] = [];
  const sockets = new Set<import('node:net').Socket>();
  const fake: FakeLlm = { protocol, url: '', requests, reply, close: async () => {} };
  const path = protocol === 'openai' ? '/v1/chat/completions' : '/api/chat';
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (d: Buffer) => chunks.push(d));
    req.on('end', () => {
      const closed = new Promise<void>((resolve) => res.once('close', () => resolve()));
      if (req.method !== 'POST' || req.url !== path) {
        res.writeHead(404, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: `no route ${req.method} ${req.url}` }));
        return;
      }
      let body: Record<string, unknown>;
      try {
        body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>;
      } catch {
        res.writeHead(400).end('{"error":"bad json"}');
        return;
      }
      const n = requests.length;
      requests.push({ url: req.url, headers: req.headers, body, closed });
      void answer(protocol, fake.reply(body, n), res);
    });
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  fake.url = `http://127.0.0.1:${port}`;
  fake.close = () =>
    new Promise<void>((resolve) => {
      for (const s of sockets) s.destroy();
      server.close(() => resolve());
    });
  return fake;
}
