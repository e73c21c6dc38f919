// The local API client of a data directory that follows its daemon across restarts (a restart may change the port).
import { ApiClient, DaemonNotRunningError } from '../api/client.ts';

/**
 * Sends each request to the daemon that `dataDir` names now: when the daemon it knew stops answering
 * and another has announced itself for the directory, the request goes once more to the new one.
 * A request is repeated only against a different daemon, whose predecessor refused the connection.
 */
export class DataDirApiClient extends ApiClient {
  private current: ApiClient;

  constructor(readonly dataDir: string) {
    const first = ApiClient.forDataDir(dataDir);
    super(first.baseUrl, '');
    this.current = first;
  }

  override async request<T>(method: 'GET' | 'POST', path: string, body?: unknown): Promise<T> {
    const used = this.current;
    try {
      return await used.request<T>(method, path, body);
    } catch (err) {
      if (!(err instanceof DaemonNotRunningError)) throw err;
      let next: ApiClient;
      try {
        next = ApiClient.forDataDir(this.dataDir);
      } catch {
        throw err;
      }
      if (next.baseUrl === used.baseUrl) throw err;
      this.current = next;
      return next.request<T>(method, path, body);
    }
  }
}
