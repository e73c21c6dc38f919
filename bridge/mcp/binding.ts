// The MCP server's identity binding: a name maps to one DID, kept in the data directory across restarts.
import { createHash } from 'node:crypto';
import {
  closeSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  statSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { AnxError } from '../../runtime/errors.ts';

/** What `<data dir>/mcp/<hash of name>.json` holds. */
export interface McpBinding {
  name: string;
  did: string;
  /** When the binding was first written (ms since the epoch). */
  createdAt: number;
}

/** The file binding `name` on `dataDir` (one per name, so servers of different names never race on it). */
export function bindingFile(dataDir: string, name: string): string {
  const digest = createHash('sha256').update(name, 'utf8').digest('hex').slice(0, 32);
  return join(dataDir, 'mcp', `${digest}.json`);
}

/** The DID `name` is bound to, or undefined before the first start. A damaged file is an error, not a new identity. */
export function readBinding(dataDir: string, name: string): McpBinding | undefined {
  const file = bindingFile(dataDir, name);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  let binding: Partial<McpBinding>;
  try {
    binding = JSON.parse(text) as Partial<McpBinding>;
  } catch {
    binding = {};
  }
  if (binding.name !== name || typeof binding.did !== 'string')
    throw new AnxError('ANX_MCP_BINDING', `the MCP identity binding ${file} is damaged`, {
      hint: 'restore it from a backup, or delete it to bind the name to the oldest identity of that name',
    });
  return { name, did: binding.did, createdAt: Number(binding.createdAt) || 0 };
}

/** Writes the binding atomically (temporary file, then rename), readable by the user only. */
export function writeBinding(dataDir: string, binding: McpBinding): void {
  const file = bindingFile(dataDir, binding.name);
  mkdirSync(join(dataDir, 'mcp'), { recursive: true, mode: 0o700 });
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(binding, null, 2)}\n`, { mode: 0o600 });
  renameSync(tmp, file);
}

/** A lock older than this was left by a process that died while binding: it is taken over. */
const STALE_LOCK_MS = 30_000;

/**
 * Runs `bind` holding `<binding file>.lock`, so two servers started at once under a new name bind it to
 * one identity: the second waits, then finds the first one's binding. Gives up after `waitMs`.
 */
export async function withBindingLock<T>(
  dataDir: string,
  name: string,
  bind: () => Promise<T>,
  waitMs = 30_000,
): Promise<T> {
  const lock = `${bindingFile(dataDir, name)}.lock`;
  mkdirSync(join(dataDir, 'mcp'), { recursive: true, mode: 0o700 });
  const deadline = Date.now() + waitMs;
  for (;;) {
    try {
      closeSync(openSync(lock, 'wx', 0o600));
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    try {
      if (Date.now() - statSync(lock).mtimeMs > STALE_LOCK_MS) unlinkSync(lock);
    } catch {
      // Released meanwhile: try again at once.
    }
    if (Date.now() > deadline)
      throw new AnxError('ANX_MCP_BINDING', `another process has been binding "${name}" for ${waitMs} ms`, {
        hint: `if no other anx-runtime mcp is starting, delete ${lock}`,
      });
    await new Promise((r) => setTimeout(r, 50));
  }
  try {
    return await bind();
  } finally {
    try {
      unlinkSync(lock);
    } catch {
      // Already taken over as stale.
    }
  }
}
