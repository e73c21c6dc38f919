// The HTTP LLM worker adapter: OpenAI-compatible chat completions (SSE) and Ollama's chat API (NDJSON), streamed.
import type { StageProgress } from '../../actors/worker-runtime.ts';
import { describeValue } from '../../runtime/errors.ts';
import {
  type AdapterInput,
  type AdapterOutcome,
  firstLine,
  type WorkerAdapter,
  WorkerConfigError,
} from './adapter.ts';
import { MAX_TIMER_MS, STDOUT_MAX } from './process.ts';

/** Configuration of an LLM endpoint worker. */
export interface HttpLlmConfig {
  /** `openai`: POST /v1/chat/completions with SSE; `ollama`: POST /api/chat with NDJSON. */
  adapter: 'openai' | 'ollama';
  /**
   * Base URL (`https://api.openai.com/v1`, `http://127.0.0.1:11434`) or the full URL of the chat
   * endpoint; the protocol's path is added unless the URL already ends with it.
   */
  endpoint: string;
  model: string;
  /** Name of the environment variable holding the API key, sent as `Authorization: Bearer …`. */
  api_key_env?: string;
  /** Send the key in this header instead, as it is (`api-key` for Azure OpenAI, `x-api-key` for some gateways). */
  api_key_header?: string;
  /** The system message (default: a short instruction to answer with the artifact only). */
  system?: string;
  temperature?: number;
  max_tokens?: number;
  /** More fields of the request body, merged last (e.g. Ollama's `options`, OpenAI's `top_p`). */
  extra?: Record<string, unknown>;
  /** More request headers (not for secrets: put those in `api_key_env`). */
  headers?: Record<string, string>;
  /** The whole answer must have arrived by then (default 10 minutes). */
  timeout_ms?: number;
  /** Longest silence between two chunks of the stream (default 2 minutes). */
  idle_timeout_ms?: number;
  /** Attempts again after a connection error, 408, 429 or 5xx, before anything streamed (default 2). */
  retries?: number;
  /** First wait before an attempt again, doubled each time; a Retry-After answer wins (default 500 ms). */
  retry_backoff_ms?: number;
}

const DEFAULT_SYSTEM =
  'You are one worker in a team that runs a playbook. Do the stage you are given and answer with the ' +
  'artifact itself: no preamble, no closing remarks.';

const KNOWN = new Set([
  'adapter',
  'endpoint',
  'model',
  'api_key_env',
  'api_key_header',
  'system',
  'temperature',
  'max_tokens',
  'extra',
  'headers',
  'timeout_ms',
  'idle_timeout_ms',
  'retries',
  'retry_backoff_ms',
]);

/** Checks an LLM worker's configuration; throws `WorkerConfigError` saying what is wrong. */
export function checkHttpLlmConfig(raw: unknown): HttpLlmConfig {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw))
    throw new WorkerConfigError('an LLM adapter expected a configuration object with "endpoint" and "model"');
  const c = raw as Record<string, unknown>;
  for (const k of Object.keys(c))
    if (!KNOWN.has(k))
      throw new WorkerConfigError(`the ${String(c['adapter'])} adapter has no setting ${JSON.stringify(k)}`);
  const adapter = c['adapter'];
  if (adapter !== 'openai' && adapter !== 'ollama')
    throw new WorkerConfigError(`"adapter" expected openai or ollama, got ${describeValue(adapter)}`);
  const endpoint = c['endpoint'];
  let url: URL | undefined;
  try {
    url = typeof endpoint === 'string' ? new URL(endpoint) : undefined;
  } catch {
    url = undefined;
  }
  if (url === undefined || (url.protocol !== 'http:' && url.protocol !== 'https:'))
    throw new WorkerConfigError(
      `"endpoint" expected an http(s) URL like ${adapter === 'ollama' ? 'http://127.0.0.1:11434' : 'https://api.openai.com/v1'}, got ${describeValue(endpoint)}`,
    );
  if (url.username !== '' || url.password !== '')
    throw new WorkerConfigError(
      '"endpoint" must not hold credentials',
      'name the variable holding the key in "api_key_env"',
    );
  const model = c['model'];
  if (typeof model !== 'string' || model === '')
    throw new WorkerConfigError(`"model" expected a model name, got ${describeValue(model)}`);
  const out: HttpLlmConfig = { adapter, endpoint: url.toString(), model };
  const keyEnv = c['api_key_env'];
  if (keyEnv !== undefined) {
    if (typeof keyEnv !== 'string' || !/^[A-Za-z_][A-Za-z0-9_]*$/.test(keyEnv))
      throw new WorkerConfigError(
        `"api_key_env" expected the name of an environment variable, got ${describeValue(keyEnv)}`,
        'give the variable\'s name (like "OPENAI_API_KEY"), never the key itself',
      );
    out.api_key_env = keyEnv;
  }
  if (c['api_key_header'] !== undefined) {
    const hh = c['api_key_header'];
    if (typeof hh !== 'string' || !/^[A-Za-z0-9-]+$/.test(hh))
      throw new WorkerConfigError(`"api_key_header" expected a header name, got ${describeValue(hh)}`);
    if (keyEnv === undefined)
      throw new WorkerConfigError('"api_key_header" needs "api_key_env" to name the key');
    out.api_key_header = hh.toLowerCase();
  }
  if (c['system'] !== undefined) {
    if (typeof c['system'] !== 'string') throw new WorkerConfigError('"system" expected a string');
    out.system = c['system'];
  }
  if (c['temperature'] !== undefined) {
    const t = c['temperature'];
    if (typeof t !== 'number' || !(t >= 0 && t <= 2))
      throw new WorkerConfigError(`"temperature" expected a number from 0 to 2, got ${describeValue(t)}`);
    out.temperature = t;
  }
  for (const key of ['max_tokens', 'timeout_ms', 'idle_timeout_ms', 'retry_backoff_ms'] as const) {
    const v = c[key];
    if (v === undefined) continue;
    if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0)
      throw new WorkerConfigError(`"${key}" expected a positive integer, got ${describeValue(v)}`);
    if (key !== 'max_tokens' && v > MAX_TIMER_MS)
      throw new WorkerConfigError(
        `"${key}" expected at most ${MAX_TIMER_MS} ms (about 24 days), got ${describeValue(v)}`,
      );
    out[key] = v;
  }
  if (c['retries'] !== undefined) {
    const r = c['retries'];
    if (typeof r !== 'number' || !Number.isInteger(r) || r < 0 || r > 10)
      throw new WorkerConfigError(`"retries" expected an integer from 0 to 10, got ${describeValue(r)}`);
    out.retries = r;
  }
  if (c['extra'] !== undefined) {
    const e = c['extra'];
    if (e === null || typeof e !== 'object' || Array.isArray(e))
      throw new WorkerConfigError('"extra" expected an object of request body fields');
    out.extra = e as Record<string, unknown>;
  }
  if (c['headers'] !== undefined) {
    const h = c['headers'];
    if (
      h === null ||
      typeof h !== 'object' ||
      Array.isArray(h) ||
      !Object.values(h).every((v) => typeof v === 'string')
    )
      throw new WorkerConfigError('"headers" expected an object of header names to string values');
    if (
      Object.keys(h).some(
        (k) => k.toLowerCase() === 'authorization' || k.toLowerCase() === out.api_key_header,
      )
    )
      throw new WorkerConfigError(
        '"headers" must not set Authorization or the key\'s header',
        'name the variable holding the key in "api_key_env"',
      );
    out.headers = h as Record<string, string>;
  }
  return out;
}

/** The chat endpoint's URL for the protocol. */
export function chatUrl(config: Pick<HttpLlmConfig, 'adapter' | 'endpoint'>): URL {
  const url = new URL(config.endpoint);
  const path = url.pathname.replace(/\/+$/, '');
  if (config.adapter === 'ollama') {
    if (!path.endsWith('/api/chat')) url.pathname = `${path}/api/chat`;
  } else if (!path.endsWith('/chat/completions')) {
    url.pathname = path.endsWith('/v1') ? `${path}/chat/completions` : `${path}/v1/chat/completions`;
  }
  return url;
}

/** Why one attempt failed, and whether another may follow. */
class AttemptError extends Error {
  constructor(
    message: string,
    readonly reason: string,
    readonly retryable: boolean,
    readonly fatal = false,
    readonly retryAfterMs?: number,
  ) {
    super(message);
  }
}

const TRANSIENT_STATUS = new Set([408, 429, 500, 502, 503, 504]);
/** The longest answer taken (characters; bytes for a body): as much as the cli adapter takes from stdout. */
const ANSWER_MAX = STDOUT_MAX;
/** Answers no attempt again can fix: the owner must change the key, the model or the request. */
const FATAL_STATUS = new Set([400, 401, 403, 404, 422]);

/** Serves stages with an LLM over HTTP, streaming its tokens into `message` (and `reasoning`) progress. */
export class HttpLlmAdapter implements WorkerAdapter {
  readonly kind: 'openai' | 'ollama';
  readonly config: HttpLlmConfig;
  private readonly url: URL;

  constructor(
    config: unknown,
    private readonly env: NodeJS.ProcessEnv = process.env,
  ) {
    this.config = checkHttpLlmConfig(config);
    this.kind = this.config.adapter;
    this.url = chatUrl(this.config);
    this.apiKey();
  }

  /** The URL as it may appear in messages: no query string (some gateways take keys there). */
  private get shownUrl(): string {
    return `${this.url.origin}${this.url.pathname}`;
  }

  private keyHeader(key: string): Record<string, string> {
    const name = this.config.api_key_header;
    return name === undefined || name === 'authorization'
      ? { authorization: `Bearer ${key}` }
      : { [name]: key };
  }

  private apiKey(): string | undefined {
    const name = this.config.api_key_env;
    if (name === undefined) return undefined;
    const key = this.env[name];
    if (key === undefined || key === '')
      throw new WorkerConfigError(
        `the environment variable ${name} named by "api_key_env" is not set`,
        `export ${name} in the environment of the worker process`,
      );
    return key;
  }

  async run(input: AdapterInput): Promise<AdapterOutcome> {
    const c = this.config;
    let key: string | undefined;
    try {
      key = this.apiKey();
    } catch (err) {
      return { status: 'failed', reason: 'config', error: (err as Error).message, fatal: true };
    }
    const redact = (text: string) => (key === undefined ? text : text.replaceAll(key, '[redacted]'));
    const deadline = new AbortController();
    const total = c.timeout_ms ?? 10 * 60_000;
    // A task stopped while its inputs were read: no request at all.
    if (input.signal.aborted)
      return { status: 'failed', reason: 'aborted', error: 'the run no longer needs this task' };
    const timer = setTimeout(() => deadline.abort(), total);
    const onAbort = () => deadline.abort();
    input.signal.addEventListener('abort', onAbort, { once: true });
    const retries = c.retries ?? 2;
    const backoff = c.retry_backoff_ms ?? 500;
    input.emit({
      kind: 'status',
      payload: { adapter: this.kind, state: 'requesting', model: c.model, url: this.shownUrl },
    });
    try {
      for (let attempt = 0; ; attempt++) {
        try {
          const answer = await this.attempt(input, key, deadline.signal);
          if (answer.text.trim() === '')
            return {
              status: 'failed',
              reason: 'empty',
              error: `${c.model} at ${this.shownUrl} answered with no content (finish reason ${answer.finish ?? 'none'})`,
            };
          input.emit({
            kind: 'status',
            payload: {
              adapter: this.kind,
              state: 'done',
              finish_reason: answer.finish ?? null,
              ...(answer.usage === undefined ? {} : { usage: answer.usage }),
            },
          });
          return { status: 'delivered', value: answer.text, summary: firstLine(answer.text) };
        } catch (err) {
          if (input.signal.aborted)
            return { status: 'failed', reason: 'aborted', error: 'the run no longer needs this task' };
          if (deadline.signal.aborted)
            return {
              status: 'failed',
              reason: 'timeout',
              error: `${c.model} at ${this.shownUrl} did not finish within ${total} ms`,
            };
          const e =
            err instanceof AttemptError
              ? err
              : new AttemptError(`cannot reach ${this.shownUrl}: ${causeOf(err)}`, 'network', true);
          if (!e.retryable || attempt >= retries)
            return {
              status: 'failed',
              reason: e.reason,
              error: redact(attempt > 0 ? `${e.message} (after ${attempt + 1} attempts)` : e.message),
              ...(e.fatal ? { fatal: true } : {}),
            };
          const wait = Math.min(e.retryAfterMs ?? backoff * 2 ** attempt, 30_000);
          input.emit({
            kind: 'status',
            payload: {
              adapter: this.kind,
              state: 'retrying',
              attempt: attempt + 2,
              after_ms: wait,
              error: redact(e.message),
            },
          });
          await sleep(wait, deadline.signal);
        }
      }
    } finally {
      clearTimeout(timer);
      input.signal.removeEventListener('abort', onAbort);
    }
  }

  private body(input: AdapterInput): Record<string, unknown> {
    const c = this.config;
    const messages = [
      { role: 'system', content: c.system ?? DEFAULT_SYSTEM },
      { role: 'user', content: input.prompt },
    ];
    if (c.adapter === 'ollama') {
      const options: Record<string, unknown> = {};
      if (c.temperature !== undefined) options['temperature'] = c.temperature;
      if (c.max_tokens !== undefined) options['num_predict'] = c.max_tokens;
      return {
        model: c.model,
        messages,
        stream: true,
        ...(Object.keys(options).length > 0 ? { options } : {}),
        ...c.extra,
      };
    }
    return {
      model: c.model,
      messages,
      stream: true,
      ...(c.temperature === undefined ? {} : { temperature: c.temperature }),
      ...(c.max_tokens === undefined ? {} : { max_tokens: c.max_tokens }),
      ...c.extra,
    };
  }

  /** One request: resolves with the whole answer, or throws an AttemptError. */
  private async attempt(
    input: AdapterInput,
    key: string | undefined,
    deadline: AbortSignal,
  ): Promise<{ text: string; finish?: string; usage?: unknown }> {
    const c = this.config;
    const request = new AbortController();
    const stopRequest = () => request.abort();
    deadline.addEventListener('abort', stopRequest, { once: true });
    const idleMs = c.idle_timeout_ms ?? 120_000;
    let idle: ReturnType<typeof setTimeout> | undefined;
    let stalled = false;
    const touch = () => {
      if (idle !== undefined) clearTimeout(idle);
      idle = setTimeout(() => {
        stalled = true;
        request.abort();
      }, idleMs);
    };
    try {
      touch();
      let response: Response;
      try {
        response = await fetch(this.url, {
          method: 'POST',
          headers: {
            'content-type': 'application/json',
            accept: c.adapter === 'ollama' ? 'application/x-ndjson' : 'text/event-stream',
            ...c.headers,
            ...(key === undefined ? {} : this.keyHeader(key)),
          },
          body: JSON.stringify(this.body(input)),
          // A redirect would carry the key (in any header but Authorization) and the prompt elsewhere.
          redirect: 'manual',
          signal: request.signal,
        });
      } catch (err) {
        if (stalled)
          throw new AttemptError(`${this.shownUrl} did not answer within ${idleMs} ms`, 'timeout', true);
        throw err;
      }
      if (response.status >= 300 && response.status < 400) {
        await response.body?.cancel().catch(() => {});
        throw new AttemptError(
          `POST ${this.shownUrl} answered ${response.status} redirecting to ${shownLocation(response, this.url)}: redirects are not followed, since they would carry the key and the prompt to another address`,
          'http',
          false,
          true,
        );
      }
      if (!response.ok) throw await this.httpError(response);
      const type = response.headers.get('content-type') ?? '';
      const answer = new Answer(input.emit);
      if (response.body === null)
        throw new AttemptError(`${this.shownUrl} answered with no body`, 'protocol', true);
      if (type.includes('application/json') && !type.includes('ndjson')) {
        // A server that ignores `stream: true` answers with one JSON document.
        const doc = parseJson(await readText(response.body, touch, ANSWER_MAX, this.shownUrl), this.shownUrl);
        this.applyChunk(doc, answer);
        answer.end();
        return answer.result();
      }
      let finished = false;
      try {
        const lines = readLines(response.body, touch);
        if (c.adapter === 'ollama') {
          for await (const line of lines) {
            if (line.trim() === '') continue;
            const chunk = parseJson(line, this.shownUrl);
            this.applyChunk(chunk, answer);
            if ((chunk as { done?: unknown }).done === true) {
              finished = true;
              break;
            }
          }
        } else {
          for await (const data of sseData(lines)) {
            if (data.trim() === '[DONE]') {
              finished = true;
              break;
            }
            this.applyChunk(parseJson(data, this.shownUrl), answer);
          }
        }
      } catch (err) {
        if (err instanceof AttemptError) throw new AttemptError(err.message, err.reason, false);
        if (stalled)
          throw new AttemptError(
            `${this.shownUrl} sent nothing for ${idleMs} ms in the middle of its answer`,
            'timeout',
            false,
          );
        throw new AttemptError(
          `the stream from ${this.shownUrl} broke off: ${causeOf(err)}`,
          'network',
          false,
        );
      }
      answer.end();
      if (!finished && answer.finish === undefined)
        throw new AttemptError(
          `the stream from ${this.shownUrl} ended before ${c.adapter === 'ollama' ? '"done": true' : 'data: [DONE]'}`,
          'protocol',
          false,
        );
      return answer.result();
    } finally {
      if (idle !== undefined) clearTimeout(idle);
      deadline.removeEventListener('abort', stopRequest);
    }
  }

  /** Applies one chunk (or a whole non-streamed answer) of either protocol. */
  private applyChunk(chunk: unknown, answer: Answer): void {
    if (chunk === null || typeof chunk !== 'object')
      throw new AttemptError(`${this.shownUrl} sent a chunk that is not a JSON object`, 'protocol', false);
    const o = chunk as Record<string, unknown>;
    if (o['error'] !== undefined)
      throw new AttemptError(
        `${this.shownUrl} reported an error in its answer: ${errorText(o['error'])}`,
        'http',
        false,
      );
    if (this.config.adapter === 'ollama') {
      const m = o['message'] as { content?: unknown; thinking?: unknown } | undefined;
      if (typeof m?.thinking === 'string' && m.thinking !== '') answer.reasoning(m.thinking);
      if (typeof m?.content === 'string' && m.content !== '') answer.content(m.content);
      if (o['done'] === true) {
        answer.finish = typeof o['done_reason'] === 'string' ? o['done_reason'] : 'stop';
        answer.usage = {
          prompt_tokens: o['prompt_eval_count'] ?? null,
          completion_tokens: o['eval_count'] ?? null,
        };
      }
      return;
    }
    const choice = (o['choices'] as Array<Record<string, unknown>> | undefined)?.[0];
    if (o['usage'] !== undefined && o['usage'] !== null) answer.usage = o['usage'];
    if (choice === undefined) return;
    const part = (choice['delta'] ?? choice['message']) as Record<string, unknown> | undefined;
    const thinking = part?.['reasoning_content'] ?? part?.['reasoning'];
    if (typeof thinking === 'string' && thinking !== '') answer.reasoning(thinking);
    if (typeof part?.['content'] === 'string' && part['content'] !== '') answer.content(part['content']);
    if (typeof choice['finish_reason'] === 'string') answer.finish = choice['finish_reason'];
  }

  private async httpError(response: Response): Promise<AttemptError> {
    let detail = '';
    try {
      const text = response.body === null ? '' : await readText(response.body, () => {}, 4096, '', true);
      try {
        detail = errorText((JSON.parse(text) as { error?: unknown }).error ?? text);
      } catch {
        detail = text.trim();
      }
    } catch {
      detail = '';
    }
    const status = response.status;
    const retryAfter = Number(response.headers.get('retry-after'));
    return new AttemptError(
      `POST ${this.shownUrl} answered ${status}${response.statusText ? ` ${response.statusText}` : ''}${detail ? `: ${detail.slice(0, 500)}` : ''}`,
      'http',
      TRANSIENT_STATUS.has(status),
      FATAL_STATUS.has(status),
      Number.isFinite(retryAfter) && retryAfter > 0 ? retryAfter * 1000 : undefined,
    );
  }
}

/**
 * The answer being streamed: content tokens go out as `message` progress, reasoning as `reasoning`;
 * `<think>…</think>` spans inside the content (some local models) count as reasoning and stay out of
 * the artifact.
 */
class Answer {
  private text = '';
  private pending = '';
  private thinking = false;
  finish: string | undefined;
  usage: unknown;

  constructor(private readonly emit: (p: StageProgress) => void) {}

  reasoning(text: string): void {
    this.emit({ kind: 'reasoning', payload: { text } });
  }

  content(chunk: string): void {
    let s = this.pending + chunk;
    this.pending = '';
    for (;;) {
      const tag = this.thinking ? '</think>' : '<think>';
      const at = s.indexOf(tag);
      if (at >= 0) {
        this.out(s.slice(0, at));
        this.thinking = !this.thinking;
        s = s.slice(at + tag.length);
        continue;
      }
      // Hold back what could be the start of a tag split across chunks.
      let keep = 0;
      for (let n = Math.min(tag.length - 1, s.length); n > 0; n--) {
        if (tag.startsWith(s.slice(-n))) {
          keep = n;
          break;
        }
      }
      this.out(s.slice(0, s.length - keep));
      this.pending = s.slice(s.length - keep);
      return;
    }
  }

  private out(text: string): void {
    if (text === '') return;
    if (this.thinking) this.reasoning(text);
    else {
      if (this.text.length + text.length > ANSWER_MAX)
        throw new AttemptError(
          `the answer is longer than ${ANSWER_MAX} characters, more than an artifact may hold`,
          'output',
          false,
        );
      this.text += text;
      this.emit({ kind: 'message', payload: { text } });
    }
  }

  end(): void {
    const rest = this.pending;
    this.pending = '';
    this.out(rest);
  }

  result(): { text: string; finish?: string; usage?: unknown } {
    return {
      text: this.text,
      ...(this.finish === undefined ? {} : { finish: this.finish }),
      ...(this.usage === undefined ? {} : { usage: this.usage }),
    };
  }
}

/** The chunks of a byte stream, calling `onChunk` as each arrives; the stream is released when left early. */
async function* chunksOf(body: ReadableStream<Uint8Array>, onChunk: () => void): AsyncGenerator<Uint8Array> {
  const reader = body.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return;
      onChunk();
      yield value;
    }
  } finally {
    await reader.cancel().catch(() => {});
  }
}

/**
 * The text of a whole body, calling `onChunk` whenever bytes arrive (so a slow answer is not idle).
 * More than `max` bytes: with `cut`, the first `max`; else an AttemptError.
 */
async function readText(
  body: ReadableStream<Uint8Array>,
  onChunk: () => void,
  max: number,
  url: string,
  cut = false,
): Promise<string> {
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const value of chunksOf(body, onChunk)) {
    size += value.length;
    if (size > max) {
      if (!cut) throw new AttemptError(`${url} answered with more than ${max} bytes`, 'output', false);
      chunks.push(value.subarray(0, value.length - (size - max)));
      break;
    }
    chunks.push(value);
  }
  return new TextDecoder().decode(Buffer.concat(chunks));
}

/** Where a redirect points, shown without its query string (which could hold a secret). */
function shownLocation(response: Response, base: URL): string {
  const location = response.headers.get('location');
  if (location === null) return 'nowhere';
  try {
    const u = new URL(location, base);
    return `${u.origin}${u.pathname}`;
  } catch {
    return 'an address that is not a URL';
  }
}

/** Lines of a byte stream (LF or CRLF), calling `onChunk` whenever bytes arrive. */
async function* readLines(body: ReadableStream<Uint8Array>, onChunk: () => void): AsyncGenerator<string> {
  const decoder = new TextDecoder();
  let buffer = '';
  for await (const value of chunksOf(body, onChunk)) {
    buffer += decoder.decode(value, { stream: true });
    if (buffer.length > ANSWER_MAX)
      throw new AttemptError(`a line of the stream is longer than ${ANSWER_MAX} characters`, 'output', false);
    let nl = buffer.indexOf('\n');
    while (nl >= 0) {
      yield buffer.slice(0, nl).replace(/\r$/, '');
      buffer = buffer.slice(nl + 1);
      nl = buffer.indexOf('\n');
    }
  }
  buffer += decoder.decode();
  if (buffer !== '') yield buffer.replace(/\r$/, '');
}

/** The `data` of each server-sent event (several `data:` lines of one event joined with newlines). */
async function* sseData(lines: AsyncIterable<string>): AsyncGenerator<string> {
  let data: string[] = [];
  for await (const line of lines) {
    if (line === '') {
      if (data.length > 0) yield data.join('\n');
      data = [];
    } else if (line.startsWith('data:')) {
      data.push(line.slice(line[5] === ' ' ? 6 : 5));
    }
    // Comments (":…"), event, id and retry fields carry nothing a chat completion needs.
  }
  if (data.length > 0) yield data.join('\n');
}

function parseJson(text: string, url: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw new AttemptError(
      `${url} sent a chunk that is not JSON: ${JSON.stringify(text.slice(0, 120))}`,
      'protocol',
      false,
    );
  }
}

function errorText(error: unknown): string {
  if (typeof error === 'string') return error;
  if (error !== null && typeof error === 'object') {
    const m = (error as { message?: unknown }).message;
    if (typeof m === 'string') return m;
  }
  return JSON.stringify(error);
}

function causeOf(err: unknown): string {
  const cause = (err as { cause?: { code?: unknown; message?: unknown } } | null)?.cause;
  if (typeof cause?.code === 'string') return cause.code;
  if (typeof cause?.message === 'string') return cause.message;
  return err instanceof Error ? err.message : String(err);
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}
