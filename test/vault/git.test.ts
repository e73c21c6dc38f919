// Runs the shared vault suite against the git backend (real git binary), plus what only git shows: commits and authors.
import { execFileSync } from 'node:child_process';
import { chmod, mkdir, mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { GitVault } from '../../runtime/vault/git.ts';
import { vaultSuite } from './vault.case.ts';

vaultSuite('git', async (clock) => {
  const dir = await mkdtemp(join(tmpdir(), 'anx-vault-git-'));
  return {
    vault: new GitVault(dir, { now: () => clock.t }),
    reopen: async () => new GitVault(dir, { now: () => clock.t }),
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
});

describe('git vault repository', () => {
  const dirs: string[] = [];
  afterEach(async () => {
    for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
  });
  const git = (repo: string, ...args: string[]) =>
    execFileSync('git', ['--git-dir', repo, ...args], {
      encoding: 'utf8',
      env: { ...process.env, GIT_CONFIG_NOSYSTEM: '1' },
    });

  it('makes one commit per version, authored by the writing DID, with the metadata as trailers', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'anx-vault-git-'));
    dirs.push(dir);
    const did = 'did:agentnexus:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK';
    const vault = new GitVault(dir, { now: () => 1_700_000_000_000 });
    await vault.put('enc1', 'design/spec.md', {
      kind: 'markdown',
      content: 'one',
      author: did,
      summary: 'first',
    });
    const r2 = await vault.put('enc1', 'design/spec.md', {
      kind: 'markdown',
      content: 'two',
      author: did,
      summary: 'second',
    });
    const repo = join(dir, 'enc1.git');
    const log = git(repo, 'log', '--format=%an <%ae>|%at|%s', 'main').trim().split('\n');
    expect(log).toEqual([
      `${did} <${did}@agentnexus>|1700000000|vault: design/spec.md v2`,
      `${did} <${did}@agentnexus>|1700000000|vault: design/spec.md v1`,
    ]);
    const trailers = git(repo, 'log', '-1', '--format=%(trailers:only,unfold)', 'main');
    expect(trailers).toContain('Anx-Version: 2');
    expect(trailers).toContain(`Anx-Hash: sha256:${r2.hash}`);
    expect(git(repo, 'show', 'main:content/design/spec.md/@1')).toBe('one');
    expect(git(repo, 'fsck', '--no-progress', '--strict')).toBe('');
  });

  it('keeps its repositories in an owner-only directory, whatever the mode of the directory around it', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'anx-vault-git-'));
    dirs.push(dir);
    await chmod(dir, 0o755);
    const base = join(dir, 'vault');
    await mkdir(base, { mode: 0o755 });
    await chmod(base, 0o755);
    const vault = new GitVault(base);
    await vault.put('enc1', 'notes.md', {
      kind: 'text',
      content: 'x',
      author: 'did:agentnexus:z6Mkx',
      summary: '',
    });
    expect((await stat(base)).mode & 0o777).toBe(0o700);
  });

  it('reports stored bytes altered behind its back as an integrity error', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'anx-vault-git-'));
    dirs.push(dir);
    const did = 'did:agentnexus:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK';
    const vault = new GitVault(dir);
    await vault.put('enc1', 'a.md', { kind: 'markdown', content: 'honest', author: did, summary: '' });
    // Rewrite the content file in a new commit, as someone with shell access to the repository might.
    const repo = join(dir, 'enc1.git');
    const blob = execFileSync('git', ['--git-dir', repo, 'hash-object', '-w', '--stdin'], {
      input: 'tampered',
    })
      .toString()
      .trim();
    const index = join(dir, 'idx');
    const env = {
      ...process.env,
      GIT_INDEX_FILE: index,
      GIT_AUTHOR_NAME: 'x',
      GIT_AUTHOR_EMAIL: 'x@x',
      GIT_COMMITTER_NAME: 'x',
      GIT_COMMITTER_EMAIL: 'x@x',
    };
    execFileSync('git', ['--git-dir', repo, 'read-tree', 'main'], { env });
    execFileSync(
      'git',
      ['--git-dir', repo, 'update-index', '--cacheinfo', `100644,${blob},content/a.md/@1`],
      { env },
    );
    const tree = execFileSync('git', ['--git-dir', repo, 'write-tree'], { env }).toString().trim();
    const commit = execFileSync(
      'git',
      ['--git-dir', repo, 'commit-tree', tree, '-p', 'main', '-m', 'tamper'],
      { env },
    )
      .toString()
      .trim();
    execFileSync('git', ['--git-dir', repo, 'update-ref', 'refs/heads/main', commit]);
    await expect(vault.get('enc1', 'a.md')).rejects.toMatchObject({ code: 'ANX_VAULT_INTEGRITY' });
  });
});

describe('git vault across processes', () => {
  it('keeps versions distinct when two instances write one repository at once', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'anx-vault-git-'));
    try {
      const did = 'did:agentnexus:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK';
      const a = new GitVault(dir);
      const b = new GitVault(dir);
      await a.put('enc1', 'seed', { kind: 'text', content: 'x', author: did, summary: '' });
      const put = (v: GitVault, i: number) =>
        v.put('enc1', 'shared.md', { kind: 'text', content: `w${i}`, author: did, summary: '' });
      const refs = await Promise.all([0, 1, 2, 3].flatMap((i) => [put(a, i), put(b, i + 10)]));
      expect(refs.map((r) => r.version).sort((x, y) => x - y)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
      const hist = await a.history('enc1', 'shared.md');
      expect(hist.map((h) => h.version)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
      expect(new Set(hist.map((h) => h.hash)).size).toBe(8);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
