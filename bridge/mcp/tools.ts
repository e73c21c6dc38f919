// The MCP tools: everyday anx operations for one bound identity, each with a zod input schema.

import { z } from 'zod';
import { AnxError } from '../../runtime/errors.ts';
import { newMessageId } from '../../runtime/kernel/message.ts';
import { isBase64 } from '../../runtime/value-checks.ts';
import type { ApiClient } from '../api/client.ts';
import type { AnxClient, StageTask } from '../sdk/index.ts';

/** What the tools act with: the SDK client of the bound identity and the local API for the worker's tasks. */
export interface McpAgent {
  readonly client: AnxClient;
  readonly api: ApiClient;
  /** The name the identity is bound to. */
  readonly name: string;
  readonly dataDir: string;
  /** `daemon` (a daemon process hosts the identity) or `embedded` (this process hosts it). */
  hosting(): 'daemon' | 'embedded';
}

/** A tool: its schema (fields described for the model) and what it does with checked arguments. */
export interface ToolDefinition<S extends z.ZodRawShape = z.ZodRawShape> {
  name: string;
  title: string;
  description: string;
  input: S;
  /** True when the tool changes nothing (MCP `readOnlyHint`). */
  readOnly: boolean;
  run(agent: McpAgent, args: z.infer<z.ZodObject<S>>): Promise<unknown>;
}

/** Keeps a tool's argument types tied to its schema. */
export function tool<S extends z.ZodRawShape>(definition: ToolDefinition<S>): ToolDefinition<S> {
  return definition;
}

const did = (what: string) =>
  z.string().min(1).describe(`${what}: a did:agentnexus DID (or an actor address such as run:…)`);
const enclaveId = z.string().min(1).describe('the Enclave id, e.g. "login-feature"');
const vaultKey = z.string().min(1).describe('the vault key, e.g. "design/spec.md"');
const taskId = z.string().min(1).describe('the task id from stage_tasks, like RUN/STAGE/ATTEMPT');
const cardName = z
  .string()
  .regex(/^[A-Za-z0-9._:/@+-]{1,128}$/, 'expected a name like "code.review" (1-128 of [A-Za-z0-9._:/@+-])');

/** Text when the bytes are UTF-8, else base64: what a model can read either way. */
function contentOut(content: Uint8Array): { content: string; encoding: 'utf8' | 'base64' } {
  try {
    return { content: new TextDecoder('utf-8', { fatal: true }).decode(content), encoding: 'utf8' };
  } catch {
    return { content: Buffer.from(content).toString('base64'), encoding: 'base64' };
  }
}

function contentIn(
  content: string,
  encoding: 'utf8' | 'base64' | undefined,
  field = 'content',
): string | Uint8Array {
  if (encoding !== 'base64') return content;
  if (!isBase64(content))
    throw new AnxError(
      'ANX_MCP_ARGUMENT',
      `"${field}" expected base64 (A-Z a-z 0-9 + / or - _, padded or not) with encoding "base64", got ${content.length} other characters`,
      { hint: 'send text with encoding "utf8" (the default), or encode the bytes as base64' },
    );
  return new Uint8Array(Buffer.from(content, 'base64'));
}

/** How a tool's text field is written (`field`: content or value). */
function encodingOf(field: string) {
  return z
    .enum(['utf8', 'base64'])
    .optional()
    .describe(`how \`${field}\` is written: utf8 text (default) or base64 bytes`);
}
const encoding = encodingOf('content');

function workerPath(agent: McpAgent, action: string): string {
  return `/v1/workers/${encodeURIComponent(agent.client.did)}/${action}`;
}

/** The tools every anx MCP server offers. */
export const TOOLS: ToolDefinition[] = [
  tool({
    name: 'whoami',
    title: 'Who am I',
    description:
      'The DID this MCP server acts as, the name it is bound to, its agent card and whether a daemon or this process hosts it.',
    input: {},
    readOnly: true,
    run: async (agent) => {
      const card = (await agent.client.discover()).find((c) => c.did === agent.client.did);
      return {
        did: agent.client.did,
        name: agent.name,
        hosting: agent.hosting(),
        dataDir: agent.dataDir,
        ...(card === undefined ? {} : { card }),
      };
    },
  }),
  tool({
    name: 'send',
    title: 'Send a message',
    description:
      'Send a message to another agent by DID. Give `text` for a plain message or `body` for structured JSON. Durable once this returns; resending with the same `id` is a no-op.',
    input: {
      to: did('the recipient'),
      text: z.string().optional().describe('message text; the body becomes {"text": …}'),
      body: z.unknown().optional().describe('a JSON body instead of `text`'),
      type: z
        .string()
        .optional()
        .describe('lowercase message type such as "message" (default) or "task.propose"'),
      id: z
        .string()
        .optional()
        .describe('idempotency key: 16 to 64 characters of [A-Za-z0-9_-]; the same id is sent once'),
    },
    readOnly: false,
    run: async (agent, a) => {
      if ((a.text === undefined) === (a.body === undefined))
        throw new AnxError('ANX_MCP_ARGUMENT', 'send expected exactly one of "text" and "body"', {
          hint: 'pass {"to": DID, "text": "hello"} or {"to": DID, "body": {…}}',
        });
      const body = a.text !== undefined ? { text: a.text } : a.body;
      // One id per call, kept in its arguments: the retry after the daemon went away is a no-op if the
      // first attempt had landed.
      a.id ??= newMessageId();
      return agent.client.send(a.to, body, {
        ...(a.type === undefined ? {} : { type: a.type }),
        id: a.id,
      });
    },
  }),
  tool({
    name: 'inbox',
    title: 'Read the inbox',
    description:
      'Messages received by this identity, oldest first, with received and unread counts. Pass the last `seq` you saw as `after_seq` to read only newer ones.',
    input: {
      after_seq: z.number().int().min(0).optional().describe('only messages after this sequence number'),
      limit: z.number().int().min(1).max(1000).optional().describe('at most this many (default 100)'),
    },
    readOnly: true,
    run: async (agent, a) =>
      agent.client.inbox({
        ...(a.after_seq === undefined ? {} : { afterSeq: a.after_seq }),
        ...(a.limit === undefined ? {} : { limit: a.limit }),
      }),
  }),
  tool({
    name: 'discover',
    title: 'Discover agents',
    description:
      "Find agents by their signed agent cards: this host's identities, and the relay directory's when the host joined a relay. Every filter given must match.",
    input: {
      capability: cardName.optional().describe('only agents with this capability'),
      role: cardName.optional().describe('only agents with this role'),
      tag: cardName.optional().describe('only agents with this tag'),
      protocol: cardName.optional().describe('only agents speaking this protocol'),
      min_trust: z
        .number()
        .min(0)
        .max(1)
        .optional()
        .describe('only agents trusted at least this much (0 to 1; unknown agents count as 0.5)'),
      online: z.boolean().optional().describe('only agents online now'),
    },
    readOnly: true,
    run: async (agent, a) => ({
      agents: await agent.client.discover({
        ...(a.capability === undefined ? {} : { capability: a.capability }),
        ...(a.role === undefined ? {} : { role: a.role }),
        ...(a.tag === undefined ? {} : { tag: a.tag }),
        ...(a.protocol === undefined ? {} : { protocol: a.protocol }),
        ...(a.min_trust === undefined ? {} : { minTrust: a.min_trust }),
        ...(a.online === undefined ? {} : { online: a.online }),
      }),
    }),
  }),
  tool({
    name: 'run_status',
    title: 'Run status',
    description:
      "A playbook run's state: its current stage, and per stage who works on it, attempts and output refs.",
    input: { run_id: z.string().min(1).describe('the run id') },
    readOnly: true,
    run: async (agent, a) => agent.client.runs.getStatus(a.run_id),
  }),
  tool({
    name: 'vault_get',
    title: 'Read a vault artifact',
    description:
      "Read an artifact from an Enclave's vault (this identity must be a member): the latest version, or `version`.",
    input: {
      enclave_id: enclaveId,
      key: vaultKey,
      version: z.number().int().min(1).optional().describe('a version number; latest when left out'),
    },
    readOnly: true,
    run: async (agent, a) => {
      const found = await agent.client.vault.get(
        a.enclave_id,
        a.key,
        a.version === undefined ? undefined : { version: a.version },
      );
      return { meta: found.meta, ...contentOut(found.content) };
    },
  }),
  tool({
    name: 'vault_put',
    title: 'Write a vault artifact',
    description:
      "Store a new version of a key in an Enclave's vault, authored by this identity (it needs write permission there). Returns the artifact ref.",
    input: {
      enclave_id: enclaveId,
      key: vaultKey,
      content: z.string().describe('the artifact content'),
      encoding,
      kind: z
        .string()
        .min(1)
        .optional()
        .describe('artifact kind such as "text" (default), "spec", "code_diff"'),
      summary: z.string().optional().describe('one line saying what this version is'),
    },
    readOnly: false,
    run: async (agent, a) => ({
      ref: await agent.client.vault.put(a.enclave_id, a.key, {
        content: contentIn(a.content, a.encoding),
        ...(a.kind === undefined ? {} : { kind: a.kind }),
        ...(a.summary === undefined ? {} : { summary: a.summary }),
      }),
    }),
  }),
  tool({
    name: 'stage_tasks',
    title: 'My open stage tasks',
    description:
      'Stage tasks of playbook runs assigned to this identity and still open, each with its Context Snapshot (objective, brief, input refs). Answer each with stage_deliver, stage_reject (review stages) or stage_fail. A task with `claim` is being worked on by another worker (its `holder`): leave it to them.',
    input: {
      role: z.string().min(1).optional().describe('only tasks of this role'),
    },
    readOnly: true,
    run: async (agent, a) => {
      const { tasks } = await agent.api.get<{ tasks: StageTask[] }>(workerPath(agent, 'tasks'));
      return { tasks: a.role === undefined ? tasks : tasks.filter((t) => t.role === a.role) };
    },
  }),
  tool({
    name: 'stage_deliver',
    title: 'Deliver a stage',
    description:
      "Deliver the output of an open stage task: the value is stored in the run's vault as this identity and the run moves on. Key and kind default to the stage's expected output.",
    input: {
      task_id: taskId,
      value: z.string().describe('the stage output (text, or base64 with encoding "base64")'),
      encoding: encodingOf('value'),
      key: z.string().min(1).optional().describe("vault key; default the stage's output key"),
      kind: z.string().min(1).optional().describe("artifact kind; default the stage's output kind"),
      summary: z.string().optional().describe('one line for the next stages and the manifest'),
      choice: z.string().min(1).optional().describe("a voter's answer, for vote stages"),
    },
    readOnly: false,
    run: async (agent, a) => {
      const value = contentIn(a.value, a.encoding, 'value');
      return agent.api.post<{ ref: unknown }>(workerPath(agent, 'deliver'), {
        task_id: a.task_id,
        ...(typeof value === 'string' ? { value } : { value_base64: Buffer.from(value).toString('base64') }),
        ...(a.key === undefined ? {} : { key: a.key }),
        ...(a.kind === undefined ? {} : { kind: a.kind }),
        ...(a.summary === undefined ? {} : { summary: a.summary }),
        ...(a.choice === undefined ? {} : { choice: a.choice }),
      });
    },
  }),
  tool({
    name: 'stage_reject',
    title: 'Reject in a review stage',
    description:
      'Reject the work under review in an open review-stage task: the run rolls back (to `target`, or the stage the playbook names) and counts a retry.',
    input: {
      task_id: taskId,
      reason: z.string().min(1).describe('what must change'),
      target: z
        .string()
        .min(1)
        .optional()
        .describe('the stage to roll back to, when the playbook allows several'),
    },
    readOnly: false,
    run: async (agent, a) =>
      agent.api.post(workerPath(agent, 'reject'), {
        task_id: a.task_id,
        reason: a.reason,
        ...(a.target === undefined ? {} : { target: a.target }),
      }),
  }),
  tool({
    name: 'stage_fail',
    title: 'Fail a stage',
    description:
      'Report that an open stage task cannot be done: the run retries it, or hands it to the Owner when `fatal` or retries are exhausted.',
    input: {
      task_id: taskId,
      error: z.string().min(1).describe('why the stage failed'),
      fatal: z.boolean().optional().describe('true when retrying cannot help'),
    },
    readOnly: false,
    run: async (agent, a) =>
      agent.api.post(workerPath(agent, 'fail'), {
        task_id: a.task_id,
        error: a.error,
        fatal: a.fatal === true,
      }),
  }),
];
