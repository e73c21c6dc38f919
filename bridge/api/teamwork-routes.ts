// Local API routes of teamwork: Enclaves, the vault, playbook runs, workers in other processes and script workers.
import type { StageProgress } from '../../actors/worker-runtime.ts';
import type { Permission } from '../../machines/enclave.ts';
import { playbookTemplate, TEMPLATE_NAMES } from '../../machines/playbook/templates.ts';
import { describeValue } from '../../runtime/errors.ts';
import type { Host } from '../../runtime/host.ts';
import { RequestError } from '../../runtime/host.ts';
import { isBase64 } from '../../runtime/value-checks.ts';
import type { ArtifactContent } from '../../runtime/vault/types.ts';
import { ScriptWorkers } from '../workers/script.ts';

export type TeamworkRoute = (
  method: 'GET' | 'POST',
  path: string,
  handler: (url: URL, params: string[], body: unknown) => unknown,
) => void;

/** The request body as an object (or `{}` when there is none). */
export function obj(body: unknown): Record<string, unknown> {
  if (body === undefined) return {};
  if (body === null || typeof body !== 'object' || Array.isArray(body))
    throw new RequestError('ANX_REQUEST_INVALID', 'request body expected a JSON object');
  return body as Record<string, unknown>;
}

/** A non-empty string field; with `required` false, undefined when absent. */
export function str(b: Record<string, unknown>, field: string, required?: true): string;
export function str(b: Record<string, unknown>, field: string, required: boolean): string | undefined;
export function str(b: Record<string, unknown>, field: string, required = true): string | undefined {
  const v = b[field];
  if (v === undefined && !required) return undefined;
  if (typeof v !== 'string' || v.length === 0)
    throw new RequestError(
      'ANX_REQUEST_INVALID',
      `"${field}" expected a non-empty string, got ${describeValue(v)}`,
    );
  return v;
}

/** A non-empty string field, or undefined when absent or null. */
export function optStr(b: Record<string, unknown>, field: string): string | undefined {
  return b[field] === null ? undefined : str(b, field, false);
}

/** A list of strings, or undefined when absent or null. */
export function optList(b: Record<string, unknown>, field: string): string[] | undefined {
  const v = b[field];
  if (v === undefined || v === null) return undefined;
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'string'))
    throw new RequestError(
      'ANX_REQUEST_INVALID',
      `"${field}" expected a list of strings, got ${describeValue(v)}`,
    );
  return v as string[];
}

function query(url: URL, name: string, required = true): string | undefined {
  const v = url.searchParams.get(name);
  if (v === null || v === '') {
    if (!required) return undefined;
    throw new RequestError('ANX_REQUEST_INVALID', `query parameter "${name}" expected a value, got nothing`);
  }
  return v;
}

function versionOf(url: URL): number | undefined {
  const raw = url.searchParams.get('version');
  if (raw === null) return undefined;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1)
    throw new RequestError(
      'ANX_REQUEST_INVALID',
      `"version" expected an integer of at least 1, got ${describeValue(raw)}`,
    );
  return n;
}

function contentOf(b: Record<string, unknown>, text = 'content'): string | Uint8Array {
  const encoded = b[`${text}_base64`];
  if (typeof encoded === 'string') {
    // Buffer.from skips what is not base64: garbage would be stored as a few stray bytes.
    if (!isBase64(encoded))
      throw new RequestError(
        'ANX_REQUEST_INVALID',
        `"${text}_base64" expected base64 (A-Z a-z 0-9 + / or - _, padded or not), got ${encoded.length} other characters`,
      );
    return new Uint8Array(Buffer.from(encoded, 'base64'));
  }
  if (typeof b[text] === 'string') return b[text] as string;
  throw new RequestError(
    'ANX_REQUEST_INVALID',
    `"${text}" expected a string (or "${text}_base64" for bytes)`,
  );
}

export function artifactJson(found: ArtifactContent) {
  const bytes = Buffer.from(found.content);
  const text = bytes.toString('utf8');
  const isText = Buffer.from(text, 'utf8').equals(bytes);
  return { meta: found.meta, content_base64: bytes.toString('base64'), ...(isText ? { content: text } : {}) };
}

/** Installs the teamwork routes and runs the script workers persisted by an earlier daemon. */
export function installTeamworkRoutes(host: Host, route: TeamworkRoute): ScriptWorkers {
  const t = host.teamwork;
  const scripts = new ScriptWorkers(t);
  scripts.restore();
  const dec = (s: string | undefined) => decodeURIComponent(s ?? '');
  const audited: typeof t.secretaries.authorizer.audited = (request, work) =>
    t.secretaries.authorizer.audited(request, work);
  /** The acting DID for reads: `as`, else the Enclave's owner. */
  const reader = (enclave: string, url: URL) => query(url, 'as', false) ?? t.enclaves.get(enclave).owner;

  route('GET', '/v1/playbooks', () => ({
    templates: TEMPLATE_NAMES.map((name) => {
      const def = playbookTemplate(name);
      return {
        name,
        version: def.version,
        description: def.description,
        stages: def.stages.map((s) => ({ id: s.id, role: s.role })),
      };
    }),
  }));

  route('POST', '/v1/enclaves', (_u, _p, body) => {
    const b = obj(body);
    return t.enclaves.create({
      owner: str(b, 'owner') as string,
      ...(b['id'] === undefined ? {} : { id: str(b, 'id') as string }),
      ...(b['name'] === undefined ? {} : { name: str(b, 'name') as string }),
      ...(b['backend'] === undefined ? {} : { backend: b['backend'] as 'lmdb' | 'git' }),
    });
  });
  route('GET', '/v1/enclaves', () => ({ enclaves: t.enclaves.list().map((id) => t.enclaves.get(id)) }));
  route('GET', '/v1/enclaves/:id', (_u, [id]) => t.enclaves.get(dec(id)));
  route('POST', '/v1/enclaves/:id/members', (_u, [id], body) => {
    const b = obj(body);
    return t.enclaves.setMember(dec(id), str(b, 'as') as string, {
      did: str(b, 'did') as string,
      role: str(b, 'role') as string,
      permissions: b['permissions'] as Permission[],
    });
  });
  route('POST', '/v1/enclaves/:id/members/remove', (_u, [id], body) => {
    const b = obj(body);
    return t.enclaves.removeMember(dec(id), str(b, 'as') as string, str(b, 'did') as string);
  });
  route('POST', '/v1/enclaves/:id/archive', (_u, [id], body) =>
    t.enclaves.archive(dec(id), str(obj(body), 'as') as string),
  );
  route('POST', '/v1/enclaves/:id/activate', (_u, [id], body) =>
    t.enclaves.activate(dec(id), str(obj(body), 'as') as string),
  );

  route('GET', '/v1/vault/:enclave/get', async (url, [enclave]) => {
    const e = dec(enclave);
    return artifactJson(await t.vault.get(e, query(url, 'key') as string, reader(e, url), versionOf(url)));
  });
  route('GET', '/v1/vault/:enclave/history', async (url, [enclave]) => {
    const e = dec(enclave);
    const key = query(url, 'key') as string;
    return { enclave_id: e, key, versions: await t.vault.history(e, key, reader(e, url)) };
  });
  route('GET', '/v1/vault/:enclave/list', async (url, [enclave]) => {
    const e = dec(enclave);
    return {
      enclave_id: e,
      artifacts: await t.vault.list(e, reader(e, url), query(url, 'prefix', false) ?? ''),
    };
  });
  route('POST', '/v1/vault/resolve', async (_u, _p, body) => {
    const b = obj(body);
    return artifactJson(await t.vault.resolve(b['ref'] as never, str(b, 'as') as string));
  });
  route('POST', '/v1/vault/:enclave/put', async (_u, [enclave], body) => {
    const b = obj(body);
    const as = str(b, 'as') as string;
    const enclaveId = dec(enclave);
    const key = str(b, 'key') as string;
    // Membership is the check (in the vault); the entry point audits its outcome.
    const ref = await audited(
      {
        actor: as,
        principal: t.enclaves.get(enclaveId).owner,
        action: 'vault.write',
        resource: `vault:${enclaveId}/${key}`,
      },
      () =>
        t.vault.put(
          enclaveId,
          key,
          {
            kind: (str(b, 'kind', false) ?? 'text') as string,
            content: contentOf(b),
            summary: typeof b['summary'] === 'string' ? b['summary'] : '',
            ...(b['author'] === undefined ? {} : { author: b['author'] as string }),
          },
          as,
        ),
    );
    return { ref };
  });

  route('POST', '/v1/runs', (_u, _p, body) => t.startRun(obj(body) as never));
  route('GET', '/v1/runs', () => ({ runs: t.runs.list() }));
  route('GET', '/v1/runs/:id', (_u, [id]) => t.runs.status(dec(id)));
  route('GET', '/v1/runs/:id/manifest', (_u, [id]) => t.manifests.get(dec(id)));
  route('POST', '/v1/runs/:id/control', async (_u, [id], body) => {
    const runId = dec(id);
    const b = obj(body);
    const action = str(b, 'action') as string;
    const reason = typeof b['reason'] === 'string' ? { reason: b['reason'] } : {};
    // The actor (`as`, default the owner) must be the owner, its secretary, or hold a capability token.
    const run = t.runs.status(runId);
    const actor = str(b, 'as', false) ?? run.owner;
    t.secretaries.authorizer.authorize({
      actor,
      principal: run.owner,
      action:
        action === 'abort'
          ? 'abort'
          : ['deliver', 'reassign', 'skip'].includes(action)
            ? 'takeover'
            : 'run.control',
      resource: `run:${runId}`,
      proof: b['actor_proof'],
      token: b['token'],
      write: true,
    });
    // A token holder acts for the owner: the run hears the owner, the audit log names the actor.
    const as = actor === run.owner || actor === run.coordinator ? actor : run.owner;
    switch (action) {
      case 'pause':
      case 'resume':
      case 'abort':
        return t.runs.control(runId, `run.${action}`, reason, as);
      case 'skip':
        return t.runs.control(runId, 'takeover.skip', reason, as);
      case 'reassign':
        return t.runs.control(runId, 'takeover.reassign', { worker: str(b, 'worker') }, as);
      case 'deliver':
        return t.takeoverDeliver(
          runId,
          {
            ...(typeof b['key'] === 'string' ? { key: b['key'] } : {}),
            ...(typeof b['version'] === 'number' ? { version: b['version'] } : {}),
            ...(b['content'] !== undefined || b['content_base64'] !== undefined
              ? { content: contentOf(b) }
              : {}),
            ...(typeof b['kind'] === 'string' ? { kind: b['kind'] } : {}),
            ...(typeof b['summary'] === 'string' ? { summary: b['summary'] } : {}),
          },
          as,
        );
      default:
        throw new RequestError(
          'ANX_REQUEST_INVALID',
          `"action" expected pause, resume, abort, deliver, reassign or skip, got ${describeValue(action)}`,
        );
    }
  });

  route('GET', '/v1/workers/scripts', () => ({ scripts: scripts.list() }));
  route('POST', '/v1/workers/scripts', (_u, _p, body) => {
    const b = obj(body);
    return scripts.add(str(b, 'did') as string, str(b, 'role') as string, b);
  });
  route('POST', '/v1/workers/scripts/remove', (_u, _p, body) => {
    const b = obj(body);
    return scripts.remove(str(b, 'did') as string, str(b, 'role') as string);
  });
  route('GET', '/v1/workers/:did/tasks', (_u, [did]) => ({
    tasks: t.workers.pending(dec(did)).map((task) => {
      const claim = t.workers.claimOf(task.did, task.task_id);
      return claim === undefined ? task : { ...task, claim };
    }),
  }));
  route('POST', '/v1/workers/:did/claim', (_u, [did], body) => {
    const b = obj(body);
    return t.workers.claim(dec(did), {
      holder: b['holder'] as string,
      ...(b['take'] === undefined ? {} : { take: b['take'] as string[] }),
      ...(b['renew'] === undefined ? {} : { renew: b['renew'] as string[] }),
      ...(b['release'] === undefined ? {} : { release: b['release'] as string[] }),
      ...(b['lease_ms'] === undefined ? {} : { leaseMs: b['lease_ms'] as number }),
    });
  });
  route('POST', '/v1/workers/:did/read', async (_u, [did], body) => {
    const b = obj(body);
    const keyOrRef = b['ref'] === undefined ? (str(b, 'key') as string) : (b['ref'] as never);
    const version = typeof b['version'] === 'number' ? b['version'] : undefined;
    return artifactJson(await t.workers.readTask(dec(did), str(b, 'task_id') as string, keyOrRef, version));
  });
  route('POST', '/v1/workers/:did/deliver', async (_u, [did], body) => {
    const b = obj(body);
    const taskId = str(b, 'task_id') as string;
    const ref = await audited(
      { actor: dec(did), principal: dec(did), action: 'stage.deliver', resource: `task:${taskId}` },
      () =>
        t.workers.deliver(dec(did), taskId, {
          value: contentOf(b, 'value'),
          ...(typeof b['kind'] === 'string' ? { kind: b['kind'] } : {}),
          ...(typeof b['key'] === 'string' ? { key: b['key'] } : {}),
          ...(typeof b['summary'] === 'string' ? { summary: b['summary'] } : {}),
          ...(typeof b['choice'] === 'string' ? { choice: b['choice'] } : {}),
        }),
    );
    return { ref };
  });
  route('POST', '/v1/workers/:did/reject', async (_u, [did], body) => {
    const b = obj(body);
    await t.workers.reject(dec(did), str(b, 'task_id') as string, {
      reason: str(b, 'reason') as string,
      ...(typeof b['target'] === 'string' ? { target: b['target'] } : {}),
    });
    return { rejected: true };
  });
  route('POST', '/v1/workers/:did/progress', async (_u, [did], body) => {
    const b = obj(body);
    await t.workers.progress(dec(did), str(b, 'task_id') as string, {
      kind: b['kind'] as StageProgress['kind'],
      payload: b['payload'],
    });
    return { recorded: true };
  });
  route('POST', '/v1/workers/:did/fail', async (_u, [did], body) => {
    const b = obj(body);
    await t.workers.fail(dec(did), str(b, 'task_id') as string, str(b, 'error') as string, {
      fatal: b['fatal'] === true,
    });
    return { failed: true };
  });
  return scripts;
}
