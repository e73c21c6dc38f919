// Where a host keeps its data: the default data directory and the files inside it.
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';

/** `--data-dir`, else `$ANX_DATA_DIR`, else `$XDG_DATA_HOME/anx-runtime`, else `~/.local/share/anx-runtime`. */
export function resolveDataDir(flag?: string, env: Record<string, string | undefined> = process.env): string {
  if (flag !== undefined && flag !== '') return resolve(flag);
  if (env.ANX_DATA_DIR) return resolve(env.ANX_DATA_DIR);
  const base = env.XDG_DATA_HOME || join(homedir(), '.local', 'share');
  return join(base, 'anx-runtime');
}

export const dataFiles = {
  /** Written by a running daemon: pid, port, url. Removed on clean shutdown. */
  daemon: (dir: string) => join(dir, 'daemon.json'),
  /** The local API secret, mode 0600, rewritten at each start. */
  token: (dir: string) => join(dir, 'api.token'),
  /** Exclusive lock: one daemon per data directory. */
  lock: (dir: string) => join(dir, 'daemon.lock'),
  /** Daemon log when started with --detach. */
  log: (dir: string) => join(dir, 'daemon.log'),
};
