// The Enclave statechart: members (DID → role and permissions), bound playbooks, lifecycle active/archived.
import { and, assign, emit, setup } from 'xstate';

/** Version recorded in every persisted Enclave snapshot; bump it when the context or states change shape. */
export const ENCLAVE_MACHINE_VERSION = 1;

export const PERMISSIONS = ['read', 'write', 'admin'] as const;
export type Permission = (typeof PERMISSIONS)[number];

export interface Member {
  role: string;
  permissions: Permission[];
  /** Envelope time at which the member was added or last changed. */
  since: number;
}

/** Where the Enclave's vault keeps its artifacts. */
export type VaultBackendName = 'lmdb' | 'git';

export interface EnclaveContext {
  enclave_id: string;
  name: string;
  /** The creator: an Owner who may always change membership, and whom nobody can remove. */
  owner: string;
  members: Record<string, Member>;
  playbooks: string[];
  backend: VaultBackendName;
  created_at: number;
}

export interface EnclaveInput {
  enclave_id: string;
  owner: string;
  name?: string;
  backend?: VaultBackendName;
  created_at?: number;
}

const ARCHIVED = {
  code: 'ANX_ENCLAVE_STATE_CONFLICT',
  reason: 'it is archived: it takes no changes until it is activated again',
} as const;

/** Envelopes the Enclave accepts; `from` (or `actor`) must be an admin member or the owner. */
export interface EnclaveEvent {
  type: string;
  id?: string;
  from?: string;
  actor?: string;
  ts?: number;
  body?: unknown;
}

const MAX_MEMBERS = 1024;
const MAX_PLAYBOOKS = 256;
const ROLE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
const DID = /^did:[a-z0-9]+:[A-Za-z0-9._:%-]{1,256}$/;

function body(event: EnclaveEvent): Record<string, unknown> {
  return typeof event.body === 'object' && event.body !== null ? (event.body as Record<string, unknown>) : {};
}

function senders(event: EnclaveEvent): string[] {
  return [event.from, event.actor].filter((d): d is string => typeof d === 'string');
}

/** True when `did` may change the Enclave: its owner or an admin member. */
export function isEnclaveAdmin(context: EnclaveContext, did: string): boolean {
  return did === context.owner || context.members[did]?.permissions.includes('admin') === true;
}

/** The permissions `did` holds in the Enclave (the owner holds all of them). */
export function permissionsOf(context: EnclaveContext, did: string): Permission[] {
  if (did === context.owner) return [...PERMISSIONS];
  return context.members[did]?.permissions ?? [];
}

/** Why a member change is malformed, or null when it is well formed. */
export function memberChangeProblem(b: Record<string, unknown>): string | null {
  if (typeof b['did'] !== 'string' || !DID.test(b['did'])) return '"did" expected a DID';
  if (typeof b['role'] !== 'string' || !ROLE.test(b['role']))
    return '"role" expected [A-Za-z0-9] then up to 63 of [A-Za-z0-9_.-]';
  const perms = b['permissions'];
  if (
    !Array.isArray(perms) ||
    perms.length === 0 ||
    !perms.every((p) => (PERMISSIONS as readonly unknown[]).includes(p))
  )
    return '"permissions" expected a non-empty list of read, write, admin';
  return null;
}

/**
 * Membership changes come as envelopes from the acting DID: `enclave.member.set {did, role, permissions}`,
 * `enclave.member.remove {did}`, `enclave.playbook.bind {playbook}`, `enclave.archive`, `enclave.activate`.
 * Anything from a DID that is neither the owner nor an admin, or malformed, is refused with an error event
 * and changes nothing. An archived Enclave keeps its members but takes no changes except `enclave.activate`.
 */
export const enclaveMachine = setup({
  types: {
    context: {} as EnclaveContext,
    input: {} as EnclaveInput,
    events: {} as EnclaveEvent,
    emitted: {} as { type: 'anx.event'; kind: 'status' | 'error'; payload: unknown },
  },
  guards: {
    fromAdmin: ({ context, event }) => senders(event).some((d) => isEnclaveAdmin(context, d)),
    validMember: ({ context, event }) => {
      const b = body(event);
      if (memberChangeProblem(b) !== null) return false;
      return (b['did'] as string) in context.members || Object.keys(context.members).length < MAX_MEMBERS;
    },
    removable: ({ context, event }) => {
      const did = body(event)['did'];
      return typeof did === 'string' && did !== context.owner && did in context.members;
    },
    validPlaybook: ({ context, event }) => {
      const p = body(event)['playbook'];
      return (
        typeof p === 'string' && p.length > 0 && p.length <= 256 && context.playbooks.length < MAX_PLAYBOOKS
      );
    },
  },
  actions: {
    setMember: assign(({ context, event }) => {
      const b = body(event);
      const did = b['did'] as string;
      const permissions = [...new Set(b['permissions'] as Permission[])];
      return {
        members: {
          ...context.members,
          [did]: { role: b['role'] as string, permissions, since: event.ts ?? 0 },
        },
      };
    }),
    removeMember: assign(({ context, event }) => {
      const { [body(event)['did'] as string]: _gone, ...rest } = context.members;
      return { members: rest };
    }),
    bindPlaybook: assign(({ context, event }) => {
      const p = body(event)['playbook'] as string;
      return { playbooks: context.playbooks.includes(p) ? context.playbooks : [...context.playbooks, p] };
    }),
    announce: emit(({ context, event }) => ({
      type: 'anx.event' as const,
      kind: 'status' as const,
      payload: {
        status: event.type,
        enclave_id: context.enclave_id,
        id: event.id ?? null,
        by: senders(event)[0] ?? null,
        ...body(event),
      },
    })),
    refuse: emit(({ context, event }, params: { code: string; reason: string }) => ({
      type: 'anx.event' as const,
      kind: 'error' as const,
      payload: {
        code: params.code,
        reason: params.reason,
        enclave_id: context.enclave_id,
        id: event.id ?? null,
        type: event.type,
        from: senders(event)[0] ?? null,
      },
    })),
  },
}).createMachine({
  id: 'enclave',
  context: ({ input }) => ({
    enclave_id: input.enclave_id,
    name: input.name ?? input.enclave_id,
    owner: input.owner,
    members: {
      [input.owner]: { role: 'owner', permissions: ['read', 'write', 'admin'], since: input.created_at ?? 0 },
    },
    playbooks: [],
    backend: input.backend ?? 'lmdb',
    created_at: input.created_at ?? 0,
  }),
  initial: 'active',
  states: {
    active: {
      on: {
        'enclave.member.set': [
          { guard: and(['fromAdmin', 'validMember']), actions: ['setMember', 'announce'] },
          {
            guard: 'fromAdmin',
            actions: {
              type: 'refuse',
              params: { code: 'ANX_ENCLAVE_INVALID', reason: 'malformed member or too many members' },
            },
          },
          {
            actions: {
              type: 'refuse',
              params: { code: 'ANX_FORBIDDEN_ENCLAVE', reason: 'only the owner or an admin may do this' },
            },
          },
        ],
        'enclave.member.remove': [
          { guard: and(['fromAdmin', 'removable']), actions: ['removeMember', 'announce'] },
          {
            guard: 'fromAdmin',
            actions: {
              type: 'refuse',
              params: { code: 'ANX_ENCLAVE_INVALID', reason: 'not a removable member (the owner stays)' },
            },
          },
          {
            actions: {
              type: 'refuse',
              params: { code: 'ANX_FORBIDDEN_ENCLAVE', reason: 'only the owner or an admin may do this' },
            },
          },
        ],
        'enclave.playbook.bind': [
          { guard: and(['fromAdmin', 'validPlaybook']), actions: ['bindPlaybook', 'announce'] },
          {
            actions: {
              type: 'refuse',
              params: {
                code: 'ANX_FORBIDDEN_ENCLAVE',
                reason: 'only the owner or an admin may bind a playbook',
              },
            },
          },
        ],
        'enclave.activate': {
          actions: {
            type: 'refuse',
            params: { code: 'ANX_ENCLAVE_STATE_CONFLICT', reason: 'it is active already' },
          },
        },
        'enclave.archive': [
          { guard: 'fromAdmin', target: 'archived', actions: 'announce' },
          {
            actions: {
              type: 'refuse',
              params: { code: 'ANX_FORBIDDEN_ENCLAVE', reason: 'only the owner or an admin may archive' },
            },
          },
        ],
      },
    },
    archived: {
      on: {
        // Nothing changes an archived Enclave but its reactivation: each is refused at once, with a reason.
        'enclave.member.set': { actions: { type: 'refuse', params: ARCHIVED } },
        'enclave.member.remove': { actions: { type: 'refuse', params: ARCHIVED } },
        'enclave.playbook.bind': { actions: { type: 'refuse', params: ARCHIVED } },
        'enclave.archive': {
          actions: {
            type: 'refuse',
            params: { code: 'ANX_ENCLAVE_STATE_CONFLICT', reason: 'it is archived already' },
          },
        },
        'enclave.activate': [
          { guard: 'fromAdmin', target: 'active', actions: 'announce' },
          {
            actions: {
              type: 'refuse',
              params: { code: 'ANX_FORBIDDEN_ENCLAVE', reason: 'only the owner or an admin may reactivate' },
            },
          },
        ],
      },
    },
  },
});
