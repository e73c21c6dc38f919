// MCP tools for working with others: Secretary dispatch and abort, Action Layer tasks, Discussions, marking mail read.

import { z } from 'zod';
import { MAX_DEADLINE_MS } from '../../machines/discussion.ts';
import { TOKEN_PREFIX } from '../../runtime/authority/tokens.ts';
import { type McpAgent, type ToolDefinition, tool } from './tools.ts';

const did = z.string().min(1);
const id = (what: string) => z.string().min(1).describe(what);
const enc = encodeURIComponent;

/** Drops the fields left out, so the daemon sees only what the caller gave. */
function given(fields: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(fields).filter(([, v]) => v !== undefined));
}

const token = z
  .string()
  .startsWith(TOKEN_PREFIX, `expected a capability token (text starting with "${TOKEN_PREFIX}")`)
  .optional()
  .describe(
    `a capability token ("${TOKEN_PREFIX}…") granting this identity the action, when it is neither the Owner nor its Secretary`,
  );

/** The host of a discussion this host has not heard of yet: its creator's DID. */
const home = did.optional().describe("the discussion creator's DID, for a discussion on another host");

function me(agent: McpAgent): string {
  return agent.client.did;
}

/** Dispatch, its status and abort: acting for an Owner (as the Owner, its bound Secretary, or with a token). */
export const DISPATCH_TOOLS: ToolDefinition[] = [
  tool({
    name: 'dispatch',
    title: 'Dispatch an objective',
    description:
      "Hand an objective to the Owner's Secretary, acting as this identity for the Owner: it picks bound workers by role, creates the Enclave and starts the run. Idempotent on session_id: repeating the identical request returns the same run (a different one under the same session_id is refused).",
    input: {
      session_id: id(
        'your id for this request, e.g. "sess_login_001"; the identical request again returns the same run',
      ),
      owner_did: did.describe('the Owner the work is done for'),
      objective: z.string().min(1).describe('what must be achieved'),
      required_roles: z.array(z.string().min(1)).min(1).describe('roles the work needs, e.g. ["developer"]'),
      playbook: z
        .unknown()
        .optional()
        .describe('a playbook template name or definition; default one stage per role, in order'),
      secretary_did: did.optional().describe("the Secretary to use; default the Owner's first"),
      source: z
        .record(z.string(), z.unknown())
        .optional()
        .describe('where the request came from, kept with it'),
      token,
    },
    readOnly: false,
    run: async (agent, a) =>
      agent.api.post('/v1/dispatch', given({ ...a, actor_did: me(agent) }) as Record<string, unknown>),
  }),
  tool({
    name: 'dispatch_status',
    title: 'Dispatch status',
    description:
      'Where a dispatch stands: its state, the chosen workers and why, the Enclave, the run and the result.',
    input: { session_id: id('the session_id given to dispatch'), token },
    readOnly: true,
    run: async (agent, a) =>
      a.token === undefined
        ? agent.api.get(`/v1/dispatches/${enc(a.session_id)}?${new URLSearchParams({ actor: me(agent) })}`)
        : agent.api.post(`/v1/dispatches/${enc(a.session_id)}/status`, {
            actor_did: me(agent),
            token: a.token,
          }),
  }),
  tool({
    name: 'abort',
    title: 'Abort a dispatch',
    description:
      "Abort a dispatch and its run, acting as this identity (it must be the Owner, the Owner's Secretary, or hold a token for it).",
    input: {
      session_id: id('the session_id given to dispatch'),
      reason: z.string().min(1).optional().describe('why, kept with the aborted run'),
      token,
    },
    readOnly: false,
    run: async (agent, a) =>
      agent.api.post(
        `/v1/dispatches/${enc(a.session_id)}/abort`,
        given({ actor_did: me(agent), reason: a.reason, token: a.token }),
      ),
  }),
];

/** The Action Layer (propose, claim, state notify) and Discussions (open, post, vote), as this identity. */
export const COLLAB_TOOLS: ToolDefinition[] = [
  tool({
    name: 'task_propose',
    title: 'Propose a task',
    description:
      'Propose a task to other agents (Action Layer): it starts "proposed"; a candidate claims it, then reports in_progress, done, failed. Every change is signed.',
    input: {
      title: z.string().min(1).describe('what should be done, in a line'),
      description: z.string().optional().describe('details'),
      candidates: z.array(did).optional().describe('DIDs that may claim it (default anyone told of it)'),
      enclave_id: z.string().min(1).optional().describe('the Enclave it belongs to'),
      id: z.string().min(1).optional().describe('your id for the task (idempotent)'),
    },
    readOnly: false,
    run: async (agent, a) => agent.api.post('/v1/tasks', given({ ...a, as: me(agent) })),
  }),
  tool({
    name: 'tasks',
    title: 'List tasks',
    description:
      'Action Layer tasks this identity proposed, was offered or claimed, optionally in one state.',
    input: {
      state: z
        .enum(['proposed', 'claimed', 'in_progress', 'done', 'failed', 'cancelled'])
        .optional()
        .describe('only tasks in this state'),
    },
    readOnly: true,
    run: async (agent, a) =>
      agent.api.get(`/v1/tasks?${new URLSearchParams(given({ as: me(agent), state: a.state }) as never)}`),
  }),
  tool({
    name: 'task_claim',
    title: 'Claim a task',
    description: 'Claim a proposed task as this identity (a candidate of it).',
    input: {
      task_id: id('the task id'),
      home: did.optional().describe("the proposer's DID, for a task on another host"),
    },
    readOnly: false,
    run: async (agent, a) =>
      agent.api.post(`/v1/tasks/${enc(a.task_id)}/claim`, given({ as: me(agent), home: a.home })),
  }),
  tool({
    name: 'task_notify',
    title: 'Report a task state',
    description:
      'State notify for a task this identity claimed: in_progress, done (with a result), failed (with a reason); the proposer may cancel.',
    input: {
      task_id: id('the task id'),
      state: z.enum(['in_progress', 'done', 'failed', 'cancelled']).describe('the new state'),
      result: z.string().optional().describe('for done: the outcome'),
      reason: z.string().optional().describe('for failed or cancelled: why'),
      home: did.optional().describe("the proposer's DID, for a task on another host"),
    },
    readOnly: false,
    run: async (agent, a) =>
      agent.api.post(
        `/v1/tasks/${enc(a.task_id)}/notify`,
        given({ as: me(agent), state: a.state, result: a.result, reason: a.reason, home: a.home }),
      ),
  }),
  tool({
    name: 'discussion_open',
    title: 'Open a discussion',
    description:
      'Open a discussion thread with participants, optionally with options to vote on under a rule (majority, unanimous, leader) and a deadline.',
    input: {
      topic: z.string().min(1).describe('the question or subject'),
      participants: z.array(did).min(1).describe('DIDs taking part'),
      options: z.array(z.string().min(1)).optional().describe('what can be voted for, e.g. ["ship", "wait"]'),
      rule: z
        .enum(['majority', 'unanimous', 'leader'])
        .optional()
        .describe('how votes decide (default majority)'),
      leader: did.optional().describe('for the leader rule: who decides'),
      deadline_in_ms: z
        .number()
        .int()
        .positive()
        .max(MAX_DEADLINE_MS)
        .optional()
        .describe('voting ends this many ms from now (at most a year)'),
      enclave_id: z.string().min(1).optional().describe('the Enclave whose vault keeps the conclusion'),
      id: z.string().min(1).optional().describe('your id for the discussion (idempotent)'),
    },
    readOnly: false,
    run: async (agent, a) => agent.api.post('/v1/discussions', given({ ...a, as: me(agent) })),
  }),
  tool({
    name: 'discussion_show',
    title: 'Show a discussion',
    description: 'A discussion with its posts (and quotes), ballots, state and conclusion.',
    input: { discussion_id: id('the discussion id') },
    readOnly: true,
    run: async (agent, a) => agent.api.get(`/v1/discussions/${enc(a.discussion_id)}`),
  }),
  tool({
    name: 'discussion_post',
    title: 'Post in a discussion',
    description:
      'Post in a discussion as this identity, optionally quoting an earlier post; @DID or @name in the text notifies that agent.',
    input: {
      discussion_id: id('the discussion id'),
      text: z.string().min(1).describe('the post'),
      quote: z.string().min(1).optional().describe('the id of the post replied to'),
      mentions: z.array(did).optional().describe('DIDs to notify besides those @mentioned in the text'),
      home,
    },
    readOnly: false,
    run: async (agent, a) =>
      agent.api.post(
        `/v1/discussions/${enc(a.discussion_id)}/posts`,
        given({ as: me(agent), text: a.text, quote: a.quote, mentions: a.mentions, home: a.home }),
      ),
  }),
  tool({
    name: 'discussion_vote',
    title: 'Vote in a discussion',
    description: "Cast this identity's signed ballot for one of the discussion's options.",
    input: {
      discussion_id: id('the discussion id'),
      option: z.string().min(1).describe('one of the options'),
      home,
    },
    readOnly: false,
    run: async (agent, a) =>
      agent.api.post(
        `/v1/discussions/${enc(a.discussion_id)}/votes`,
        given({ as: me(agent), option: a.option, home: a.home }),
      ),
  }),
  tool({
    name: 'mark_read',
    title: 'Mark the inbox read',
    description: "Mark this identity's inbox read up to a sequence number (default: everything received).",
    input: {
      through: z.number().int().min(0).optional().describe('the last seq read; default the newest'),
    },
    readOnly: false,
    run: async (agent, a) =>
      agent.api.post(`/v1/inbox/${enc(me(agent))}/read`, given({ through: a.through })),
  }),
];
