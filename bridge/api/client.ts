// Client of a running daemon's local API: finds it through the data directory and authenticates with its token.
import { readFileSync } from 'node:fs';
import { Packr } from 'msgpackr';
import { AnxError } from '../../runtime/errors.ts';
import type { EventV1 } from '../../runtime/events/event.ts';
import { dataFiles } from '../../runtime/paths.ts';

/** No daemon answers for this data directory. */
export class DaemonNotRunningError extends AnxError {
  constructor(dataDir: string, detail?: string) {
    super(
      'ANX_DAEMON_NOT_RUNNING',
      `no anx-runtime daemon is running for ${dataDir}${detail ? ` (${detail})` : ''}`,
      {
        hint: 'start one with `anx-runtime start` (add --detach to run it in the background), or pass the --data-dir it uses',
      },
    );
  }
}

/**
 * The daemon took the request but the connection broke before its answer came (it stopped or was
 * killed meanwhile): the request may or may not have been applied, so nothing repeats it on its own.
 */
export class DaemonConnectionLostError extends AnxError {
  constructor(baseUrl: string, detail: string) {
    super(
      'ANX_DAEMON_CONNECTION_LOST',
      `the daemon at ${baseUrl} closed the connection before answering (${detail}): the request may have been applied`,
      {
        hint: 'check before repeating it (`anx-runtime status`, then what it changed); a message sent again with the same id is not delivered twice',
      },
    );
  }
}

/**
 * The daemon took the request but gave no answer within the client's time limit (it is stopped,
 * overloaded or stuck): the request may still be applied, so nothing repeats it on its own.
 */
export class DaemonTimeoutError extends AnxError {
  constructor(baseUrl: string, timeoutMs: number) {
    super(
      'ANX_DAEMON_TIMEOUT',
      `the daemon at ${baseUrl} did not answer within ${timeoutMs} ms: the request may have been applied`,
      {
        hint: 'check that the daemon is alive (`anx-runtime status`) and what the request changed before repeating it; a longer limit is `requestTimeoutMs` in the SDK',
      },
    );
  }
}

/** How long a request waits for the daemon's whole answer unless the client says otherwise. */
export const DEFAULT_REQUEST_TIMEOUT_MS = 60_000;
/** The longest time limit a client accepts (an hour). */
export const MAX_REQUEST_TIMEOUT_MS = 3_600_000;

export interface ApiClientOptions {
  /** How long one request waits for the daemon's whole answer (ms, 1 to an hour); default 60,000. */
  timeoutMs?: number;
  /**
   * How request bodies travel: `json` (the default), or `msgpack`, which costs both ends far less for
   * large bodies (a batch of thousands of messages). Either way a body must be plain JSON data: with
   * `msgpack`, bytes, Dates and `undefined` in a list are refused by the daemon (`ANX_REQUEST_INVALID`,
   * naming where) instead of being turned into text or dropped as `JSON.stringify` would. Answers are
   * JSON either way.
   */
  bodies?: 'json' | 'msgpack';
}

// Plain maps, no records: what the daemon's msgpack body decoder takes.
const bodyPackr = new Packr({ useRecords: false, moreTypes: false, bundleStrings: false });

/** Errors of a connection that never reached a listening daemon: nothing was sent. */
const NOT_SENT = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EADDRNOTAVAIL', 'EHOSTUNREACH', 'ENETUNREACH']);

function neverSent(cause: unknown): boolean {
  const c = cause as { code?: unknown; errors?: unknown[] } | undefined;
  if (typeof c?.code === 'string' && NOT_SENT.has(c.code)) return true;
  // Several addresses tried (happy eyeballs): none took the connection.
  return Array.isArray(c?.errors) && c.errors.length > 0 && c.errors.every(neverSent);
}

/** An error the daemon answered with; `code`, message and hint come from the daemon. */
export class ApiError extends AnxError {
  constructor(
    readonly status: number,
    code: string,
    message: string,
    hint?: string,
  ) {
    super(code, message, hint === undefined ? undefined : { hint });
  }
}

export interface DaemonInfo {
  pid: number;
  port: number;
  url: string;
  version: string;
  startedAt: number;
  dataDir: string;
}

/** Reads daemon.json; undefined when no daemon has announced itself. */
export function readDaemonInfo(dataDir: string): DaemonInfo | undefined {
  try {
    return JSON.parse(readFileSync(dataFiles.daemon(dataDir), 'utf8')) as DaemonInfo;
  } catch {
    return undefined;
  }
}

/** A thin typed client of the local API. */
export class ApiClient {
  // A true private field: the token stays out of console.log, util.inspect and JSON.stringify.
  readonly #token: string;
  readonly #closing = new AbortController();
  readonly timeoutMs: number;
  readonly bodies: 'json' | 'msgpack';

  constructor(
    readonly baseUrl: string,
    token: string,
    options: ApiClientOptions = {},
  ) {
    this.#token = token;
    const timeoutMs = options.timeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
    if (!Number.isInteger(timeoutMs) || timeoutMs < 1 || timeoutMs > MAX_REQUEST_TIMEOUT_MS)
      throw new AnxError(
        'ANX_REQUEST_INVALID',
        `timeoutMs expected a whole number of milliseconds from 1 to ${MAX_REQUEST_TIMEOUT_MS}, got ${timeoutMs}`,
      );
    this.timeoutMs = timeoutMs;
    const bodies = options.bodies ?? 'json';
    if (bodies !== 'json' && bodies !== 'msgpack')
      throw new AnxError('ANX_REQUEST_INVALID', `bodies expected "json" or "msgpack", got ${String(bodies)}`);
    this.bodies = bodies;
  }

  /** The same daemon with the same token (a client that follows restarts compares them). */
  sameAs(other: ApiClient): boolean {
    return other.baseUrl === this.baseUrl && other.#token === this.#token;
  }

  /** Ends requests still in flight (with `ANX_SDK_CLOSED`) and refuses new ones. */
  close(): void {
    this.#closing.abort();
  }

  /** Connects to the daemon of `dataDir`, or throws `DaemonNotRunningError`. */
  static forDataDir(dataDir: string, options: ApiClientOptions = {}): ApiClient {
    const info = readDaemonInfo(dataDir);
    if (info === undefined) throw new DaemonNotRunningError(dataDir);
    let token: string;
    try {
      token = readFileSync(dataFiles.token(dataDir), 'utf8').trim();
    } catch (err) {
      throw new DaemonNotRunningError(
        dataDir,
        `cannot read its token file: ${(err as NodeJS.ErrnoException).code ?? err}`,
      );
    }
    return new ApiClient(info.url, token, options);
  }

  /**
   * Sends one request and returns the daemon's JSON answer; an answered error is thrown as `ApiError`.
   * A GET cut off before its answer is sent once more on a new connection (a read is safe to repeat;
   * most often the cut is an idle keep-alive connection the daemon closed just as this request was
   * written on it). A POST cut off that way throws `DaemonConnectionLostError`: it may have been applied.
   */
  async request<T>(method: 'GET' | 'POST', path: string, body?: unknown): Promise<T> {
    try {
      return await this.attempt<T>(method, path, body);
    } catch (err) {
      if (method !== 'GET' || !(err instanceof DaemonConnectionLostError)) throw err;
      return this.attempt<T>(method, path, body);
    }
  }

  private async attempt<T>(method: 'GET' | 'POST', path: string, body?: unknown): Promise<T> {
    let payload: string | Uint8Array<ArrayBuffer> | undefined;
    try {
      payload =
        body === undefined
          ? undefined
          : this.bodies === 'msgpack'
            ? // msgpackr's output lives in a plain ArrayBuffer, never a shared one.
              (bodyPackr.pack(body) as Uint8Array<ArrayBuffer>)
            : JSON.stringify(body);
    } catch (err) {
      throw new AnxError(
        'ANX_REQUEST_INVALID',
        `request body expected JSON values: ${(err as Error).message}`,
        {
          hint: 'send text, numbers, lists and plain objects; encode bytes as base64 and big integers as strings',
        },
      );
    }
    if (this.#closing.signal.aborted) throw closedError();
    // One limit for connecting, sending and reading the whole answer; close() ends it sooner.
    const { ending, timer, timedOut } = this.timeLimit();
    const onClose = () => ending.abort();
    this.#closing.signal.addEventListener('abort', onClose, { once: true });
    let res: Response;
    let text: string;
    try {
      res = await fetch(this.baseUrl + path, {
        method,
        headers: {
          authorization: `Bearer ${this.#token}`,
          ...(payload === undefined
            ? {}
            : { 'content-type': typeof payload === 'string' ? 'application/json' : 'application/msgpack' }),
        },
        ...(payload === undefined ? {} : { body: payload }),
        signal: ending.signal,
      });
      text = await res.text();
    } catch (err) {
      throw this.fetchFailure(err, timedOut());
    } finally {
      clearTimeout(timer);
      this.#closing.signal.removeEventListener('abort', onClose);
    }
    let parsed: unknown;
    try {
      parsed = text === '' ? undefined : JSON.parse(text);
    } catch {
      throw new ApiError(
        res.status,
        'ANX_API_RESPONSE',
        `the daemon answered ${res.status} with a body that is not JSON`,
      );
    }
    if (!res.ok) throw answeredError(res.status, parsed);
    return parsed as T;
  }

  /** A controller aborted once the client's time limit passes; `timedOut` says whether that is why. */
  private timeLimit(): { ending: AbortController; timer: NodeJS.Timeout; timedOut: () => boolean } {
    const ending = new AbortController();
    let fired = false;
    const timer = setTimeout(() => {
      fired = true;
      ending.abort();
    }, this.timeoutMs);
    return { ending, timer, timedOut: () => fired };
  }

  /** What a request that threw before its answer came means: closed here, timed out, no daemon, or cut off. */
  private fetchFailure(err: unknown, timedOut: boolean): AnxError {
    if (this.#closing.signal.aborted) return closedError();
    if (timedOut) return new DaemonTimeoutError(this.baseUrl, this.timeoutMs);
    const cause = (err as Error).cause;
    if (neverSent(cause))
      return new DaemonNotRunningError(
        this.baseUrl,
        `it does not answer: ${cause ?? (err as Error).message}`,
      );
    return new DaemonConnectionLostError(this.baseUrl, String(cause ?? (err as Error).message));
  }

  get<T>(path: string): Promise<T> {
    return this.request<T>('GET', path);
  }

  /**
   * Follows `GET /v1/events` (Server-Sent Events): yields the events of `query.id` (`*`: all) with a
   * sequence past `query.after`, those committed already and then each as it commits, until `signal`
   * aborts (the generator returns) or the daemon ends the stream (`DaemonConnectionLostError`, which
   * says how far it got: resume with `after` set to the last event's `seq`). The time limit covers the
   * answer's headers only.
   */
  async *events(
    query: { id: string; kinds?: readonly string[]; since?: number | string; after?: number },
    signal?: AbortSignal,
  ): AsyncGenerator<EventV1> {
    if (this.#closing.signal.aborted) throw closedError();
    const params = new URLSearchParams({ id: query.id, after: String(query.after ?? 0) });
    if (query.kinds !== undefined) params.set('kind', query.kinds.join(','));
    if (query.since !== undefined) params.set('since', String(query.since));
    const { ending, timer, timedOut } = this.timeLimit();
    const stop = () => ending.abort();
    this.#closing.signal.addEventListener('abort', stop, { once: true });
    signal?.addEventListener('abort', stop, { once: true });
    if (signal?.aborted) stop();
    const ended = () => signal?.aborted === true || this.#closing.signal.aborted;
    try {
      let res: Response;
      try {
        res = await fetch(`${this.baseUrl}/v1/events?${params}`, {
          headers: { authorization: `Bearer ${this.#token}`, accept: 'text/event-stream' },
          signal: ending.signal,
        });
      } catch (err) {
        if (signal?.aborted) return;
        throw this.fetchFailure(err, timedOut());
      } finally {
        clearTimeout(timer);
      }
      if (!res.ok || res.body === null) {
        let parsed: unknown;
        try {
          parsed = JSON.parse(await res.text());
        } catch {
          parsed = undefined;
        }
        throw answeredError(res.status, parsed);
      }
      const decoder = new TextDecoder();
      let buffer = '';
      try {
        const reader = res.body.getReader();
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buffer += decoder.decode(value, { stream: true });
          let end = buffer.indexOf('\n\n');
          while (end !== -1) {
            const block = buffer.slice(0, end);
            buffer = buffer.slice(end + 2);
            end = buffer.indexOf('\n\n');
            // Comments (`: keep-alive`) and the `id:`/`event:` lines carry nothing the data does not.
            const data = block
              .split('\n')
              .filter((line) => line.startsWith('data: '))
              .map((line) => line.slice(6))
              .join('\n');
            if (data !== '') yield JSON.parse(data) as EventV1;
          }
        }
      } catch (err) {
        if (ended()) return;
        throw new DaemonConnectionLostError(
          this.baseUrl,
          `the event stream broke: ${(err as Error).message}`,
        );
      }
      if (ended()) return;
      throw new DaemonConnectionLostError(this.baseUrl, 'the daemon ended the event stream');
    } finally {
      this.#closing.signal.removeEventListener('abort', stop);
      signal?.removeEventListener('abort', stop);
      // A consumer that stops early (break) ends the request too.
      ending.abort();
    }
  }

  post<T>(path: string, body?: unknown): Promise<T> {
    return this.request<T>('POST', path, body ?? {});
  }
}

/** The error an answer of the daemon that is not 2xx stands for: its `{error: {code, message, hint}}`. */
function answeredError(status: number, parsed: unknown): ApiError {
  const error = (parsed as { error?: { code?: string; message?: string; hint?: string } } | undefined)?.error;
  return new ApiError(
    status,
    error?.code ?? 'ANX_API_ERROR',
    error?.message ?? `HTTP ${status}`,
    error?.hint,
  );
}

function closedError(): AnxError {
  return new AnxError('ANX_SDK_CLOSED', 'the client was closed while the request was in flight', {
    hint: 'close a client only once its calls have settled; connect again to go on',
  });
}
