// Bad input at the teamwork edge: each refusal is a typed error naming the field and what was expected; nothing changes.
import { afterEach, beforeEach, expect, it } from 'vitest';
import { checkScriptSpec } from '../../bridge/workers/script.ts';
import { isAnxError } from '../../runtime/errors.ts';
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
