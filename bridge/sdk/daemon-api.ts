// The local API client of a data directory that follows its daemon across restarts (a restart may change the port).
import { ApiClient, type ApiClientOptions, ApiError, DaemonNotRunningError } from '../api/client.ts';

/**
 * Sends each request to the daemon that `dataDir` names now. A request goes once more to the daemon
 * the directory names when the one it knew refused the connection (it stopped; nothing was sent) or
 * refused the token (a daemon restarted on the same port writes a new one; nothing was done) and the
 * directory now names another daemon or token. A request that may have been applied is never repeated.
 */
export class DataDirApiClient extends ApiClient {
  private current: ApiClient;

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
      if (this.current === used) this.current = next;
      used.close();
      return this.current.request<T>(method, path, body);
    }
  }

  override close(): void {
    super.close();
    this.current.close();
  }
}
