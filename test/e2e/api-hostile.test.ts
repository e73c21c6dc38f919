// A careless or hostile local client: each request gets a typed 4xx, nothing is stored, and the host goes on.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ApiServer, startApiServer } from '../../bridge/api/server.ts';
import { MAX_BODY_BYTES } from '../../runtime/envelope/index.ts';
import { Host } from '../../runtime/host.ts';
import { cleanupTempDirs, tempDir } from '../helpers/tmp.ts';

const TOKEN = 'test-token-hostile-0123456789';
let host: Host;
let api: ApiServer;
let alice: string;
let bob: string;

/** An error answer (on success the fields differ, and the tests do not read them). */
type Answer = { error: { code: string; message: string; hint?: string } };

/** A raw request: the body as text, so malformed JSON can be sent as it is. */
async function raw(method: string, path: string, body?: string): Promise<{ status: number; json: Answer }> {
  const res = await fetch(`${api.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body }),
  });
  return { status: res.status, json: (await res.json()) as Answer };
}

async function healthy(): Promise<void> {
  const status = await raw('GET', '/v1/status');
  expect(status.status).toBe(200);
  // A write still goes through: nothing wedged the kernel.
  const sent = await raw(
    'POST',
    '/v1/messages',
    JSON.stringify({ from: alice, to: bob, body: { ok: true } }),
  );
  expect(sent.status, JSON.stringify(sent.json)).toBe(200);
}

beforeAll(async () => {
  host = await Host.open({ dataDir: tempDir() });
  api = await startApiServer(host, { port: 0, token: TOKEN });
  alice = (await host.createIdentity({ name: 'alice' })).did;
  bob = (await host.createIdentity({ name: 'bob' })).did;
});

afterAll(async () => {
  await api.close();
  await host.close();
  cleanupTempDirs();
});

describe('local API under hostile input', () => {
  it('refuses a body nested deeper than the limit, and keeps taking writes', async () => {
    const deep = `${'['.repeat(2500)}1${']'.repeat(2500)}`;
    const r = await raw('POST', '/v1/messages', `{"from":"${bob}","to":"${alice}","body":${deep}}`);
    expect(r.status).toBe(400);
    expect(r.json.error.code).toBe('ANX_REQUEST_INVALID');
    expect(r.json.error.message).toContain('at most 64 levels');
    // Below the wire limit but deep enough for the kernel's own checks (the embedded SDK's path).
    let nested: unknown = 1;
    for (let i = 0; i < 100; i++) nested = [nested];
    await expect(host.send([{ from: bob, to: alice, body: nested }])).rejects.toMatchObject({
      code: 'ANX_REQUEST_INVALID',
    });
    await healthy();
  });

  it('refuses lone surrogates and infinite numbers before they are stored, hashed or signed', async () => {
    const before = host.authority.audit.verify();
    expect(before.ok).toBe(true);
    for (const [path, body] of [
      ['/v1/thaw', '{"reason":"\\ud800"}'],
      ['/v1/identities', '{"name":"x\\udc00y"}'],
      ['/v1/messages', `{"from":"${alice}","to":"${bob}","body":{"\\ud83d":1}}`],
      ['/v1/trust/attest', `{"issuer":"${alice}","subject":"${bob}","value":1e999}`],
    ] as const) {
      const r = await raw('POST', path, body);
      expect(r.status, `${path} ${JSON.stringify(r.json)}`).toBe(400);
      expect(r.json.error.code).toBe('ANX_REQUEST_INVALID');
    }
    // A surrogate pair (an emoji) is fine.
    const emoji = await raw(
      'POST',
      '/v1/messages',
      `{"from":"${alice}","to":"${bob}","body":"\\ud83d\\ude00"}`,
    );
    expect(emoji.status).toBe(200);
    expect(host.authority.audit.verify().ok).toBe(true);
    await healthy();
  });

  it('refuses an empty or non-decimal number in a query instead of reading it as 0 or 1000', async () => {
    for (const q of ['limit=', 'limit=%20', 'limit=1e3', 'after=0x10', 'limit=-1']) {
      const r = await raw('GET', `/v1/inbox/${encodeURIComponent(bob)}?${q}`);
      expect(r.status, q).toBe(400);
      expect(r.json.error.code).toBe('ANX_REQUEST_INVALID');
      expect(r.json.error.message).toMatch(/expected a non-negative integer/);
    }
    expect((await raw('GET', `/v1/inbox/${encodeURIComponent(bob)}?limit=2&after=0`)).status).toBe(200);
  });

  it('answers a malformed percent-escape in a path with 400, on every kind of route', async () => {
    for (const path of ['/v1/identities/%E0%A4%A', '/v1/trace/%ZZ', '/v1/runs/%E0']) {
      const r = await raw('GET', path);
      expect(r.status, path).toBe(400);
      expect(r.json.error.code).toBe('ANX_REQUEST_INVALID');
    }
    await healthy();
  });

  it('refuses bodies of the wrong shape instead of acting on them', async () => {
    const identities = host.identities().length;
    for (const body of ['null', '[1,2]', '"str"', '{"name":""}']) {
      const r = await raw('POST', '/v1/identities', body);
      expect(r.status, body).toBe(400);
    }
    expect(host.identities().length).toBe(identities);
    expect((await raw('POST', '/v1/messages', 'null')).status).toBe(400);
    expect((await raw('POST', '/v1/messages')).status).toBe(400);
    for (const extra of [
      { exp: 'abc' },
      { thread: { a: 1 } },
      { ctx: 'str' },
      { ctx: [1, 2] },
      { reply: 'short' },
    ]) {
      const r = await raw(
        'POST',
        '/v1/messages',
        JSON.stringify({ from: alice, to: bob, body: 1, ...extra }),
      );
      expect(r.status, JSON.stringify(extra)).toBe(400);
      expect(r.json.error.message).toMatch(/"(exp|thread|ctx|reply)" expected/);
    }
    const role = await raw(
      'POST',
      '/v1/workers/scripts',
      JSON.stringify({ did: alice, role: 'x'.repeat(10_000), argv: ['true'] }),
    );
    expect(role.status).toBe(400);
    expect(role.json.error.code).toBe('ANX_SCRIPT_INVALID');
    const noRole = await raw('POST', '/v1/workers/scripts/remove', JSON.stringify({ did: alice }));
    expect(noRole.status).toBe(400);
    expect(noRole.json.error.message).toMatch(/"role" expected/);
    const unknown = await raw(
      'POST',
      '/v1/workers/scripts/remove',
      JSON.stringify({ did: alice, role: 'x' }),
    );
    expect(unknown.status).toBe(404);
    expect(unknown.json.error.code).toBe('ANX_SCRIPT_NOT_FOUND');
    const deadline = await raw(
      'POST',
      '/v1/discussions',
      JSON.stringify({ as: alice, topic: 't', participants: [bob], deadline: 1e300 }),
    );
    expect(deadline.status).toBe(400);
    await healthy();
  });

  it('refuses a message body too large for any envelope with 413, and takes one just under it', async () => {
    const over = await raw(
      'POST',
      '/v1/messages',
      JSON.stringify({ from: alice, to: bob, body: 'x'.repeat(1_000_000) }),
    );
    expect(over.status).toBe(413);
    expect(over.json.error.code).toBe('ANX_MESSAGE_TOO_LARGE');
    expect(over.json.error.message).toContain(`"body" expected at most ${MAX_BODY_BYTES} bytes encoded`);
    expect(over.json.error.hint).toContain('vault');
    // Many small values count too: 120,000 floats are about 1 MB encoded.
    const floats = Array.from({ length: 120_000 }, (_, i) => i + 0.5);
    const many = await raw('POST', '/v1/messages', JSON.stringify({ from: alice, to: bob, body: floats }));
    expect(many.status).toBe(413);
    const before = host.inbox(bob).messages.length;
    const under = await raw(
      'POST',
      '/v1/messages',
      JSON.stringify({ from: alice, to: bob, body: 'x'.repeat(MAX_BODY_BYTES - 5) }),
    );
    expect(under.status, JSON.stringify(under.json)).toBe(200);
    await host.system.quiesce();
    expect(host.inbox(bob).messages.length).toBe(before + 1);
    await healthy();
  });

  it('answers over-long ids, DIDs and addresses with 400 or 404, never a storage error, and echoes none of them', async () => {
    // Under node's 16 KiB limit on a request's head (beyond it, 431 before any route).
    const long = 'x'.repeat(12_000);
    for (const path of [
      `/v1/runs/${long}`,
      `/v1/enclaves/${long}`,
      `/v1/gatekeeper/${long}`,
      `/v1/actors/${long}`,
      `/v1/trust/${long}`,
      `/v1/runs/${long}/manifest`,
      `/v1/vault/${long}/get?key=x`,
    ]) {
      const r = await raw('GET', path);
      expect(r.status, path.slice(0, 20)).toBe(400);
      expect(r.json.error.message.length).toBeLessThan(300);
    }
    for (const to of [`run/${long}`, `run/${'x'.repeat(300)}`]) {
      const r = await raw('POST', '/v1/messages', JSON.stringify({ from: alice, to, body: 1 }));
      expect(r.status).toBe(400);
      expect(r.json.error.message).toContain('at most 256 characters');
    }
    const trust = await raw('GET', `/v1/trust/${'x'.repeat(300)}`);
    expect(trust.status).toBe(400);
    const run = await raw('GET', `/v1/runs/${'x'.repeat(300)}`);
    expect(run.status).toBe(404);
    expect(run.json.error.message.length).toBeLessThan(300);
    await healthy();
  });

  it('answers each malformed field with 400 naming it, and never echoes a large input', async () => {
    const enclave = (await host.teamwork.enclaves.create({ owner: alice, id: 'fields' })).enclave_id;
    const huge = 'x'.repeat(100_000);
    const cases: Array<[string, unknown, string, string]> = [
      ['/v1/vault/resolve', { as: alice, ref: {} }, 'ANX_VAULT_INPUT', 'enclave'],
      [
        `/v1/vault/${enclave}/put`,
        { as: alice, key: 'k', content: 'c', author: 5 },
        'ANX_TEAMWORK_INVALID',
        '"author"',
      ],
      [
        '/v1/tokens',
        { issuer: alice, audience: bob, resource: 'vault:x', actions: ['read'], ttl_ms: 9e15 },
        'ANX_REQUEST_INVALID',
        'before the year 10000',
      ],
      [
        `/v1/gatekeeper/${alice}`,
        { allow: [huge] },
        'ANX_REQUEST_INVALID',
        '"allow" expected a list of DIDs',
      ],
      [`/v1/gatekeeper/${alice}`, { pending_ttl_ms: 1e15 }, 'ANX_GATEKEEPER_INVALID', '30 days'],
      [
        '/v1/runs',
        { playbook: 'dev-team', objective: huge, owner: alice, enclave, assignments: {} },
        'ANX_TEAMWORK_INVALID',
        'at most 10000 characters',
      ],
      [
        '/v1/runs',
        { playbook: 'dev-team', objective: 'o', owner: alice, enclave, assignments: {}, artifacts: [huge] },
        'ANX_TEAMWORK_INVALID',
        '"artifacts" expected',
      ],
      ['/v1/identities', { name: huge }, 'ANX_REQUEST_INVALID', '"name"'],
      ['/v1/tasks', { as: alice, title: 't', candidates: ['bob'] }, 'ANX_TASK_INVALID', '"candidates"'],
      [
        '/v1/discussions',
        { as: alice, topic: 't', participants: [bob, 'nobody'] },
        'ANX_DISCUSSION_INVALID',
        '"participants"',
      ],
    ];
    for (const [path, body, code, text] of cases) {
      const r = await raw('POST', path, JSON.stringify(body));
      expect(r.status, path).toBe(400);
      expect(r.json.error.code, path).toBe(code);
      expect(r.json.error.message, path).toContain(text);
      expect(r.json.error.message.length, path).toBeLessThan(400);
    }
    const opened = await raw(
      'POST',
      '/v1/discussions',
      JSON.stringify({ as: alice, topic: 't', participants: [bob] }),
    );
    expect(opened.status).toBe(200);
    const { id } = opened.json as unknown as { id: string };
    const post = await raw(
      'POST',
      `/v1/discussions/${id}/posts`,
      JSON.stringify({ as: alice, text: 'hi', mentions: [huge] }),
    );
    expect(post.status).toBe(400);
    expect(post.json.error.message).toContain('"mentions" expected a list of DIDs');
    expect(post.json.error.message.length).toBeLessThan(400);
    expect(await host.teamwork.vault.list(enclave, alice)).toEqual([]);
    expect(host.teamwork.runs.list()).toEqual([]);
    expect(host.teamwork.tasks.list()).toEqual([]);
    await healthy();
  });

  it('refuses garbage base64 in a vault write, and answers enclave lifecycle conflicts at once', async () => {
    const enclave = (await host.teamwork.enclaves.create({ owner: alice, id: 'hostile' })).enclave_id;
    const put = await raw(
      'POST',
      `/v1/vault/${enclave}/put`,
      JSON.stringify({ as: alice, key: 'k', content_base64: '!!!notbase64' }),
    );
    expect(put.status).toBe(400);
    expect(await host.teamwork.vault.history(enclave, 'k', alice)).toEqual([]);
    // Each of these used to wait for a verdict that never came, then answer 500.
    const again = await raw('POST', `/v1/enclaves/${enclave}/activate`, JSON.stringify({ as: alice }));
    expect(again.status).toBe(409);
    expect(again.json.error.code).toBe('ANX_ENCLAVE_STATE_CONFLICT');
    expect((await raw('POST', `/v1/enclaves/${enclave}/archive`, JSON.stringify({ as: alice }))).status).toBe(
      200,
    );
    for (const [path, body] of [
      [`/v1/enclaves/${enclave}/archive`, { as: alice }],
      [`/v1/enclaves/${enclave}/members`, { as: alice, did: bob, role: 'dev', permissions: ['read'] }],
    ] as const) {
      const r = await raw('POST', path, JSON.stringify(body));
      expect(r.status, path).toBe(409);
    }
    await healthy();
  });
});
