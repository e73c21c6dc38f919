// Playbook runs: definitions stored by content hash, the compiled run machine found again after a restart, start/status/control.
import { createHash, randomBytes } from 'node:crypto';
import type { Database, Key } from 'lmdb';
import { compilePlaybook, isArtifactRef } from '../machines/playbook/compile.ts';
import type { ArtifactRef, PlaybookDefinition } from '../machines/playbook/definition.ts';
import type { RunContext, StageExecution } from '../machines/playbook/run.ts';
import { PLAYBOOK_TEMPLATES, playbookTemplate, type TemplateName } from '../machines/playbook/templates.ts';
import { assertPlaybook } from '../machines/playbook/validate.ts';
import { describeValue, IdTakenError } from '../runtime/errors.ts';
import type { Keystore } from '../runtime/identity/keystore.ts';
import type { ActorSystem, MachineDefinition } from '../runtime/kernel/actor-system.ts';
import { type ArtifactVersion, toRef } from '../runtime/vault/types.ts';
import { watchActorEvent } from './await-event.ts';
import type { Enclaves } from './enclaves.ts';
import { ChangeRefusedError, EnclaveForbiddenError, RunNotFoundError, TeamworkInputError } from './errors.ts';

/** Version of the run actor's binding; the statechart itself is pinned by the definition's content hash. */
export const RUN_MACHINE_VERSION = 1;
export const RUN_KIND_PREFIX = 'playbook/';

const RUN_ID = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

/** The actor address of a run. */
export function runAddress(runId: string): string {
  return `run/${runId}`;
}

/** States a run reports (DESIGN §8). */
export type RunState =
  | 'pending'
  | 'running'
  | 'retrying'
  | 'paused'
  | 'takeover'
  | 'completed'
  | 'failed'
  | 'aborted';

/** What `startRun` takes. `playbook` is a definition (raw or validated) or a template name. */
export interface StartRunRequest {
  playbook: unknown;
  objective: string;
  owner: string;
  enclave: string;
  assignments: Record<string, string | string[]>;
  coordinator?: string;
  run_id?: string;
  session_id?: string;
  /** Refs of existing vault artifacts named as stage inputs. */
  artifacts?: Record<string, ArtifactRef>;
  /**
   * Capability tokens the coordinator presents with its assignments, by worker DID: for a worker of
   * another host bound to an Owner, a token from that Owner allowing `stage.assign` on the worker to
   * the coordinator (resource `worker:<DID>`). Sent in the `cap` of every `stage.assign` to that DID.
   */
  tokens?: Record<string, string>;
}

/** One run as `run status` shows it. */
export interface RunStatus {
  run_id: string;
  state: RunState;
  /** The statechart's state value, for the visualiser. */
  value: unknown;
  playbook: { name: string; version: string; hash: string };
  objective: string;
  owner: string;
  coordinator: string;
  enclave_id: string | null;
  current: string | null;
  stages: StageExecution[];
  takeover: RunContext['takeover'];
  end_reason: string | null;
}

interface RunIndexEntry {
  hash: string;
  enclave_id: string;
  owner: string;
  coordinator: string;
  created_at: number;
  /** Tokens presented with assignments, by worker DID (see `StartRunRequest.tokens`). */
  tokens?: Record<string, string>;
}

/** Longest token a run keeps for one worker (as the token service accepts). */
const MAX_ASSIGN_TOKEN_CHARS = 32_768;

/** Canonical JSON (sorted keys): the same definition always hashes the same. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

/** Maps the statechart's value to the run state DESIGN §8 names. */
export function runStateOf(value: unknown): RunState {
  if (typeof value === 'string') {
    if (value === 'pending' || value === 'paused' || value === 'completed' || value === 'failed')
      return value;
    if (value === 'aborted') return 'aborted';
    return 'running';
  }
  const live = (value as { live?: unknown } | null)?.live;
  if (live === 'retrying') return 'retrying';
  if (live === 'takeover') return 'takeover';
  return 'running';
}

/** The status event each Owner action ends with (`run.abort` from any live state ends the run). */
const CONTROL_ANSWERS: Readonly<Record<string, string>> = {
  'run.pause': 'run.paused',
  'run.resume': 'run.resumed',
  'run.abort': 'run.aborted',
  'takeover.deliver': 'stage.completed',
  'takeover.reassign': 'stage.reassigned',
  'takeover.skip': 'stage.skipped',
};

/** The longest objective a run (or a dispatch) takes; the Context Snapshot carries at most its first 4 KiB. */
export const OBJECTIVE_MAX_CHARS = 10_000;

/** A non-empty objective of at most OBJECTIVE_MAX_CHARS characters. */
export function isObjective(value: unknown): value is string {
  return typeof value === 'string' && value.length > 0 && value.length <= OBJECTIVE_MAX_CHARS;
}

/**
 * `artifacts` of a run request: input name → a ref into the run's Enclave, for `outside` inputs of the
 * playbook (those no stage produces). Anything else is refused naming the entry (the run would otherwise start
 * without the input and its stage would see nothing).
 */
function checkArtifacts(
  given: unknown,
  outside: readonly string[],
  enclaveId: string,
): Record<string, ArtifactRef> | undefined {
  if (given === undefined || given === null) return undefined;
  if (typeof given !== 'object' || Array.isArray(given))
    throw new TeamworkInputError('"artifacts" expected an object of input name → ArtifactRef');
  const out: Record<string, ArtifactRef> = {};
  for (const [input, ref] of Object.entries(given as Record<string, unknown>)) {
    const field = `"artifacts.${input.length > 64 ? `${input.slice(0, 64)}…` : input}"`;
    if (!outside.includes(input))
      throw new TeamworkInputError(
        `${field} names no input of the playbook that comes from outside the run`,
        outside.length === 0
          ? 'this playbook reads no outside artifacts: leave "artifacts" out'
          : `its outside inputs: ${outside.join(', ')}`,
      );
    if (!isArtifactRef(ref))
      throw new TeamworkInputError(
        `${field} expected an ArtifactRef {enclave_id, key, version, hash, size, summary}`,
        'take the ref a vault put answered, or `anx-runtime vault history` for an older version',
      );
    if (ref.enclave_id !== enclaveId)
      throw new TeamworkInputError(
        `${field} expected a ref into the run's Enclave ${enclaveId}, got one into ${ref.enclave_id.slice(0, 128)}`,
      );
    out[input] = ref;
  }
  return out;
}
/** Run index entries kept in memory (see `PlaybookRuns.entries`). */
const ENTRY_CACHE_MAX = 4096;

/**
 * Stores playbook definitions (by content hash) and the run index in LMDB, and resolves machine kinds
 * `playbook/<hash>` to the compiled statechart, so a restarted host restores every run with its exact machine.
 */
export class PlaybookRuns {
  private readonly definitions: Database<unknown, Key>;
  private readonly index: Database<unknown, Key>;
  private readonly compiled = new Map<string, { def: PlaybookDefinition; machine: MachineDefinition }>();
  /**
   * Index entries read lately (an entry never changes once committed): a handoff looks its run up several
   * times. Most recently used last; at most `ENTRY_CACHE_MAX`.
   */
  private readonly entries = new Map<string, RunIndexEntry>();
  /** Called before every change it makes (the host's freeze switch); throws to refuse the change. */
  writeGuard: ((action: string, actor: string) => void) | undefined;

  /** The vault as a run's start sees it (set by Teamwork): without it, refs are taken as given. */
  vault?: {
    /** Throws unless `ref` resolves for `as` (member, version exists, hash matches). */
    resolve(ref: ArtifactRef, as: string): Promise<unknown>;
    /** The versions of `key`, oldest first (empty when there is none). */
    history(enclaveId: string, key: string, as: string): Promise<ArtifactVersion[]>;
  };

  constructor(
    private readonly system: ActorSystem,
    private readonly keystore: Keystore,
    private readonly enclaves: Enclaves,
  ) {
    this.definitions = system.store.root.openDB({ name: 'playbooks', useRecords: false } as never);
    this.index = system.store.root.openDB({ name: 'runs', useRecords: false } as never);
    system.addResolver((kind) =>
      kind.startsWith(RUN_KIND_PREFIX) ? this.machineOf(kind.slice(RUN_KIND_PREFIX.length)) : undefined,
    );
  }

  /** The validated definition stored under `hash`, if any. */
  definition(hash: string): PlaybookDefinition | undefined {
    const known = this.compiled.get(hash);
    if (known !== undefined) return known.def;
    const raw = this.definitions.get(hash) as string | undefined;
    return raw === undefined ? undefined : (JSON.parse(raw) as PlaybookDefinition);
  }

  private machineOf(hash: string): MachineDefinition | undefined {
    const known = this.compiled.get(hash);
    if (known !== undefined) return known.machine;
    const def = this.definition(hash);
    if (def === undefined) return undefined;
    return this.compile(hash, def).machine;
  }

  private compile(hash: string, def: PlaybookDefinition) {
    const machine: MachineDefinition = {
      kind: RUN_KIND_PREFIX + hash,
      version: RUN_MACHINE_VERSION,
      machine: compilePlaybook(def),
      input: (_address, init) => init,
      // A handoff changes one or two stage executions of up to 200: each is its own record, so a
      // transition does not rewrite every earlier stage's execution.
      entryFields: ['stages'],
    };
    const entry = { def, machine };
    this.compiled.set(hash, entry);
    return entry;
  }

  /** Validates a playbook given as a definition or a template name. */
  resolvePlaybook(playbook: unknown): PlaybookDefinition {
    if (typeof playbook === 'string') {
      if (!(playbook in PLAYBOOK_TEMPLATES))
        throw new TeamworkInputError(
          `"playbook" expected a definition or a template name (${Object.keys(PLAYBOOK_TEMPLATES).join(', ')}), got ${describeValue(playbook)}`,
        );
      return playbookTemplate(playbook as TemplateName);
    }
    return assertPlaybook(playbook);
  }

  /**
   * Stores the definition, spawns the run actor with the compiled machine and sends it `run.start` as the
   * owner. Resolves once both are committed.
   */
  async start(request: StartRunRequest): Promise<{ run_id: string; address: string; hash: string }> {
    if (request === null || typeof request !== 'object')
      throw new TeamworkInputError('run expected an object');
    this.writeGuard?.('run.start', String(request.owner));
    const def = this.resolvePlaybook(request.playbook);
    const { owner } = request;
    if (typeof owner !== 'string' || !this.keystore.has(owner))
      throw new TeamworkInputError(
        `"owner" expected a local identity, got ${describeValue(owner)}`,
        'list local identities with `anx-runtime id list`',
      );
    const coordinator = request.coordinator ?? owner;
    if (typeof coordinator !== 'string' || !this.keystore.has(coordinator))
      throw new TeamworkInputError(
        `"coordinator" expected a local identity (it signs the manifest), got ${describeValue(coordinator)}`,
      );
    if (!isObjective(request.objective))
      throw new TeamworkInputError(
        `"objective" expected a non-empty string of at most ${OBJECTIVE_MAX_CHARS} characters`,
        'put long material in the vault and name it in "artifacts"',
      );
    if (
      request.session_id !== undefined &&
      (typeof request.session_id !== 'string' || request.session_id.length > 256)
    )
      throw new TeamworkInputError('"session_id" expected a string of at most 256 characters');
    const tokens = checkAssignTokens(request.tokens);
    const enclave = this.enclaves.check(request.enclave, owner, 'write');
    const artifacts = await this.outsideInputs(def, request.artifacts, enclave.enclave_id, owner);
    this.enclaves.check(request.enclave, coordinator, 'write');
    const assignments = this.checkAssignments(def, request.assignments, request.enclave);
    const runId = request.run_id ?? `run-${randomBytes(8).toString('hex')}`;
    if (typeof runId !== 'string' || !RUN_ID.test(runId))
      throw new TeamworkInputError(
        `"run_id" expected [A-Za-z0-9] then up to 63 of [A-Za-z0-9_.-], got ${describeValue(runId)}`,
      );
    const address = runAddress(runId);
    if (this.system.has(address)) throw new IdTakenError(`"run_id" expected a new id, ${runId} exists`);

    const json = canonicalJson(def);
    const hash = createHash('sha256').update(json).digest('hex');
    if (!this.compiled.has(hash)) this.compile(hash, def);
    // Committed with the actor's first snapshot: a run never exists without the definition it runs.
    this.system.commits.put(this.definitions, hash, json);
    const entry: RunIndexEntry = {
      hash,
      enclave_id: enclave.enclave_id,
      owner,
      coordinator,
      created_at: this.system.clock.now(),
      ...(tokens === undefined ? {} : { tokens }),
    };
    this.system.commits.put(this.index, runId, entry);
    await this.system.spawn(RUN_KIND_PREFIX + hash, address, {
      run_id: runId,
      objective: request.objective,
      owner,
      coordinator,
      enclave_id: enclave.enclave_id,
      assignments,
      ...(request.session_id === undefined ? {} : { session_id: request.session_id }),
      ...(Object.keys(artifacts).length === 0 ? {} : { artifacts }),
    });
    await this.system.accept([this.startEnvelope(runId, owner, enclave.enclave_id)]);
    return { run_id: runId, address, hash };
  }

  /**
   * The refs of the playbook's outside inputs (inputs no stage produces): those given in `artifacts`,
   * each resolved now as the owner, and for the rest the latest version of the vault key they name.
   * An input with neither is refused here rather than leaving its stage without it.
   */
  private async outsideInputs(
    def: PlaybookDefinition,
    given: unknown,
    enclaveId: string,
    owner: string,
  ): Promise<Record<string, ArtifactRef>> {
    const produced = new Set(def.stages.flatMap((s) => [s.id, s.output.key]));
    const outside = [...new Set(def.stages.flatMap((s) => s.inputs))].filter((i) => !produced.has(i));
    const refs = checkArtifacts(given, outside, enclaveId) ?? {};
    if (this.vault === undefined) return refs;
    for (const ref of Object.values(refs)) await this.vault.resolve(ref, owner);
    for (const [i, stage] of def.stages.entries()) {
      for (const [j, input] of stage.inputs.entries()) {
        if (refs[input] !== undefined || produced.has(input)) continue;
        const versions = await this.vault.history(enclaveId, input, owner).catch((err: Error) => {
          throw new TeamworkInputError(
            `stages[${i}].inputs[${j}] ${JSON.stringify(input)}: ${err.message}`,
            'an input no stage produces is a vault key of the run\'s Enclave, or a ref given in "artifacts"',
          );
        });
        const latest = versions.at(-1);
        if (latest === undefined)
          throw new TeamworkInputError(
            `stages[${i}].inputs[${j}] ${JSON.stringify(input)} expected an artifact in Enclave ${enclaveId}, got none`,
            `put it first (\`anx-runtime vault put ${enclaveId} ${input} FILE --as ${owner}\`), or give its ref in "artifacts"`,
          );
        refs[input] = toRef(latest);
      }
    }
    return refs;
  }

  /** The token the run's coordinator presents when it assigns work to `worker`, if it was given one. */
  assignToken(runId: string, worker: string): string | undefined {
    return this.entry(runId)?.tokens?.[worker];
  }

  /** `run.start` under an id derived from the run: sent again after a crash, it is a duplicate. */
  private startEnvelope(runId: string, owner: string, enclaveId: string) {
    return this.system.envelope({
      id: createHash('sha256').update(`run.start\u0000${runId}`).digest('base64url').slice(0, 32),
      type: 'run.start',
      from: owner,
      to: runAddress(runId),
      body: {},
      ctx: { run_id: runId, enclave_id: enclaveId },
    });
  }

  /**
   * Runs whose actor was committed but whose `run.start` was not (a crash between the two) are started
   * now; a `run.start` accepted before is recognised by its id and not sent twice.
   */
  async startPending(): Promise<number> {
    const pending = this.list().filter((r) => this.system.info(runAddress(r.run_id))?.value === 'pending');
    if (pending.length === 0) return 0;
    await this.system.accept(pending.map((r) => this.startEnvelope(r.run_id, r.owner, r.enclave_id)));
    return pending.length;
  }

  private checkAssignments(
    def: PlaybookDefinition,
    given: unknown,
    enclaveId: string,
  ): Record<string, string[]> {
    if (given === null || typeof given !== 'object' || Array.isArray(given))
      throw new TeamworkInputError('"assignments" expected an object of role → DID or [DID, ...]');
    const out: Record<string, string[]> = {};
    for (const [role, who] of Object.entries(given as Record<string, unknown>)) {
      const list = Array.isArray(who) ? who : [who];
      if (list.length === 0 || !list.every((d) => typeof d === 'string' && d.startsWith('did:')))
        throw new TeamworkInputError(
          `"assignments.${role}" expected a DID or a list of DIDs, got ${describeValue(who)}`,
        );
      for (const did of list as string[]) {
        try {
          this.enclaves.check(enclaveId, did, 'write');
        } catch (err) {
          throw new EnclaveForbiddenError(
            `"assignments.${role}": ${(err as Error).message}; a worker must be a member with write`,
          );
        }
      }
      out[role] = list as string[];
    }
    for (const [i, stage] of def.stages.entries()) {
      if (out[stage.role] === undefined)
        throw new TeamworkInputError(
          `"assignments.${stage.role}" expected a worker DID for stages[${i}] (${stage.id}), got nothing`,
        );
    }
    return out;
  }

  /** True when a run with this id exists on this host. */
  has(runId: string): boolean {
    return typeof runId === 'string' && RUN_ID.test(runId) && this.index.doesExist(runId);
  }

  /** Every run id, oldest first by creation. */
  list(): Array<{ run_id: string } & RunIndexEntry> {
    const out: Array<{ run_id: string } & RunIndexEntry> = [];
    for (const { key, value } of this.index.getRange({}))
      out.push({ run_id: key as string, ...(value as RunIndexEntry) });
    return out.sort((a, b) => a.created_at - b.created_at);
  }

  /** The run's committed index entry, if there is one. */
  private entry(runId: string): RunIndexEntry | undefined {
    const cached = this.entries.get(runId);
    if (cached !== undefined) {
      this.entries.delete(runId);
      this.entries.set(runId, cached);
      return cached;
    }
    const entry = this.index.get(runId) as RunIndexEntry | undefined;
    if (entry === undefined) return undefined;
    this.entries.set(runId, entry);
    if (this.entries.size > ENTRY_CACHE_MAX) this.entries.delete(this.entries.keys().next().value as string);
    return entry;
  }

  /** The run's context (activating it if passivated). */
  context(runId: string): { value: unknown; context: RunContext; hash: string } {
    // Not a run id (a huge string would not even fit an LMDB key): no such run.
    const entry = typeof runId === 'string' && RUN_ID.test(runId) ? this.entry(runId) : undefined;
    if (entry === undefined) throw new RunNotFoundError(String(runId));
    const snap = this.system.snapshot(runAddress(runId));
    return { value: snap.value, context: snap.context as RunContext, hash: entry.hash };
  }

  status(runId: string): RunStatus {
    const { value, context: c, hash } = this.context(runId);
    const def = this.definition(hash);
    const order = def?.stages.map((s) => s.id) ?? Object.keys(c.stages);
    return {
      run_id: c.run_id,
      state: runStateOf(value),
      value,
      playbook: { ...c.playbook, hash },
      objective: c.objective,
      owner: c.owner,
      coordinator: c.coordinator,
      enclave_id: c.enclave_id,
      current: c.current,
      stages: order.map((id) => c.stages[id]).filter((s): s is StageExecution => s !== undefined),
      takeover: c.takeover,
      end_reason: c.end_reason,
    };
  }

  /** True when `taskId` is a running task of `did` in the run's current stage. */
  isRunningTask(runId: string, taskId: string, did: string): boolean {
    if (!this.has(runId)) return false;
    let c: RunContext;
    try {
      const found = this.context(runId);
      // An ended run leaves its last stage marked running: its task is not open any more.
      const state = runStateOf(found.value);
      if (state === 'aborted' || state === 'failed' || state === 'completed') return false;
      c = found.context;
    } catch {
      return false;
    }
    const exec = c.current === null ? undefined : c.stages[c.current];
    if (exec?.status !== 'running') return false;
    if (exec.shards !== null)
      return exec.shards.some((s) => s.task_id === taskId && s.worker === did && s.status === 'running');
    return exec.task_id === taskId && exec.worker === did;
  }

  /**
   * Sends an Owner action (`run.pause`, `run.resume`, `run.abort`, `takeover.deliver`, `takeover.reassign`,
   * `takeover.skip`) as `as` (default: the owner) and resolves with the run's status once it has handled it.
   */
  async control(runId: string, type: string, body: Record<string, unknown>, as?: string): Promise<RunStatus> {
    const { context: c, value } = this.context(runId);
    const state = runStateOf(value);
    if (state === 'completed' || state === 'failed' || state === 'aborted')
      throw new ChangeRefusedError('ANX_RUN_REFUSED', `run ${runId} is ${state}: it takes no more ${type}`);
    const actor = as ?? c.owner;
    // Pausing and aborting only stop work: they stay allowed on a frozen host.
    if (type !== 'run.abort' && type !== 'run.pause') this.writeGuard?.(type, actor);
    if (!this.keystore.has(actor))
      throw new TeamworkInputError(`"as" expected a local identity, got ${describeValue(actor)}`);
    if (actor !== c.owner && actor !== c.coordinator)
      throw new EnclaveForbiddenError(
        `${actor} is not the owner of run ${runId}; only the owner may ${type}`,
      );
    const address = runAddress(runId);
    const env = this.system.envelope({
      type,
      from: actor,
      to: address,
      body,
      ctx: { run_id: runId, ...(c.enclave_id === null ? {} : { enclave_id: c.enclave_id }) },
    });
    // The status this action produces, not any status: a pause or resume sent just before (by a freeze
    // hold, say) reports after this watch starts, and taking its status would answer for the wrong action.
    const answer = CONTROL_ANSWERS[type];
    const watch = watchActorEvent(this.system, address, (e) => {
      const p = e.payload as { ignored?: unknown; id?: unknown; state?: unknown; by?: unknown } | null;
      if (e.kind === 'error') return p?.ignored === type || p?.id === env.id;
      if (e.kind !== 'status') return false;
      if (answer === undefined) return true;
      return p?.state === answer && (type !== 'takeover.deliver' || p?.by === 'owner');
    });
    try {
      await this.system.accept([env]);
    } catch (err) {
      watch.cancel();
      throw err;
    }
    const verdict = await watch.result;
    if (verdict === undefined)
      throw new ChangeRefusedError('ANX_RUN_TIMEOUT', `run ${runId} did not answer ${type} in time`);
    if (verdict.kind === 'error') {
      const state = this.status(runId).state;
      throw new ChangeRefusedError(
        'ANX_RUN_REFUSED',
        `run ${runId} refused ${type}: it is ${state}${c.takeover === null && type.startsWith('takeover.') ? ' and not waiting for a takeover' : ''}`,
      );
    }
    return this.status(runId);
  }
}

/** `tokens` of a run request: worker DID → token text, or undefined when absent. */
function checkAssignTokens(raw: unknown): Record<string, string> | undefined {
  if (raw === undefined || raw === null) return undefined;
  if (typeof raw !== 'object' || Array.isArray(raw))
    throw new TeamworkInputError('"tokens" expected an object of worker DID → capability token');
  const out: Record<string, string> = {};
  for (const [did, token] of Object.entries(raw as Record<string, unknown>)) {
    if (!did.startsWith('did:'))
      throw new TeamworkInputError(`"tokens" expected worker DIDs as keys, got ${describeValue(did)}`);
    if (typeof token !== 'string' || token.length === 0 || token.length > MAX_ASSIGN_TOKEN_CHARS)
      throw new TeamworkInputError(
        `"tokens.${did}" expected a capability token (a string of at most ${MAX_ASSIGN_TOKEN_CHARS} characters)`,
        "the worker's Owner issues it: `anx-runtime token issue --from OWNER --to COORDINATOR --resource worker:WORKER_DID --action stage.assign`",
      );
    out[did] = token;
  }
  return Object.keys(out).length === 0 ? undefined : out;
}
