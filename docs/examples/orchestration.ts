// Orchestration flow, the Owner's side: register an Owner and its Secretary, bind a developer, dispatch, follow, abort.
import { type AnxClient, connect, type Dispatch } from 'agentnexus-runtime/sdk';

/** What the flow saw, step by step. */
export interface OrchestrationResult {
  owner: string;
  secretary: string;
  developer: string;
  /** The first dispatch, after the developer delivered. */
  delivered: Dispatch;
  /** A second dispatch, aborted by the Owner while the developer was still on it. */
  aborted: Dispatch;
}

/** Polls the dispatch until `done(state)` or the deadline passes (then returns what it is). */
async function follow(admin: AnxClient, sessionId: string, actor: string, done: (state: string) => boolean) {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const status = await admin.secretary.status(sessionId, { actor_did: actor });
    if (done(status.state) || Date.now() > deadline) return status;
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * Runs the flow against the daemon of `dataDir`. `startDeveloper(did)` must start the developer's
 * stage handler (in this example: another process running `orchestration-worker.ts DATA_DIR DID`).
 */
export async function orchestrate(
  dataDir: string,
  startDeveloper: (did: string) => Promise<void>,
): Promise<OrchestrationResult> {
  const admin = await connect('Team Admin', { dataDir });
  const developer = await connect('Developer', { dataDir });
  try {
    const owner = await admin.owner.register('Kevin');
    const secretary = await admin.secretary.register(owner.did, { name: 'Team Secretary' });
    await admin.owner.bind(owner.did, developer.did, { role: 'developer' });
    await startDeveloper(developer.did);

    const first = await admin.secretary.dispatch({
      session_id: 'sess_login_001',
      owner_did: owner.did,
      actor_did: secretary.did,
      objective: 'Implement and review the login module',
      required_roles: ['developer'],
      source: { channel: 'sdk', message_ref: 'msg_001' },
    });
    console.log(first.run_id, first.enclave_id);
    const delivered = await follow(
      admin,
      first.session_id,
      secretary.did,
      (s) => s === 'done' || s === 'failed',
    );

    const second = await admin.secretary.dispatch({
      session_id: 'sess_login_002',
      owner_did: owner.did,
      actor_did: secretary.did,
      objective: 'Rework the login module (hold: requirements may change)',
      required_roles: ['developer'],
      source: { channel: 'sdk', message_ref: 'msg_002' },
    });
    await follow(admin, second.session_id, secretary.did, (s) => s === 'waiting');
    const aborted = await admin.secretary.abort({
      session_id: 'sess_login_002',
      actor_did: owner.did,
      reason: 'requirements changed: stop this run',
    });
    return { owner: owner.did, secretary: secretary.did, developer: developer.did, delivered, aborted };
  } finally {
    await admin.close();
    await developer.close();
  }
}
