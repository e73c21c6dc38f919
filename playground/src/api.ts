// The page's client of the daemon's local API: the token handed over in the URL fragment, JSON requests and the SSE event stream.
import type { EventV1 } from '../../runtime/events/event.ts';

const TOKEN_KEY = 'anx.playground.token';

/** An error answer of the API, with its typed code and hint. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly hint?: string,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

/**
 * Takes the token from `#token=…` (what `anx-runtime playground` prints), keeps it in this tab's
 * session storage and removes it from the address bar, so it is neither bookmarked nor shown.
 * The fragment never travels to the server, so the token never appears in a request line.
 */
export function takeToken(loc: Location, storage: Storage, history: History): string | undefined {
  const params = new URLSearchParams(loc.hash.replace(/^#/, ''));
  const fromHash = params.get('token');
  if (fromHash !== null && fromHash !== '') {
    storage.setItem(TOKEN_KEY, fromHash);
    params.delete('token');
    const rest = params.toString();
    history.replaceState(null, '', `${loc.pathname}${loc.search}${rest === '' ? '' : `#${rest}`}`);
    return fromHash;
  }
  return storage.getItem(TOKEN_KEY) ?? undefined;
}

export function saveToken(storage: Storage, token: string): void {
  storage.setItem(TOKEN_KEY, token);
}

export function forgetToken(storage: Storage): void {
  storage.removeItem(TOKEN_KEY);
}

export class PlaygroundApi {
  constructor(private readonly token: string) {}

  private headers(json: boolean): Record<string, string> {
    return {
      authorization: `Bearer ${this.token}`,
      ...(json ? { 'content-type': 'application/json' } : {}),
    };
  }

  async get<T>(path: string): Promise<T> {
    return this.answer<T>(await fetch(path, { headers: this.headers(false), cache: 'no-store' }));
  }

  async post<T>(path: string, body: unknown): Promise<T> {
    return this.answer<T>(
      await fetch(path, { method: 'POST', headers: this.headers(true), body: JSON.stringify(body) }),
    );
  }

  private async answer<T>(res: Response): Promise<T> {
    const body = (await res.json().catch(() => ({}))) as {
      error?: { code?: string; message?: string; hint?: string };
    };
    if (!res.ok) {
      const e = body.error ?? {};
      throw new ApiError(res.status, e.code ?? 'ANX_HTTP', e.message ?? `HTTP ${res.status}`, e.hint);
    }
    return body as T;
  }

  /**
   * Follows `/v1/events` (Server-Sent Events) with the token in the Authorization header — read with
   * fetch rather than EventSource, which cannot send headers and would need the token in the URL.
   * Reconnects after a drop, resuming after the last event seen. Returns a function that stops it.
   */
  events(
    query: { id?: string; after?: number },
    onEvents: (events: EventV1[]) => void,
    onState?: (connected: boolean) => void,
    onUnauthorized?: () => void,
  ): () => void {
    const controller = new AbortController();
    let after = query.after ?? 0;
    const run = async () => {
      while (!controller.signal.aborted) {
        try {
          const params = new URLSearchParams({ id: query.id ?? '*', after: String(after) });
          const res = await fetch(`/v1/events?${params}`, {
            headers: this.headers(false),
            signal: controller.signal,
          });
          if (!res.ok || res.body === null)
            throw new ApiError(res.status, 'ANX_HTTP', `events: HTTP ${res.status}`);
          onState?.(true);
          const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
          let buffer = '';
          for (;;) {
            const { value, done } = await reader.read();
            if (done) break;
            buffer += value;
            const blocks = buffer.split('\n\n');
            buffer = blocks.pop() ?? '';
            const batch: EventV1[] = [];
            for (const block of blocks) {
              const data = block
                .split('\n')
                .filter((l) => l.startsWith('data: '))
                .map((l) => l.slice(6))
                .join('\n');
              if (data === '') continue;
              const event = JSON.parse(data) as EventV1;
              after = Math.max(after, event.seq);
              batch.push(event);
            }
            if (batch.length > 0) onEvents(batch);
          }
        } catch (err) {
          if (controller.signal.aborted) return;
          if (err instanceof ApiError && err.status === 401) {
            onState?.(false);
            onUnauthorized?.();
            return;
          }
        }
        onState?.(false);
        await new Promise((r) => setTimeout(r, 1000));
      }
    };
    void run();
    return () => controller.abort();
  }
}
