// Git vault backend: one bare repository per Enclave, one commit per artifact version, authored by the writing DID.
import { execFile } from 'node:child_process';
import { chmod, mkdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { VaultBackendError, VaultNotFoundError } from './errors.ts';
import {
  checkEnclaveId,
  checkInput,
  checkIntegrity,
  checkKey,
  checkPrefix,
  checkRef,
  checkRefMatches,
  checkVersion,
  DEFAULT_MAX_SIZE,
  sha256Hex,
} from './keys.ts';
import {
  type ArtifactContent,
  type ArtifactInput,
  type ArtifactRef,
  type ArtifactVersion,
  toRef,
  type VaultBackend,
  type VaultOptions,
} from './types.ts';

/*
 * Repository layout (branch `main`, no working tree), one file per version:
 *   content/<key>/@<version>       the bytes of that version
 *   meta/<key>/@<version>.json     its ArtifactVersion
 * `@` is not allowed in keys, so no key's files can collide with another's (`a` and `a/b` coexist).
 * Each commit message also carries the metadata as trailers (Anx-Key, Anx-Version, ...) for people reading the log.
 */
const BRANCH = 'refs/heads/main';
const CAS_ATTEMPTS = 8;
const contentPath = (key: string, version: number) => `content/${key}/@${version}`;
const metaPath = (key: string, version: number) => `meta/${key}/@${version}.json`;

/** Options of the git backend. */
export interface GitVaultOptions extends VaultOptions {
  /** The git executable (default `git` from PATH). */
  gitBinary?: string;
}

/**
 * Vault backend storing each Enclave as a bare git repository `<baseDir>/<enclave_id>.git`.
 * Writes to one repository are serialised in this process; the branch update is a compare-and-swap, so a
 * concurrent writer in another process makes one of the two puts fail instead of losing a version.
 *
 * @example
 * ```ts
 * const vault = new GitVault('/var/lib/anx/vault');
 * const ref = await vault.put('enc1', 'impl/diff.patch', { kind: 'code_diff', content: patch, author: did, summary: 'login form' });
 * ```
 */
export class GitVault implements VaultBackend {
  private readonly baseDir: string;
  private readonly now: () => number;
  private readonly maxSize: number;
  private readonly git: string;
  private readonly queues = new Map<string, Promise<unknown>>();
  private readonly ready = new Map<string, Promise<void>>();

  constructor(baseDir: string, options: GitVaultOptions = {}) {
    this.baseDir = baseDir;
    this.now = options.now ?? Date.now;
    this.maxSize = options.maxSize ?? DEFAULT_MAX_SIZE;
    this.git = options.gitBinary ?? 'git';
  }

  private repoOf(enclaveId: string): string {
    return join(this.baseDir, `${enclaveId}.git`);
  }

  /** Runs git with no shell and a config that ignores the user's and the system's settings. */
  private run(
    repo: string,
    args: string[],
    opts: { input?: Uint8Array; env?: Record<string, string> } = {},
  ): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      const child = execFile(
        this.git,
        ['--git-dir', repo, ...args],
        {
          encoding: 'buffer',
          maxBuffer: this.maxSize + 16 * 1024 * 1024,
          env: {
            PATH: process.env['PATH'] ?? '/usr/bin:/bin',
            GIT_CONFIG_NOSYSTEM: '1',
            GIT_CONFIG_GLOBAL: '/dev/null',
            GIT_TERMINAL_PROMPT: '0',
            LC_ALL: 'C',
            ...opts.env,
          },
        },
        (err, stdout, stderr) => {
          if (err) {
            const detail = Buffer.isBuffer(stderr) ? stderr.toString('utf8').trim() : String(stderr);
            reject(new VaultBackendError(`git ${args[0]} failed: ${detail || err.message}`, { cause: err }));
          } else resolve(stdout as Buffer);
        },
      );
      child.stdin?.on('error', () => {}); // a git that exits early must not crash the host with EPIPE
      child.stdin?.end(opts.input === undefined ? undefined : Buffer.from(opts.input));
    });
  }

  private async text(
    repo: string,
    args: string[],
    opts?: { input?: Uint8Array; env?: Record<string, string> },
  ): Promise<string> {
    return (await this.run(repo, args, opts)).toString('utf8').trim();
  }

  /** Runs `task` after every earlier write to the same repository has finished. */
  private serialise<T>(repo: string, task: () => Promise<T>): Promise<T> {
    const prev = this.queues.get(repo) ?? Promise.resolve();
    const next = prev.then(task, task);
    const tail = next.catch(() => undefined);
    this.queues.set(repo, tail);
    void tail.then(() => {
      if (this.queues.get(repo) === tail) this.queues.delete(repo);
    });
    return next;
  }

  private async exists(repo: string): Promise<boolean> {
    try {
      return (await stat(join(repo, 'HEAD'))).isFile();
    } catch {
      return false;
    }
  }

  private ensureRepo(repo: string): Promise<void> {
    let p = this.ready.get(repo);
    if (!p) {
      p = (async () => {
        if (await this.exists(repo)) return;
        // The repositories hold the artifacts: owner-only, whatever the data directory's mode.
        await mkdir(this.baseDir, { recursive: true, mode: 0o700 });
        await chmod(this.baseDir, 0o700);
        await this.run(repo, ['init', '--quiet', '--bare', '--initial-branch=main']);
      })();
      this.ready.set(repo, p);
      p.catch(() => this.ready.delete(repo));
    }
    return p;
  }

  private async head(repo: string): Promise<string | null> {
    try {
      return await this.text(repo, ['rev-parse', '--verify', '--quiet', `${BRANCH}^{commit}`]);
    } catch {
      return null;
    }
  }

  /** Versions stored for `key` at `commit`, ascending. */
  private async versionsOf(repo: string, commit: string, key: string): Promise<number[]> {
    const out = await this.text(repo, ['ls-tree', '--name-only', commit, `meta/${key}/`]);
    return out
      .split('\n')
      .map((line) => /\/@(\d+)\.json$/.exec(line)?.[1])
      .filter((v): v is string => v !== undefined)
      .map(Number)
      .sort((a, b) => a - b);
  }

  private async sidecar(
    repo: string,
    commit: string,
    key: string,
    version: number,
  ): Promise<ArtifactVersion | undefined> {
    try {
      const raw = await this.text(repo, ['cat-file', 'blob', `${commit}:${metaPath(key, version)}`]);
      return JSON.parse(raw) as ArtifactVersion;
    } catch {
      return undefined;
    }
  }

  async put(enclaveId: string, key: string, artifact: ArtifactInput): Promise<ArtifactRef> {
    checkEnclaveId(enclaveId);
    checkKey(key);
    const content = checkInput(artifact, this.maxSize);
    const repo = this.repoOf(enclaveId);
    await this.ensureRepo(repo);
    return this.serialise(repo, async () => {
      // Another process may move the branch between our read and our compare-and-swap; then start over
      // from its commit, a bounded number of times.
      for (let attempt = 1; ; attempt++) {
        const ref = await this.commitVersion(repo, enclaveId, key, artifact, content);
        if (ref) return ref;
        if (attempt >= CAS_ATTEMPTS) {
          throw new VaultBackendError(
            `cannot store ${enclaveId}/${key}: the branch kept moving (${attempt} attempts)`,
          );
        }
      }
    });
  }

  /** Writes one version on top of the current branch head; null when the branch moved meanwhile. */
  private async commitVersion(
    repo: string,
    enclaveId: string,
    key: string,
    artifact: ArtifactInput,
    content: Uint8Array,
  ): Promise<ArtifactRef | null> {
    const parent = await this.head(repo);
    const versions = parent ? await this.versionsOf(repo, parent, key) : [];
    const version = (versions.at(-1) ?? 0) + 1;
    const ts = this.now();
    const blob = await this.text(repo, ['hash-object', '-w', '--stdin'], { input: content });
    const meta: ArtifactVersion = {
      enclave_id: enclaveId,
      key,
      version,
      kind: artifact.kind,
      hash: sha256Hex(content),
      size: content.length,
      author: artifact.author,
      summary: artifact.summary,
      ts,
    };
    const sideBlob = await this.text(repo, ['hash-object', '-w', '--stdin'], {
      input: new TextEncoder().encode(`${JSON.stringify(meta, null, 2)}\n`),
    });
    // A private index file builds the new tree without a working tree and without touching other writers.
    const index = join(repo, `anx-index-${process.pid}-${Math.random().toString(36).slice(2)}`);
    const env = { GIT_INDEX_FILE: index };
    try {
      if (parent) await this.run(repo, ['read-tree', parent], { env });
      else await this.run(repo, ['read-tree', '--empty'], { env });
      await this.run(
        repo,
        [
          'update-index',
          '--add',
          '--cacheinfo',
          `100644,${blob},${contentPath(key, version)}`,
          '--cacheinfo',
          `100644,${sideBlob},${metaPath(key, version)}`,
        ],
        { env },
      );
      const tree = await this.text(repo, ['write-tree'], { env });
      const date = `@${Math.floor(ts / 1000)} +0000`;
      const who = {
        GIT_AUTHOR_NAME: artifact.author,
        GIT_AUTHOR_EMAIL: `${artifact.author}@agentnexus`,
        GIT_AUTHOR_DATE: date,
        GIT_COMMITTER_NAME: artifact.author,
        GIT_COMMITTER_EMAIL: `${artifact.author}@agentnexus`,
        GIT_COMMITTER_DATE: date,
      };
      const commit = await this.text(
        repo,
        ['commit-tree', tree, ...(parent ? ['-p', parent] : []), '-F', '-'],
        {
          env: who,
          input: new TextEncoder().encode(commitMessage(meta)),
        },
      );
      try {
        // Compare-and-swap: refuses if the branch is no longer at `parent`.
        await this.run(repo, ['update-ref', BRANCH, commit, parent ?? '0'.repeat(40)]);
      } catch (err) {
        if ((await this.head(repo)) !== parent) return null;
        throw err;
      }
    } finally {
      await rm(index, { force: true });
    }
    return toRef(meta);
  }

  async get(enclaveId: string, key: string, version?: number): Promise<ArtifactContent> {
    checkEnclaveId(enclaveId);
    checkKey(key);
    if (version !== undefined) checkVersion(version);
    const repo = this.repoOf(enclaveId);
    const head = (await this.exists(repo)) ? await this.head(repo) : null;
    if (!head) throw new VaultNotFoundError(enclaveId, key, version);
    const v = version ?? (await this.versionsOf(repo, head, key)).at(-1);
    const meta = v === undefined ? undefined : await this.sidecar(repo, head, key, v);
    if (!meta || v === undefined) throw new VaultNotFoundError(enclaveId, key, version);
    const content = new Uint8Array(
      await this.run(repo, ['cat-file', 'blob', `${head}:${contentPath(key, v)}`]),
    );
    const found = { meta, content };
    checkIntegrity(found);
    return found;
  }

  async resolve(ref: ArtifactRef): Promise<ArtifactContent> {
    checkRef(ref);
    const stored = await this.get(ref.enclave_id, ref.key, ref.version);
    checkRefMatches(ref, stored);
    return stored;
  }

  async history(enclaveId: string, key: string): Promise<ArtifactVersion[]> {
    checkEnclaveId(enclaveId);
    checkKey(key);
    const repo = this.repoOf(enclaveId);
    const head = (await this.exists(repo)) ? await this.head(repo) : null;
    if (!head) return [];
    const out: ArtifactVersion[] = [];
    for (const v of await this.versionsOf(repo, head, key)) {
      const meta = await this.sidecar(repo, head, key, v);
      if (meta) out.push(meta);
    }
    return out;
  }

  async list(enclaveId: string, prefix = ''): Promise<ArtifactVersion[]> {
    checkEnclaveId(enclaveId);
    checkPrefix(prefix);
    const repo = this.repoOf(enclaveId);
    const head = (await this.exists(repo)) ? await this.head(repo) : null;
    if (!head) return [];
    const names = await this.text(repo, ['ls-tree', '-r', '--name-only', head, 'meta/']);
    const latest = new Map<string, number>();
    for (const line of names.split('\n')) {
      const m = /^meta\/(.+)\/@(\d+)\.json$/.exec(line);
      if (!m?.[1] || !m[2]) continue;
      const [k, v] = [m[1], Number(m[2])];
      if (k.startsWith(prefix) && v > (latest.get(k) ?? 0)) latest.set(k, v);
    }
    const out: ArtifactVersion[] = [];
    for (const k of [...latest.keys()].sort()) {
      const meta = await this.sidecar(repo, head, k, latest.get(k) ?? 0);
      if (meta) out.push(meta);
    }
    return out;
  }

  async close(): Promise<void> {
    await Promise.allSettled([...this.queues.values()]);
  }
}

/** Commit message: a subject, the summary, then the metadata as git trailers. */
function commitMessage(meta: ArtifactVersion): string {
  const summary = meta.summary.trim() === '' ? '' : `\n${meta.summary.trim()}\n`;
  return [
    `vault: ${meta.key} v${meta.version}`,
    summary,
    `Anx-Enclave: ${meta.enclave_id}`,
    `Anx-Key: ${meta.key}`,
    `Anx-Version: ${meta.version}`,
    `Anx-Kind: ${meta.kind}`,
    `Anx-Hash: sha256:${meta.hash}`,
    `Anx-Size: ${meta.size}`,
    `Anx-Author: ${meta.author}`,
    `Anx-Ts: ${meta.ts}`,
    '',
  ].join('\n');
}
