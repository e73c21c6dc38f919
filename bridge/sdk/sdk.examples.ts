// Type-checked examples of the SDK (compiled by `npm run typecheck`; the send/receive flow runs as a test).
import { type AnxClient, connect, isAnxError } from './index.ts';

/** Two agents of one daemon: Developer greets Reviewer and waits for one answer. */
export async function greet(dataDir: string): Promise<unknown> {
  const developer = await connect('Developer', { dataDir });
  const reviewer = await connect({ dataDir, name: 'Reviewer' });
  const answers = developer.messages();
  await developer.send(reviewer.did, { text: 'Hello' });
  for await (const m of reviewer.messages({ afterSeq: 0 })) {
    await reviewer.send(m.from, { text: 'got it' }, { type: 'message' });
    break;
  }
  const { value } = await answers.next();
  await developer.close();
  await reviewer.close();
  return value?.body;
}

/** A worker in its own process: the same DID later, by `did`, answering `developer` stages. */
export async function developerWorker(dataDir: string, did: string): Promise<AnxClient> {
  const worker = await connect({ dataDir, did });
  worker.worker.onStage('developer', async (ctx) => {
    const design = ctx.snapshot.inputs.find((ref) => ref.key === 'design/spec.md');
    const spec = design === undefined ? '' : await ctx.vault.text(design);
    if (spec === '') return ctx.fail('no design to implement');
    await ctx.deliver({
      kind: 'code_diff',
      key: 'impl/diff.patch',
      value: `+// ${spec.length} bytes`,
      summary: 'login form',
    });
  });
  return worker;
}

/** An embedded agent: its own kernel and data directory, a note in the vault, a run's status. */
export async function embedded(dataDir: string, enclaveId: string, runId: string): Promise<string> {
  const solo = await connect({ mode: 'embedded', dataDir, name: 'Solo' });
  try {
    await solo.vault.put(enclaveId, 'notes/today.md', { content: '# today', summary: 'notes' });
    const note = await solo.vault.get(enclaveId, 'notes/today.md');
    const status = await solo.runs.getStatus(runId);
    return `${note.meta.version} ${status.state}`;
  } catch (err) {
    // Every SDK error carries a stable code: ANX_SDK_ARGUMENT, ANX_FORBIDDEN_ENCLAVE, ANX_RUN_NOT_FOUND…
    if (isAnxError(err, 'ANX_RUN_NOT_FOUND')) return 'no such run';
    throw err;
  } finally {
    await solo.close();
  }
}

/** Discovery: an agent publishes its capabilities at connect; another finds it by capability and asks it. */
export async function askReviewer(dataDir: string): Promise<string | undefined> {
  const reviewer = await connect('Reviewer', {
    dataDir,
    caps: ['code.review'],
    card: { roles: ['reviewer'] },
  });
  const developer = await connect('Developer', { dataDir, caps: ['developer', 'code'] });
  try {
    const [found] = await developer.discover({ capability: 'code.review', online: true });
    if (found === undefined) return undefined;
    await developer.send(found.did, { text: 'please review impl/diff.patch' });
    return found.did;
  } finally {
    await reviewer.close();
    await developer.close();
  }
}

/** Capability tokens: the Owner grants a developer writes under a path; the developer narrows it for a helper. */
export async function grantAndNarrow(owner: AnxClient, dev: AnxClient, helper: AnxClient): Promise<boolean> {
  const { token } = await owner.tokens.issue({
    audience: dev.did,
    resource: 'vault/team/src',
    actions: ['vault.read', 'vault.write'],
    ttlMs: 3_600_000,
  });
  const narrowed = await dev.tokens.delegate(token, {
    audience: helper.did,
    resource: 'vault/team/src/ui',
    actions: ['vault.write'],
  });
  await helper.tokens.check(narrowed.token, {
    owner: owner.did,
    resource: 'vault/team/src/ui/button.ts',
    action: 'vault.write',
  });
  await owner.tokens.revoke(token, { reason: 'project closed' });
  return (await owner.tokens.inspect(narrowed.token)).valid_now;
}
