// The local API client of a data directory that follows its daemon across restarts (a restart may change the port).

import type { AnxError } from '../../runtime/errors.ts';
import type { EventV1 } from '../../runtime/events/event.ts';
import {
  ApiClient,
  type ApiClientOptions,
  ApiError,
  DaemonConnectionLostError,
  DaemonNotRunningError,
  DaemonTimeoutError,
} from '../api/client.ts';

/** How long a follower waits before it asks the data directory again for a daemon that went away. */
export const FOLLOW_RETRY_MS = 1_000;

/**
 * Sends each request to the daemon that `dataDir` names now. A request goes once more to the daemon
 * the directory names when the one it knew refused the connection (it stopped; nothing was sent) or
 * refused the token (a daemon restarted on the same port writes a new one; nothing was done) and the
 * directory now names another daemon or token. A request that may have been applied is never repeated.
 */
export class DataDirApiClient extends ApiClient {
  private current: ApiClient;
  /** Clients of daemons this one has moved on from (closed with it). */
  private readonly retired = new Set<ApiClient>();

  constructor(
    readonly dataDir: string,
    private readonly options: ApiClientOptions = {},
  ) {
    const first = ApiClient.forDataDir(dataDir, options);
    super(first.baseUrl, '', options);
    this.current = first;
  }

  override async request<T>(method: 'GET' | 'POST', path: string, body?: unknown): Promise<T> {
    const used = this.current;
    try {
      return await used.request<T>(method, path, body);
    } catch (err) {
      const refused =
        err instanceof DaemonNotRunningError || (err instanceof ApiError && err.code === 'ANX_UNAUTHORIZED');
      if (!refused) throw err;
      let next: ApiClient;
      try {
        next = ApiClient.forDataDir(this.dataDir, this.options);
      } catch {
        throw err;
      }
      if (next.sameAs(used)) throw err;
      // The client it used is not closed here: requests still in flight on it end by themselves (refused,
      // they come here too), where closing it would end them with ANX_SDK_CLOSED as if this one had closed.
      if (this.current === used) {
        this.current = next;
        this.retired.add(used);
      }
      return this.current.request<T>(method, path, body);
    }
  }

  /**
   * Follows the events of `query.id` as `events` does, across daemon restarts: when the stream breaks or
   * no daemon answers, it connects again (every `FOLLOW_RETRY_MS`) to the daemon the directory names then,
   * resuming after the last event it yielded, so none is skipped or repeated. Ends only when `signal`
   * aborts. `onWait` hears why it waits, once per outage; other errors (a bad query) are thrown.
   */
  async *follow(
    query: { id: string; kinds?: readonly string[]; since?: number | string; after?: number },
    signal: AbortSignal,
    onWait?: (reason: AnxError) => void,
  ): AsyncGenerator<EventV1> {
    let after = query.after ?? 0;
    let waiting = false;
    while (!signal.aborted) {
      try {
        const daemon = ApiClient.forDataDir(this.dataDir, this.options);
        try {
          for await (const event of daemon.events({ ...query, after }, signal)) {
            waiting = false;
            after = Math.max(after, event.seq);
            yield event;
          }
        } finally {
          daemon.close();
        }
      } catch (err) {
        if (!daemonGone(err)) throw err;
        if (!waiting) onWait?.(err);
        waiting = true;
      }
      await pause(FOLLOW_RETRY_MS, signal);
    }
  }

  /**
   * `GET path`, asked again (every `FOLLOW_RETRY_MS`) while no daemon answers for the directory, as
   * `follow` waits; undefined when `signal` aborts first. `onWait` hears why it waits, once.
   */
  async getOnceAnswered<T>(
    path: string,
    signal: AbortSignal,
    onWait?: (reason: AnxError) => void,
  ): Promise<T | undefined> {
    let waiting = false;
    while (!signal.aborted) {
      try {
        return await this.get<T>(path);
      } catch (err) {
        if (!daemonGone(err)) throw err;
        if (!waiting) onWait?.(err);
        waiting = true;
      }
      await pause(FOLLOW_RETRY_MS, signal);
    }
    return undefined;
  }

  override close(): void {
    super.close();
    this.current.close();
    for (const client of this.retired) client.close();
  }
}

/** An error that says no daemon answers for now (stopped, restarting, a new token): one to wait out. */
export function daemonGone(err: unknown): err is AnxError {
  return (
    err instanceof DaemonNotRunningError ||
    err instanceof DaemonConnectionLostError ||
    err instanceof DaemonTimeoutError ||
    (err instanceof ApiError && err.code === 'ANX_UNAUTHORIZED')
  );
}

/** Resolves after `ms`, or at once when `signal` aborts. */
function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise<void>((resolve) => {
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
    function done() {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
  });
}
