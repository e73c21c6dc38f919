// Teamwork on one host: Enclaves, the checked vault, playbook runs, workers and manifests, built over one actor system.
import { defaultSuite } from '../runtime/crypto/index.ts';
import type { Keystore } from '../runtime/identity/keystore.ts';
import type { ActorSystem } from '../runtime/kernel/actor-system.ts';
import type { ArtifactRef } from '../runtime/vault/types.ts';
import { CollabRelay } from './collab.ts';
import { DID_KIND } from './did.ts';
import { DISCUSSION_KIND, Discussions, discussionActor, discussionAddress } from './discussions.ts';
import { enclaveActor } from './enclave.ts';
import { Enclaves } from './enclaves.ts';
import { TeamworkInputError } from './errors.ts';
import { InboxTap } from './inbox-tap.ts';
import { Manifests } from './manifest.ts';
import { PlaybookRuns, type StartRunRequest } from './playbook-run.ts';
import { WorkerHome, WorkerLink } from './remote-worker.ts';
import { Secretaries } from './secretary.ts';
import { TASK_KIND, Tasks, taskActor, taskAddress } from './tasks.ts';
import { VaultService } from './vault-service.ts';
import { type Worker, WorkerRuntime } from './worker-runtime.ts';

/**
 * Build it before `system.start()`: it registers the Enclave machine and the resolver of compiled
 * playbooks, so every run and Enclave restored from disk finds its machine.
 *
 * @example
 * ```ts
 * const teamwork = new Teamwork(system, keystore, dataDir);
 * await system.start();
 * teamwork.worker(devDid).onStage('developer', async (ctx) => {
 *   await ctx.deliver({ value: 'diff --git …', summary: 'login form' });
 * });
 * const { run_id } = await teamwork.startRun({ playbook: 'dev-team', objective, owner, enclave, assignments });
 * ```
 */
export class Teamwork {
  readonly tap: InboxTap;
  readonly enclaves: Enclaves;
  readonly vault: VaultService;
  readonly runs: PlaybookRuns;
  readonly workers: WorkerRuntime;
  /** Runs of this host with workers on other hosts: their assignments out, their reads and answers in. */
  readonly workerHome: WorkerHome;
  readonly manifests: Manifests;
  /** The Action Layer and Discussions, and the relay of their notices and requests. */
  readonly collab: CollabRelay;
  readonly tasks: Tasks;
  readonly discussions: Discussions;
  /** Owners, bindings, actor authorization, Secretaries and their dispatches. */
  readonly secretaries: Secretaries;

  constructor(
    readonly system: ActorSystem,
    readonly keystore: Keystore,
    dataDir: string,
  ) {
    system.register(enclaveActor);
    this.tap = new InboxTap(system);
    this.enclaves = new Enclaves(system, keystore);
    this.vault = new VaultService(system, keystore, this.enclaves, dataDir);
    this.runs = new PlaybookRuns(system, keystore, this.enclaves);
    this.runs.vault = this.vault;
    this.workers = new WorkerRuntime(system, keystore, this.tap, this.runs, this.vault);
    this.manifests = new Manifests(system, keystore, this.tap, this.vault, this.runs);
    const suite = defaultSuite();
    this.workers.link = new WorkerLink(system, keystore, this.tap);
    this.workerHome = new WorkerHome(
      system,
      keystore,
      this.tap,
      this.runs,
      this.enclaves,
      this.workers,
      suite,
    );
    // Mail of runs to workers of other hosts leaves as the run's coordinator (set before the outbox replay).
    if (system.router !== undefined) system.router = this.workerHome.router(system.router);
    system.register(taskActor(suite));
    system.register(discussionActor(suite));
    this.collab = new CollabRelay(system, keystore, this.tap, (type, id) => {
      const [address, kind] = type.startsWith('task.')
        ? [taskAddress(id), TASK_KIND]
        : [discussionAddress(id), DISCUSSION_KIND];
      return system.info(address)?.kind === kind ? address : undefined;
    });
    this.tasks = new Tasks(system, keystore, this.enclaves, this.collab, suite, this.vault);
    this.discussions = new Discussions(system, keystore, this.enclaves, this.vault, this.collab, suite);
    this.secretaries = new Secretaries(system, keystore, {
      enclaves: this.enclaves,
      runs: this.runs,
      manifests: this.manifests,
      tap: this.tap,
      createIdentity: async (name) => {
        const record = await keystore.create({ name });
        await system.spawn(DID_KIND, record.did, { name });
        return record;
      },
    });
    // Runs finished before a crash but not yet signed are signed now (the tap replays the inbox).
    for (const run of this.runs.list()) {
      if (!this.manifests.has(run.run_id)) this.manifests.watch(run.coordinator);
    }
    // After the host's start has replayed its outbox (start runs synchronously once called).
    setImmediate(() => {
      void this.runs.startPending().catch(() => {});
    });
  }

  /** Starts a run of a playbook (a definition or a template name) in an Enclave. */
  async startRun(request: StartRunRequest) {
    const started = await this.runs.start(request);
    this.manifests.watch(request.coordinator ?? request.owner);
    return started;
  }

  /**
   * As the Owner, settles a run waiting in takeover with an artifact: `content` is stored now (as the
   * Owner) under `key` (default: the stage's output key), or else an existing version of `key` is used.
   */
  async takeoverDeliver(
    runId: string,
    options: {
      key?: string;
      version?: number;
      content?: string | Uint8Array;
      kind?: string;
      summary?: string;
    },
    as?: string,
  ) {
    const status = this.runs.status(runId);
    const actor = as ?? status.owner;
    if (status.enclave_id === null) throw new TeamworkInputError(`run ${runId} has no enclave`);
    const stage = status.takeover?.stage ?? status.current ?? '';
    const key =
      options.key ??
      this.runs.definition(status.playbook.hash)?.stages.find((s) => s.id === stage)?.output.key;
    if (key === undefined) throw new TeamworkInputError('"key" expected the vault key to deliver');
    let ref: ArtifactRef;
    if (options.content !== undefined) {
      ref = await this.vault.put(
        status.enclave_id,
        key,
        {
          kind: options.kind ?? 'text',
          content: options.content,
          summary: options.summary ?? 'delivered by the owner',
        },
        actor,
        { run_id: runId, step: stage },
      );
    } else {
      const {
        enclave_id,
        key: k,
        version,
        hash,
        size,
        summary,
      } = (await this.vault.get(status.enclave_id, key, actor, options.version)).meta;
      ref = { enclave_id, key: k, version, hash, size, summary };
    }
    return this.runs.control(
      runId,
      'takeover.deliver',
      { ref, ...(options.summary === undefined ? {} : { summary: options.summary }) },
      actor,
    );
  }

  /** The worker handle of a local identity: `teamwork.worker(did).onStage(role, handler)`. */
  worker(did: string): Worker {
    return this.workers.worker(did);
  }

  async close(): Promise<void> {
    this.secretaries.close();
    this.workers.close();
    this.workerHome.close();
    this.discussions.dispose();
    this.collab.close();
    this.tap.close();
    await this.vault.close();
  }
}
