// Bad input at the teamwork edge: each refusal is a typed error naming the field and what was expected; nothing changes.
import { afterEach, beforeEach, expect, it } from 'vitest';
import { checkScriptSpec } from '../../bridge/workers/script.ts';
import { isAnxError } from '../../runtime/errors.ts';
import { waitFor } from '../helpers/daemon.ts';
import { cleanupTempDirs } from '../helpers/tmp.ts';
import { devTeamAssignments, type TeamHost, teamHost } from './fixtures.ts';

let team: TeamHost;
beforeEach(async () => {
  team = await teamHost();
});
afterEach(async () => {
  await team.host.close();
  cleanupTempDirs();
});

async function refusal(f: () => unknown): Promise<{ code: string; message: string }> {
  try {
    await f();
  } catch (err) {
    if (isAnxError(err)) return { code: err.code, message: err.message };
    throw err;
  }
  throw new Error('expected a refusal');
}

it('refuses malformed runs with the field named, and creates none', async () => {
  const t = team.host.teamwork;
  const base = {
    playbook: 'dev-team',
    objective: 'x',
    owner: team.owner,
    enclave: team.enclave,
    assignments: devTeamAssignments(team),
  };
  const cases: Array<[Record<string, unknown>, string, string]> = [
    [
      { playbook: 'no-such-template' },
      'ANX_TEAMWORK_INVALID',
      '"playbook" expected a definition or a template name',
    ],
    [
      { playbook: { name: 'p', version: '1', stages: [{ id: 'a', role: 'r', output: { kind: 'md' } }] } },
      'ANX_PLAYBOOK_INVALID',
      'stages[0].output.key',
    ],
    [{ owner: 'did:agentnexus:z6MkNotHere' }, 'ANX_TEAMWORK_INVALID', '"owner" expected a local identity'],
    [{ objective: '' }, 'ANX_TEAMWORK_INVALID', '"objective" expected a non-empty string'],
    [{ enclave: 'nope' }, 'ANX_ENCLAVE_NOT_FOUND', 'no enclave "nope"'],
    [{ assignments: { pm: 42 } }, 'ANX_TEAMWORK_INVALID', '"assignments.pm" expected a DID'],
    [{ run_id: '../etc' }, 'ANX_TEAMWORK_INVALID', '"run_id" expected'],
  ];
  for (const [override, code, text] of cases) {
    const r = await refusal(() => t.startRun({ ...base, ...override } as never));
    expect(r.code, JSON.stringify(override)).toBe(code);
    expect(r.message).toContain(text);
  }
  expect(t.runs.list()).toEqual([]);
});

it('gives a playbook its outside inputs: refs checked at start, else the latest version of the vault key', async () => {
  const t = team.host.teamwork;
  const dev = team.workers['developer'] as string;
  const playbook = {
    name: 'reads-a-brief',
    version: '1',
    stages: [{ id: 'build', role: 'developer', inputs: ['brief.md'], output: { kind: 'md', key: 'out.md' } }],
  };
  const base = {
    playbook,
    objective: 'x',
    owner: team.owner,
    enclave: team.enclave,
    assignments: { developer: dev },
  };
  // Nothing under the key: refused before the run exists, naming the input and how to fix it.
  const missing = await refusal(() => t.startRun(base));
  expect(missing.code).toBe('ANX_TEAMWORK_INVALID');
  expect(missing.message).toContain('stages[0].inputs[0] "brief.md" expected an artifact in Enclave enc1');
  const v1 = await t.vault.put(team.enclave, 'brief.md', { kind: 'md', content: 'one', summary: 'v1' }, dev);
  const v2 = await t.vault.put(team.enclave, 'brief.md', { kind: 'md', content: 'two', summary: 'v2' }, dev);
  const other = (await t.enclaves.create({ owner: team.owner, id: 'enc2' })).enclave_id;
  const elsewhere = await t.vault.put(
    other,
    'brief.md',
    { kind: 'md', content: 'x', summary: '' },
    team.owner,
  );
  const cases: Array<[unknown, string, string]> = [
    [[v1], 'ANX_TEAMWORK_INVALID', '"artifacts" expected an object of input name → ArtifactRef'],
    [{ 'spec.md': v1 }, 'ANX_TEAMWORK_INVALID', '"artifacts.spec.md" names no input'],
    [
      { 'brief.md': { ...v1, hash: 5 } },
      'ANX_TEAMWORK_INVALID',
      '"artifacts.brief.md" expected an ArtifactRef',
    ],
    [{ 'brief.md': elsewhere }, 'ANX_TEAMWORK_INVALID', "expected a ref into the run's Enclave enc1"],
    [{ 'brief.md': { ...v1, hash: v2.hash } }, 'ANX_VAULT_REF_MISMATCH', 'hash'],
    [{ 'brief.md': { ...v1, version: 9 } }, 'ANX_VAULT_NOT_FOUND', 'no version 9'],
  ];
  for (const [artifacts, code, text] of cases) {
    const r = await refusal(() => t.startRun({ ...base, artifacts } as never));
    expect(r.code, JSON.stringify(artifacts)).toBe(code);
    expect(r.message).toContain(text);
  }
  expect((await refusal(() => t.startRun({ ...base, objective: 'x'.repeat(10_001) }))).message).toContain(
    'at most 10000 characters',
  );
  expect(t.runs.list()).toEqual([]);

  // A ref given is the version the stage reads; a key not given is read at its latest version.
  const seen: string[] = [];
  t.worker(dev).onStage('developer', async (ctx) => {
    for (const ref of ctx.snapshot.inputs)
      seen.push(`${ref.key}@${ref.version}:${await ctx.vault.text(ref)}`);
    await ctx.deliver({ value: 'done', summary: 'done' });
  });
  const pinned = await t.startRun({ ...base, artifacts: { 'brief.md': v1 } });
  await waitFor(() => t.manifests.has(pinned.run_id), 20_000, 'the first manifest');
  const latest = await t.startRun(base);
  await waitFor(() => t.manifests.has(latest.run_id), 20_000, 'the second manifest');
  expect(seen).toEqual(['brief.md@1:one', 'brief.md@2:two']);
});

it('refuses bad vault keys, kinds and versions with typed errors', async () => {
  const v = team.host.teamwork.vault;
  const dev = team.workers['developer'] as string;
  const put = (key: string, kind = 'md') =>
    v.put(team.enclave, key, { kind, content: 'x', summary: '' }, dev);
  expect((await refusal(() => put('../escape'))).code).toBe('ANX_VAULT_INPUT');
  expect((await refusal(() => put('a/.git/config'))).code).toBe('ANX_VAULT_INPUT');
  expect((await refusal(() => put('ok.md', 'bad kind!'))).message).toContain('kind: expected');
  expect((await refusal(() => v.get(team.enclave, 'ok.md', dev, 0))).message).toContain('version: expected');
  expect((await refusal(() => v.get(team.enclave, 'never/written', dev))).code).toBe('ANX_VAULT_NOT_FOUND');
  expect(await v.list(team.enclave, dev)).toEqual([]);
});

it('refuses answers for tasks a worker does not hold, and malformed script workers', async () => {
  const w = team.host.teamwork.workers;
  const dev = team.workers['developer'] as string;
  expect((await refusal(() => w.deliver(dev, 'nope', { value: 'x' }))).message).toContain(
    '"task_id" expected',
  );
  expect((await refusal(() => w.deliver(dev, 'run-x/implement/1', { value: 'x' }))).code).toBe(
    'ANX_TASK_NOT_RUNNING',
  );
  expect((await refusal(() => w.reject(dev, 'run-x/review/1', { reason: 'x' }))).code).toBe(
    'ANX_TASK_NOT_RUNNING',
  );
  expect((await refusal(() => team.host.teamwork.worker('did:agentnexus:z6MkNotHere'))).message).toContain(
    '"did" expected a local identity',
  );
  expect((await refusal(() => checkScriptSpec({ argv: 'rm -rf /' }))).message).toContain(
    '"argv" expected a non-empty array of strings',
  );
  expect((await refusal(() => checkScriptSpec({ argv: ['true'], timeout_ms: -1 }))).message).toContain(
    '"timeout_ms" expected a positive integer',
  );
});
