// `anx-runtime mcp` over real stdio child processes, driven by the official MCP client: tools, errors, identity, two agents.
import { existsSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bindingFile, readBinding } from '../../bridge/mcp/binding.ts';
import { type AnxClient, connect } from '../../bridge/sdk/index.ts';
import { type DaemonProcess, killHard, startDaemonProcess, waitFor } from '../helpers/daemon.ts';
import { cleanupTempDirs, tempDir } from '../helpers/tmp.ts';
import { type Json, type McpProcess, ok, startMcp } from './harness.ts';

const TOOL_NAMES = [
  'abort',
  'discover',
  'discussion_open',
  'discussion_post',
  'discussion_show',
  'discussion_vote',
  'dispatch',
  'dispatch_status',
  'inbox',
  'mark_read',
  'run_status',
  'send',
  'stage_deliver',
  'stage_fail',
  'stage_reject',
  'stage_tasks',
  'task_claim',
  'task_notify',
  'task_propose',
  'tasks',
  'vault_get',
  'vault_put',
  'whoami',
];

/** A refused argument as the server reports it: the code, the tool, the field, then the tool's arguments. */
function argument(tool: string, field: string): RegExp {
  return new RegExp(`^ANX_MCP_ARGUMENT: ${tool}: "${field}": .+\\nhint: ${tool} takes .*${field}`);
}

/** The inbox once it holds at least `count` messages. */
async function inboxWith(mcp: McpProcess, count: number): Promise<Json> {
  let inbox: Json;
  await waitFor(
    async () => {
      inbox = ok(await mcp.call('inbox', { limit: 100 }));
      return inbox.messages.length >= count;
    },
    30_000,
    `${count} message(s) in the inbox`,
  );
  return inbox;
}

/** The open stage task of `role` at `attempt` (of `runId` when given), once it is there. */
async function nextTask(mcp: McpProcess, role: string, attempt: number, runId?: string): Promise<Json> {
  let task: Json;
  await waitFor(
    async () => {
      const { tasks } = ok(await mcp.call('stage_tasks', { role }));
      task = tasks.find(
        (t: { attempt: number; run_id: string }) =>
          t.attempt === attempt && (runId === undefined || t.run_id === runId),
      );
      return task !== undefined;
    },
    60_000,
    `${role} task attempt ${attempt}`,
  );
  return task;
}

let daemon: DaemonProcess;
let dataDir: string;
let owner: AnxClient;
let alice: McpProcess;
let bob: McpProcess;
let aliceDid: string;
let bobDid: string;

beforeAll(async () => {
  dataDir = tempDir();
  daemon = await startDaemonProcess(dataDir);
  owner = await connect({ dataDir, name: 'MCP test owner' });
  [alice, bob] = await Promise.all([
    startMcp(dataDir, ['--name', 'Alice', '--caps', 'Chat,Search']),
    startMcp(dataDir, ['--name', 'Bob', '--caps', 'code.review']),
  ]);
  aliceDid = ok(await alice.call('whoami')).did;
  bobDid = ok(await bob.call('whoami')).did;
}, 120_000);

afterAll(async () => {
  await alice?.close();
  await bob?.close();
  await owner?.close();
  if (daemon !== undefined) await killHard(daemon);
  cleanupTempDirs();
}, 60_000);

describe('against a running daemon', () => {
  it('lists every tool with a description and described input fields', async () => {
    const { tools } = await alice.client.listTools();
    expect(tools.map((t) => t.name).sort()).toEqual(TOOL_NAMES);
    for (const tool of tools) {
      expect(tool.description?.length, tool.name).toBeGreaterThan(20);
      expect(tool.inputSchema.type).toBe('object');
      for (const [field, schema] of Object.entries(tool.inputSchema.properties ?? {}))
        expect((schema as { description?: string }).description, `${tool.name}.${field}`).toBeTruthy();
    }
  });

  it('acts as a daemon client bound to its name, its caps in its card', async () => {
    const me = ok(await alice.call('whoami'));
    expect(me).toMatchObject({ name: 'Alice', hosting: 'daemon', did: aliceDid });
    expect(me.card.capabilities).toEqual(['Chat', 'Search']);
    expect(alice.stderr()).toContain(`serving MCP on stdio as ${aliceDid}`);
  });

  it('two MCP server processes exchange messages: send, then inbox on the other side', async () => {
    const sent = ok(await alice.call('send', { to: bobDid, text: 'hello Bob', id: 'mcp-test-message-0001' }));
    expect(sent).toEqual({ id: 'mcp-test-message-0001', duplicate: false });
    expect(
      ok(await alice.call('send', { to: bobDid, text: 'hello Bob', id: 'mcp-test-message-0001' })),
    ).toEqual({
      id: 'mcp-test-message-0001',
      duplicate: true,
    });
    // Delivery to the recipient's inbox follows the sender's commit: wait for it to land.
    const inbox = await inboxWith(bob, 1);
    expect(inbox.messages).toHaveLength(1);
    expect(inbox.messages[0]).toMatchObject({ from: aliceDid, type: 'message', body: { text: 'hello Bob' } });

    ok(
      await bob.call('send', {
        to: aliceDid,
        body: { verdict: 'approve', lines: [1, 2] },
        type: 'review.result',
      }),
    );
    const reply = await inboxWith(alice, 1);
    expect(reply.messages.at(-1)).toMatchObject({
      from: bobDid,
      type: 'review.result',
      body: { verdict: 'approve', lines: [1, 2] },
    });
    const after = ok(await alice.call('inbox', { after_seq: reply.messages.at(-1).seq }));
    expect(after.messages).toEqual([]);
  });

  it('discovers agents by capability and role', async () => {
    const reviewers = ok(await alice.call('discover', { capability: 'code.review' }));
    expect(reviewers.agents.map((a: { did: string }) => a.did)).toEqual([bobDid]);
    expect(reviewers.agents[0]).toMatchObject({ name: 'Bob', online: true });
    const everyone = ok(await alice.call('discover', { online: true, min_trust: 0 }));
    expect(everyone.agents.map((a: { did: string }) => a.did)).toEqual(
      expect.arrayContaining([aliceDid, bobDid, owner.did]),
    );
    expect(ok(await alice.call('discover', { role: 'nobody-has-this' })).agents).toEqual([]);
  });

  it('puts and gets vault artifacts, text and bytes', async () => {
    await daemon.api.post('/v1/enclaves', { owner: aliceDid, id: 'mcp-notes' });
    const put = ok(
      await alice.call('vault_put', {
        enclave_id: 'mcp-notes',
        key: 'notes/a.md',
        content: '# A',
        summary: 'first',
      }),
    );
    expect(put.ref).toMatchObject({ key: 'notes/a.md', version: 1, summary: 'first' });
    ok(
      await alice.call('vault_put', {
        enclave_id: 'mcp-notes',
        key: 'notes/a.md',
        content: Buffer.from([0xff, 0x00, 0x01]).toString('base64'),
        encoding: 'base64',
        kind: 'binary',
      }),
    );
    expect(
      ok(await alice.call('vault_get', { enclave_id: 'mcp-notes', key: 'notes/a.md', version: 1 })),
    ).toMatchObject({ content: '# A', encoding: 'utf8', meta: { version: 1, author: aliceDid } });
    expect(ok(await alice.call('vault_get', { enclave_id: 'mcp-notes', key: 'notes/a.md' }))).toMatchObject({
      content: '/wAB',
      encoding: 'base64',
      meta: { version: 2, kind: 'binary' },
    });
    // Bob is no member of the Enclave: the vault refuses him with a typed error.
    const refused = await bob.call('vault_get', { enclave_id: 'mcp-notes', key: 'notes/a.md' });
    expect(refused.ok).toBe(false);
    expect(!refused.ok && refused.error).toMatch(/^ANX_[A-Z_]+: /);
  });

  it('works a playbook run through stage_tasks, stage_fail, stage_deliver and stage_reject; run_status follows', async () => {
    await daemon.api.post('/v1/enclaves', { owner: owner.did, id: 'mcp-run' });
    for (const [did, role] of [
      [aliceDid, 'writer'],
      [bobDid, 'reviewer'],
    ] as const)
      await daemon.api.post('/v1/enclaves/mcp-run/members', {
        as: owner.did,
        did,
        role,
        permissions: ['read', 'write'],
      });
    const { run_id } = await daemon.api.post<{ run_id: string }>('/v1/runs', {
      playbook: {
        name: 'mcp-write-review',
        version: '1.0.0',
        defaults: { timeout: '10m', max_retries: 3, backoff: { initial: '1s', factor: 1, max: '1s' } },
        stages: [
          { id: 'write', role: 'writer', brief: 'Write it.', output: { kind: 'markdown', key: 'doc.md' } },
          {
            id: 'review',
            role: 'reviewer',
            brief: 'Review it.',
            inputs: ['write'],
            output: { kind: 'markdown', key: 'review.md' },
            review: { on_reject: 'write' },
          },
        ],
      },
      objective: 'a reviewed document',
      owner: owner.did,
      enclave: 'mcp-run',
      assignments: { writer: aliceDid, reviewer: bobDid },
    });

    const first = await nextTask(alice, 'writer', 1);
    expect(first).toMatchObject({ run_id, stage: 'write', did: aliceDid });
    expect(first.context.objective).toBe('a reviewed document');
    ok(await alice.call('stage_fail', { task_id: first.task_id, error: 'the disk was full' }));
    const second = await nextTask(alice, 'writer', 2);
    const delivered = ok(
      await alice.call('stage_deliver', {
        task_id: second.task_id,
        value: 'draft 1',
        summary: 'first draft',
      }),
    );
    expect(delivered.ref).toMatchObject({ key: 'doc.md', summary: 'first draft' });

    const review = await nextTask(bob, 'reviewer', 1);
    expect(review.context.inputs.map((r: { key: string }) => r.key)).toEqual(['doc.md']);
    ok(await bob.call('stage_reject', { task_id: review.task_id, reason: 'needs a title' }));
    const third = await nextTask(alice, 'writer', 3);
    ok(await alice.call('stage_deliver', { task_id: third.task_id, value: '# Title\n\ndraft 2' }));
    const again = await nextTask(bob, 'reviewer', 2);
    ok(await bob.call('stage_deliver', { task_id: again.task_id, value: 'approved', summary: 'approve' }));

    await waitFor(
      async () => ok(await alice.call('run_status', { run_id })).state === 'completed',
      60_000,
      'run',
    );
    const status = ok(await bob.call('run_status', { run_id }));
    expect(status).toMatchObject({ run_id, state: 'completed', owner: owner.did });
    expect(ok(await alice.call('vault_get', { enclave_id: 'mcp-run', key: 'doc.md' })).content).toBe(
      '# Title\n\ndraft 2',
    );
  }, 180_000);

  it('answers bad arguments to every tool with a readable tool error, and keeps serving', async () => {
    const did = bobDid;
    const cases: Array<[string, Record<string, unknown>, RegExp]> = [
      [
        'whoami',
        { verbose: true },
        /^ANX_MCP_ARGUMENT: whoami: Unrecognized key: "verbose"\nhint: whoami takes no arguments$/,
      ],
      [
        'send',
        { to: 5, text: 'x' },
        /^ANX_MCP_ARGUMENT: send: "to": Invalid input: expected string, received number\nhint: send takes to, text\?, body\?, type\?, id\?$/,
      ],
      [
        'send',
        { to: 'did:agentnexus:nope', text: 'x' },
        /ANX_SDK_ARGUMENT: "to" expected a did:agentnexus DID/,
      ],
      ['send', { to: did }, /ANX_MCP_ARGUMENT: send expected exactly one of "text" and "body"\nhint: /],
      ['send', { to: did, text: 'x', id: 'short' }, /ANX_SDK_ARGUMENT: "id" expected 16 to 64 characters/],
      ['send', { to: did, text: 'x', type: 'Bad Type' }, /ANX_SDK_ARGUMENT: "type" expected a lowercase/],
      ['inbox', { limit: 0 }, argument('inbox', 'limit')],
      ['inbox', { after_seq: -1 }, argument('inbox', 'after_seq')],
      ['discover', { min_trust: 2 }, argument('discover', 'min_trust')],
      [
        'discover',
        { capability: 'has space' },
        /^ANX_MCP_ARGUMENT: discover: "capability": expected a name like "code.review"/,
      ],
      ['run_status', {}, argument('run_status', 'run_id')],
      ['run_status', { run_id: 'no-such-run' }, /^ANX_RUN_NOT_FOUND: /],
      ['vault_get', { enclave_id: 'mcp-notes' }, argument('vault_get', 'key')],
      ['vault_get', { enclave_id: 'no-such-enclave', key: 'k' }, /^ANX_[A-Z_]*NOT_FOUND: .*no-such-enclave/],
      ['vault_get', { enclave_id: 'mcp-notes', key: 'k', version: 0 }, argument('vault_get', 'version')],
      ['vault_put', { enclave_id: 'mcp-notes', key: 'k', content: 5 }, argument('vault_put', 'content')],
      [
        'vault_put',
        { enclave_id: 'mcp-notes', key: 'k', content: 'x', encoding: 'hex' },
        argument('vault_put', 'encoding'),
      ],
      [
        'vault_put',
        { enclave_id: 'mcp-notes', key: 'k', content: 'hello world!', encoding: 'base64' },
        /^ANX_MCP_ARGUMENT: "content" expected base64/,
      ],
      [
        'stage_deliver',
        { task_id: 'x/y/1', value: 'not base64!', encoding: 'base64' },
        /^ANX_MCP_ARGUMENT: "value" expected base64/,
      ],
      ['stage_tasks', { role: '' }, argument('stage_tasks', 'role')],
      ['stage_deliver', { task_id: 'x/y/1' }, argument('stage_deliver', 'value')],
      ['stage_deliver', { task_id: 'no-slash', value: 'v' }, /^ANX_[A-Z_]+: "task_id" expected a task id/],
      ['stage_reject', { task_id: 'run-x/review/1' }, argument('stage_reject', 'reason')],
      ['stage_reject', { task_id: 'run-x/review/1', reason: 'r' }, /^ANX_[A-Z_]+: .*run-x\/review\/1/],
      ['stage_fail', { task_id: 'run-x/write/1', error: 'e', fatal: 'yes' }, argument('stage_fail', 'fatal')],
      ['stage_fail', { task_id: 'run-x/write/1', error: 'e' }, /^ANX_[A-Z_]+: .*run-x\/write\/1/],
      [
        'dispatch',
        { session_id: 's', owner_did: did, objective: 'o', required_roles: [] },
        argument('dispatch', 'required_roles'),
      ],
      [
        'dispatch',
        { session_id: 'mcp-bad-1', owner_did: did, objective: 'o', required_roles: ['x'] },
        /^ANX_[A-Z_]+: .*(owner|Owner)/,
      ],
      ['dispatch_status', { session_id: 5 }, argument('dispatch_status', 'session_id')],
      ['dispatch_status', { session_id: 'no-such-session' }, /^ANX_[A-Z_]*NOT_FOUND: .*no-such-session/],
      ['abort', { session_id: '' }, argument('abort', 'session_id')],
      ['abort', { session_id: 'no-such-session' }, /^ANX_[A-Z_]*NOT_FOUND: .*no-such-session/],
      ['task_propose', { title: '' }, argument('task_propose', 'title')],
      ['task_propose', { title: 't', candidates: 'bob' }, argument('task_propose', 'candidates')],
      ['tasks', { state: 'sleeping' }, argument('tasks', 'state')],
      ['task_claim', {}, argument('task_claim', 'task_id')],
      ['task_claim', { task_id: 'no-such-task' }, /^ANX_TASK_NOT_FOUND: /],
      ['task_notify', { task_id: 't', state: 'finished' }, argument('task_notify', 'state')],
      ['task_notify', { task_id: 'no-such-task', state: 'done' }, /^ANX_TASK_NOT_FOUND: /],
      ['discussion_open', { topic: 't', participants: [] }, argument('discussion_open', 'participants')],
      [
        'discussion_open',
        { topic: 't', participants: [did], rule: 'dictator' },
        argument('discussion_open', 'rule'),
      ],
      [
        'discussion_open',
        { topic: 't', participants: [did], deadline_in_ms: 2 * 365 * 24 * 3_600_000 },
        argument('discussion_open', 'deadline_in_ms'),
      ],
      ['discussion_show', { discussion_id: 'no-such-discussion' }, /^ANX_[A-Z_]*NOT_FOUND: /],
      ['discussion_post', { discussion_id: 'd' }, argument('discussion_post', 'text')],
      ['discussion_post', { discussion_id: 'no-such-discussion', text: 'hi' }, /^ANX_[A-Z_]*NOT_FOUND: /],
      ['discussion_vote', { discussion_id: 'd', option: '' }, argument('discussion_vote', 'option')],
      ['discussion_vote', { discussion_id: 'no-such-discussion', option: 'yes' }, /^ANX_[A-Z_]*NOT_FOUND: /],
      ['mark_read', { through: -1 }, argument('mark_read', 'through')],
    ];
    const covered = new Set(cases.map(([name]) => name));
    expect([...covered].sort()).toEqual(TOOL_NAMES);
    for (const [name, args, message] of cases) {
      const outcome = await alice.call(name, args);
      expect(outcome.ok, `${name} ${JSON.stringify(args)}`).toBe(false);
      expect(!outcome.ok && outcome.error, `${name} ${JSON.stringify(args)}`).toMatch(message);
    }
    const unknown = await alice.call('no_such_tool', {});
    expect(!unknown.ok && unknown.error).toMatch(
      /^ANX_MCP_UNKNOWN_TOOL: there is no tool "no_such_tool"\nhint: the tools are whoami, send, /,
    );
    expect(ok(await alice.call('whoami')).did).toBe(aliceDid);
  }, 120_000);
});

describe('working with others', () => {
  it('dispatches as the Owner: the Secretary picks the bound worker, who delivers over MCP; abort stops another', async () => {
    await daemon.api.post('/v1/owners', { name: 'Alice', did: aliceDid });
    await daemon.api.post('/v1/secretaries', { owner_did: aliceDid, name: 'MCP Secretary' });
    await daemon.api.post('/v1/bindings', { owner_did: aliceDid, agent_did: bobDid, role: 'scribe' });
    const request = {
      session_id: 'mcp-sess-0001',
      owner_did: aliceDid,
      objective: 'write the meeting notes',
      required_roles: ['scribe'],
      source: { channel: 'mcp' },
    };
    const started = ok(await alice.call('dispatch', request));
    expect(started.workers).toEqual([expect.objectContaining({ role: 'scribe', did: bobDid })]);
    const task = await nextTask(bob, 'scribe', 1, started.run_id);
    ok(await bob.call('stage_deliver', { task_id: task.task_id, value: 'notes', summary: 'the notes' }));
    await waitFor(
      async () =>
        ok(await alice.call('dispatch_status', { session_id: request.session_id })).state === 'done',
      60_000,
      'the dispatch to finish',
    );
    expect(ok(await alice.call('dispatch', request)).run_id).toBe(started.run_id);
    // Bob acts for Alice only with her token: the status read takes it too (in a body, not the URL).
    const unbound = await bob.call('dispatch_status', { session_id: request.session_id });
    expect(!unbound.ok && unbound.error).toMatch(/^ANX_FORBIDDEN/);
    const { token } = await daemon.api.post<{ token: string }>('/v1/tokens', {
      issuer: aliceDid,
      audience: bobDid,
      resource: `dispatch:${aliceDid}`,
      actions: ['status'],
    });
    expect(ok(await bob.call('dispatch_status', { session_id: request.session_id, token })).state).toBe(
      'done',
    );
    const notAToken = await bob.call('dispatch_status', { session_id: request.session_id, token: { t: 1 } });
    expect(!notAToken.ok && notAToken.error).toMatch(/^ANX_MCP_ARGUMENT: dispatch_status: "token"/);

    const second = ok(await alice.call('dispatch', { ...request, session_id: 'mcp-sess-0002' }));
    const refused = await bob.call('abort', { session_id: 'mcp-sess-0002', reason: 'not mine to stop' });
    expect(!refused.ok && refused.error).toMatch(/^ANX_[A-Z_]+: /);
    const aborted = ok(await alice.call('abort', { session_id: 'mcp-sess-0002', reason: 'plans changed' }));
    expect(aborted.session_id).toBe('mcp-sess-0002');
    await waitFor(
      async () => ok(await alice.call('run_status', { run_id: second.run_id })).state === 'aborted',
      60_000,
      'the run to be aborted',
    );
  }, 180_000);

  it('proposes, claims and completes an Action Layer task between two MCP servers', async () => {
    const proposed = ok(
      await alice.call('task_propose', { title: 'Review the notes', candidates: [bobDid] }),
    );
    expect(proposed).toMatchObject({ state: 'proposed' });
    const taskId = proposed.task_id as string;
    expect(ok(await bob.call('task_claim', { task_id: taskId })).state).toBe('claimed');
    ok(await bob.call('task_notify', { task_id: taskId, state: 'in_progress' }));
    const done = ok(await bob.call('task_notify', { task_id: taskId, state: 'done', result: 'approved' }));
    expect(done.state).toBe('done');
    const mine = ok(await alice.call('tasks', { state: 'done' }));
    expect(mine.tasks.map((t: { task_id: string }) => t.task_id)).toContain(taskId);
  });

  it('opens a discussion, posts with a quote and a mention, votes, and marks the inbox read', async () => {
    const opened = ok(
      await alice.call('discussion_open', {
        topic: 'Ship on Friday?',
        participants: [bobDid],
        options: ['ship', 'wait'],
        rule: 'unanimous',
      }),
    );
    const discussionId = opened.discussion_id as string;
    const first = ok(
      await alice.call('discussion_post', { discussion_id: discussionId, text: 'I think we can.' }),
    );
    ok(
      await bob.call('discussion_post', {
        discussion_id: discussionId,
        text: 'Agreed, @Alice',
        quote: first.posts_list[0].id,
      }),
    );
    ok(await alice.call('discussion_vote', { discussion_id: discussionId, option: 'ship' }));
    ok(await bob.call('discussion_vote', { discussion_id: discussionId, option: 'ship' }));
    let shown: Json;
    await waitFor(
      async () => {
        shown = ok(await bob.call('discussion_show', { discussion_id: discussionId }));
        return shown.state !== 'open';
      },
      30_000,
      'the unanimous vote to conclude',
    );
    expect(shown.posts_list).toHaveLength(2);
    expect(shown.posts_list[1]).toMatchObject({ author: bobDid, quote: { author: aliceDid } });
    expect(shown.posts_list[1].mentions).toContain(aliceDid);
    expect(shown.conclusion).toMatchObject({ rule: 'unanimous' });
    const before = ok(await alice.call('inbox', { limit: 1000 }));
    expect(before.unread).toBeGreaterThan(0);
    const last = before.messages.at(-1).seq as number;
    ok(await alice.call('mark_read', { through: last }));
    // Notices may still arrive (the conclusion's): only those after the mark count as unread.
    const after = ok(await alice.call('inbox', { limit: 1000 }));
    expect(after.unread).toBe(after.messages.filter((m: Json) => m.seq > last).length);
  });
});

describe('hosting in its own process', () => {
  it('binds a new name to one DID when two servers start with it at the same moment', async () => {
    const dir = tempDir();
    const [a, b] = await Promise.all([startMcp(dir, ['--name', 'Twin']), startMcp(dir, ['--name', 'Twin'])]);
    try {
      const [da, db] = [ok(await a.call('whoami')).did, ok(await b.call('whoami')).did];
      expect(da).toBe(db);
      expect(readBinding(dir, 'Twin')?.did).toBe(da);
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('keeps one DID per name across restarts, and lets another MCP server use the host it runs', async () => {
    const dir = tempDir();
    const first = await startMcp(dir, ['--name', 'Solo']);
    const me = ok(await first.call('whoami'));
    expect(me.hosting).toBe('embedded');
    expect(first.stderr()).toContain('hosting');
    expect(existsSync(bindingFile(dir, 'Solo'))).toBe(true);

    // A second server on the same data directory is a client of the host the first one runs.
    const guest = await startMcp(dir, ['--name', 'Guest']);
    const guestMe = ok(await guest.call('whoami'));
    expect(guestMe.hosting).toBe('daemon');
    expect(guestMe.did).not.toBe(me.did);
    ok(await guest.call('send', { to: me.did, text: 'knock knock' }));
    expect((await inboxWith(first, 1)).messages[0]).toMatchObject({
      from: guestMe.did,
      body: { text: 'knock knock' },
    });
    // The host goes away with its MCP client: the guest takes over hosting at its next call.
    await first.close();
    expect(ok(await guest.call('send', { to: me.did, text: 'still here?' })).duplicate).toBe(false);
    expect(ok(await guest.call('whoami')).hosting).toBe('embedded');
    expect(guest.stderr()).toContain('the daemon went away; continuing with a host in this process');
    await guest.close();

    const again = await startMcp(dir, ['--name', 'Solo', '--caps', 'later']);
    const meAgain = ok(await again.call('whoami'));
    expect(meAgain.did).toBe(me.did);
    expect(meAgain.card.capabilities).toEqual(['later']);
    // Messages received before the restarts are still there: the same identity, the same inbox.
    expect((await inboxWith(again, 2)).messages.map((m: { body: { text: string } }) => m.body.text)).toEqual([
      'knock knock',
      'still here?',
    ]);
    // Another name is another identity.
    const other = await startMcp(dir, ['--name', 'Someone else']);
    expect(ok(await other.call('whoami')).did).not.toBe(me.did);
    await other.close();
    await again.close();
  }, 180_000);
});
