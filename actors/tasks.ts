// The Action Layer on one host: Task actors at `task/<id>`, proposed, claimed, moved and synced by signed statements.
import { randomBytes } from 'node:crypto';
import {
  createTaskMachine,
  NOTIFY_STATES,
  type NotifyState,
  proposalProblem,
  TASK_MACHINE_VERSION,
  TASK_STATES,
  type TaskContext,
  type TaskInput,
  type TaskResource,
  type TaskState,
  taskView,
} from '../machines/task.ts';
import type { CryptoSuite } from '../runtime/crypto/suite.ts';
import { AnxError, describeValue, IdTakenError } from '../runtime/errors.ts';
import type { Keystore } from '../runtime/identity/keystore.ts';
import type { ActorSystem, MachineDefinition } from '../runtime/kernel/actor-system.ts';
import {
  COLLAB_ID,
  CollabRefusedError,
  type CollabRelay,
  deliverStatement,
  notLocal,
  signStatement,
  statementSigner,
  statementVerifier,
} from './collab.ts';
import type { Enclaves } from './enclaves.ts';
import type { VaultService } from './vault-service.ts';

export const TASK_KIND = 'task';

/** The actor address of a task. */
export function taskAddress(taskId: string): string {
  return `task/${taskId}`;
}

/** The Task machine bound to the kernel, verifying statements with `suite`. */
export function taskActor(suite: CryptoSuite): MachineDefinition {
  return {
    kind: TASK_KIND,
    version: TASK_MACHINE_VERSION,
    machine: createTaskMachine(statementVerifier(suite)),
    input: (_address, init) => init as TaskInput,
  };
}

/** A task request that names something malformed. */
export class TaskInputError extends AnxError {
  constructor(message: string, hint?: string) {
    super('ANX_TASK_INVALID', message, hint === undefined ? undefined : { hint });
  }
}

/** No task with this id here, and no notice says where it lives. */
export class TaskNotFoundError extends AnxError {
  constructor(taskId: string) {
    super('ANX_TASK_NOT_FOUND', `no task ${describeValue(taskId)} on this host, and no notice of it`, {
      hint: 'list tasks with `anx-runtime task list`; for a task on another host pass --home DID (its proposer)',
    });
  }
}

export type TaskView = ReturnType<typeof taskView> & {
  log?: TaskContext['log'];
  /** True when the task lives on another host and this is its last notice. */
  replica?: boolean;
};

/** What a request on a task of another host returns: it was sent to the proposer, who answers by notice. */
export interface ForwardedRequest {
  forwarded: true;
  task_id: string;
  home: string;
  id: string;
}

/** An artifact named by Enclave and key (and version, else the latest), resolved to its ref on sync. */
export interface ArtifactByKey {
  kind: 'artifact';
  enclave_id: string;
  key: string;
  version?: number;
}

export interface ProposeRequest {
  as: string;
  title: string;
  description?: string;
  candidates?: string[];
  enclave_id?: string;
  /** Attached from the start; an artifact named by key is resolved to its ref (read as `as`) first. */
  resources?: Array<TaskResource | ArtifactByKey>;
  id?: string;
}

/**
 * Proposes tasks as local identities and moves them with statements signed by the acting identity.
 * A task lives on its proposer's host; a request for a task held elsewhere is signed here and sent to the
 * proposer's DID, whose host hands it to the task (the relay carries it like any message).
 *
 * @example
 * ```ts
 * const task = await tasks.propose({ as: alice, title: 'Review the login diff', candidates: [bob] });
 * await tasks.claim(task.task_id, bob);
 * await tasks.notify(task.task_id, bob, 'in_progress');
 * await tasks.notify(task.task_id, bob, 'done', { result: 'approved' });
 * ```
 */
export class Tasks {
  constructor(
    private readonly system: ActorSystem,
    private readonly keystore: Keystore,
    private readonly enclaves: Enclaves,
    private readonly relay: CollabRelay,
    private readonly suite: CryptoSuite,
    private readonly vault?: VaultService,
  ) {}

  async propose(request: ProposeRequest): Promise<TaskView> {
    if (request === null || typeof request !== 'object')
      throw new TaskInputError('a proposal expected { as, title, ... }');
    this.requireLocal(request.as);
    const id = request.id ?? `task-${randomBytes(6).toString('hex')}`;
    if (typeof id !== 'string' || !COLLAB_ID.test(id))
      throw new TaskInputError(
        `"id" expected [A-Za-z0-9] then up to 63 of [A-Za-z0-9_.-], got ${describeValue(id)}`,
      );
    const address = taskAddress(id);
    if (this.system.has(address)) {
      // A retried proposal (same id, proposer and title) answers with the task; anything else is a clash.
      const known = this.system.info(address)?.kind === TASK_KIND ? this.get(id) : undefined;
      if (known !== undefined && known.proposer === request.as && known.title === request.title) return known;
      throw new IdTakenError(`"id" expected a new task id, but task ${id} exists with other content`);
    }
    const body: Record<string, unknown> = { task_id: id, title: request.title };
    for (const field of ['description', 'candidates', 'enclave_id'] as const)
      if (request[field] !== undefined) body[field] = request[field];
    if (request.resources !== undefined) {
      // Resolved before anything is created: an artifact that cannot be read leaves no task behind.
      if (!Array.isArray(request.resources))
        throw new TaskInputError('"resources" expected a list of resources');
      const resolved: unknown[] = [];
      for (const r of request.resources) resolved.push(await this.resolve(r, request.as));
      body['resources'] = resolved;
    }
    const problem = proposalProblem(body);
    if (problem !== null) throw new TaskInputError(problem);
    if (request.enclave_id !== undefined) this.enclaves.check(request.enclave_id, request.as, 'read');
    const raw = signStatement(this.keystore, this.system.clock, request.as, 'task.propose', address, body);
    const verified = this.verify(raw, address, 'task.propose');
    await this.system.spawn(TASK_KIND, address, {
      task_id: id,
      address,
      propose: verified,
    } satisfies TaskInput);
    return this.get(id);
  }

  /** `as` claims the task; only one claim ever wins. */
  claim(taskId: string, as: string, options: { home?: string } = {}) {
    return this.act(taskId, as, 'task.claim', {}, options);
  }

  /** A state notify: the claimant reports in_progress, done or failed; the proposer cancels. */
  notify(
    taskId: string,
    as: string,
    state: NotifyState,
    details: { result?: string; reason?: string; home?: string } = {},
  ) {
    if (!(NOTIFY_STATES as readonly unknown[]).includes(state))
      throw new TaskInputError(
        `"state" expected one of ${NOTIFY_STATES.join(', ')}, got ${describeValue(state)}`,
      );
    const body: Record<string, unknown> = { state };
    if (details.result !== undefined) body['result'] = details.result;
    if (details.reason !== undefined) body['reason'] = details.reason;
    return this.act(
      taskId,
      as,
      'task.notify',
      body,
      details.home === undefined ? {} : { home: details.home },
    );
  }

  /**
   * Resource sync: attaches artifact refs, vault keys or URLs to the task. An artifact given as
   * `{ kind: 'artifact', enclave_id, key, version? }` is resolved to its ref here, reading as `as`.
   */
  async sync(
    taskId: string,
    as: string,
    resources: Array<TaskResource | ArtifactByKey>,
    options: { home?: string } = {},
  ) {
    if (!Array.isArray(resources)) throw new TaskInputError('"resources" expected a list of resources');
    const resolved: unknown[] = [];
    for (const r of resources) resolved.push(await this.resolve(r, as));
    return this.act(taskId, as, 'task.sync', { resources: resolved }, options);
  }

  private async resolve(r: TaskResource | ArtifactByKey, as: string): Promise<unknown> {
    if (
      r === null ||
      typeof r !== 'object' ||
      r.kind !== 'artifact' ||
      'ref' in r ||
      this.vault === undefined
    )
      return r;
    const { meta } = await this.vault.get(r.enclave_id, r.key, as, r.version);
    const { enclave_id, key, version, hash, size, summary } = meta;
    return { kind: 'artifact', ref: { enclave_id, key, version, hash, size, summary } };
  }

  /**
   * Hands a statement signed elsewhere (by an agent holding its own key) to the task: `type` is its
   * message type. The task checks it like any other.
   */
  async submit(taskId: string, type: string, statement: string, options: { home?: string } = {}) {
    if (typeof statement !== 'string' || statement.length === 0)
      throw new TaskInputError('"statement" expected a signed statement as base64url');
    const signer = statementSigner(statement, 'ANX_TASK_SIGNATURE_INVALID');
    return this.route(taskId, signer, type, statement, options);
  }

  /** The task with its signed log; a task of another host answers with its last notice (`replica`). */
  get(taskId: string): TaskView {
    const address = this.localAddress(taskId);
    if (address === undefined) {
      const seen = this.relay.viewOf(taskId) as TaskView | undefined;
      if (seen === undefined) throw new TaskNotFoundError(String(taskId));
      return { ...seen, replica: true };
    }
    const snap = this.system.snapshot(address);
    const context = snap.context as TaskContext;
    return { ...taskView(context, snap.value as TaskState), log: context.log };
  }

  /** Tasks held on this host, newest first, optionally only those `did` takes part in or in one state. */
  list(filter: { did?: string; state?: string } = {}): TaskView[] {
    if (filter.state !== undefined && !(TASK_STATES as readonly string[]).includes(filter.state))
      throw new TaskInputError(
        `"state" expected one of ${TASK_STATES.join(', ')}, got ${describeValue(filter.state)}`,
      );
    const out: TaskView[] = [];
    for (const address of this.system.addresses(TASK_KIND)) {
      const snap = this.system.snapshot(address);
      const c = snap.context as TaskContext;
      if (filter.state !== undefined && snap.value !== filter.state) continue;
      if (
        filter.did !== undefined &&
        c.home !== filter.did &&
        c.claimant !== filter.did &&
        !c.candidates.includes(filter.did)
      )
        continue;
      out.push(taskView(c, snap.value as TaskState));
    }
    return out.sort((a, b) => b.created_at - a.created_at);
  }

  private async act(
    taskId: string,
    as: string,
    type: string,
    body: Record<string, unknown>,
    options: { home?: string },
  ): Promise<TaskView | ForwardedRequest> {
    this.requireLocal(as);
    if (typeof taskId !== 'string' || !COLLAB_ID.test(taskId))
      throw new TaskInputError(`"task_id" expected a task id, got ${describeValue(taskId)}`);
    const raw = signStatement(this.keystore, this.system.clock, as, type, taskAddress(taskId), {
      task_id: taskId,
      ...body,
    });
    return this.route(taskId, as, type, raw, options);
  }

  private async route(
    taskId: string,
    from: string,
    type: string,
    statement: string,
    options: { home?: string },
  ): Promise<TaskView | ForwardedRequest> {
    const forwarded = await deliverStatement(
      this.system,
      this.relay,
      {
        address: this.localAddress(taskId),
        id: taskId,
        idField: 'task_id',
        hint: 'see the task and its log with `anx-runtime task show TASK`',
        ...options,
      },
      { from, type, statement },
      () => new TaskNotFoundError(taskId),
    );
    return forwarded === undefined ? this.get(taskId) : { ...forwarded, task_id: taskId };
  }

  private localAddress(taskId: string): string | undefined {
    if (typeof taskId !== 'string' || !COLLAB_ID.test(taskId)) return undefined;
    const address = taskAddress(taskId);
    return this.system.info(address)?.kind === TASK_KIND ? address : undefined;
  }

  private verify(raw: string, subject: string, type: string) {
    const checked = statementVerifier(this.suite)(raw, { subject, type });
    if (!checked.ok) throw new CollabRefusedError('ANX_TASK_SIGNATURE_INVALID', checked.problem.reason);
    return checked.statement;
  }

  private requireLocal(did: unknown): asserts did is string {
    if (typeof did !== 'string' || !this.keystore.has(did)) throw new TaskInputError(...notLocal(did));
  }
}
