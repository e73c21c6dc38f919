// Teamwork on one host: Enclaves, the checked vault, playbook runs, workers and manifests, built over one actor system.
import type { Keystore } from '../runtime/identity/keystore.ts';
import type { ActorSystem } from '../runtime/kernel/actor-system.ts';
import { enclaveActor } from './enclave.ts';
import { Enclaves } from './enclaves.ts';
import { InboxTap } from './inbox-tap.ts';
import { Manifests } from './manifest.ts';
import { PlaybookRuns, type StartRunRequest } from './playbook-run.ts';
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
  readonly manifests: Manifests;

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
    this.workers = new WorkerRuntime(system, keystore, this.tap, this.runs, this.vault);
    this.manifests = new Manifests(system, keystore, this.tap, this.vault, this.runs);
    // Runs finished before a crash but not yet signed are signed now (the tap replays the inbox).
    for (const run of this.runs.list()) {
      if (!this.manifests.has(run.run_id)) this.manifests.watch(run.coordinator);
    }
  }

  /** Starts a run of a playbook (a definition or a template name) in an Enclave. */
  async startRun(request: StartRunRequest) {
    const started = await this.runs.start(request);
    this.manifests.watch(request.coordinator ?? request.owner);
    return started;
  }

  /** The worker handle of a local identity: `teamwork.worker(did).onStage(role, handler)`. */
  worker(did: string): Worker {
    return this.workers.worker(did);
  }

  async close(): Promise<void> {
    this.workers.close();
    this.tap.close();
    await this.vault.close();
  }
}
