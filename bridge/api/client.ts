// Client of a running daemon's local API: finds it through the data directory and authenticates with its token.
import { readFileSync } from 'node:fs';
import { AnxError } from '../../runtime/errors.ts';
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
  constructor(
    readonly baseUrl: string,
    private readonly token: string,
  ) {}

  /** Connects to the daemon of `dataDir`, or throws `DaemonNotRunningError`. */
  static forDataDir(dataDir: string): ApiClient {
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
    return new ApiClient(info.url, token);
  }

  async request<T>(method: 'GET' | 'POST', path: string, body?: unknown): Promise<T> {
    let res: Response;
    try {
      res = await fetch(this.baseUrl + path, {
        method,
        headers: {
          authorization: `Bearer ${this.token}`,
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
    } catch (err) {
      throw new DaemonNotRunningError(
        this.baseUrl,
        `it does not answer: ${(err as Error).cause ?? (err as Error).message}`,
      );
    }
    const text = await res.text();
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
    if (!res.ok) {
      const error = (parsed as { error?: { code?: string; message?: string; hint?: string } } | undefined)
        ?.error;
      throw new ApiError(
        res.status,
        error?.code ?? 'ANX_API_ERROR',
        error?.message ?? `HTTP ${res.status}`,
        error?.hint,
      );
    }
    return parsed as T;
  }

  get<T>(path: string): Promise<T> {
    return this.request<T>('GET', path);
  }

  post<T>(path: string, body?: unknown): Promise<T> {
    return this.request<T>('POST', path, body ?? {});
  }
}
