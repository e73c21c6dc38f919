// Typed errors of teamwork: Enclaves, vault permissions, runs and workers.
import { AnxError, describeValue } from '../runtime/errors.ts';

/** A request about an Enclave, run or worker that names something malformed. */
export class TeamworkInputError extends AnxError {
  constructor(message: string, hint?: string) {
    super('ANX_TEAMWORK_INVALID', message, hint === undefined ? undefined : { hint });
  }
}

/** No Enclave with this id on this host. */
export class EnclaveNotFoundError extends AnxError {
  constructor(enclaveId: string) {
    super('ANX_ENCLAVE_NOT_FOUND', `no enclave ${describeValue(enclaveId)} on this host`, {
      hint: 'create it with `anx-runtime enclave create --owner DID`',
    });
  }
}

/** The acting DID may not do this in the Enclave (not a member, or lacking the permission). */
export class EnclaveForbiddenError extends AnxError {
  constructor(message: string) {
    super('ANX_FORBIDDEN_ENCLAVE', message, {
      hint: 'an admin of the enclave can grant it: `anx-runtime enclave member ENCLAVE DID --role R --permissions read,write`',
    });
  }
}

/** An artifact's author is not the acting local identity. */
export class ForgedAuthorError extends AnxError {
  constructor(author: string, acting: string) {
    super(
      'ANX_FORBIDDEN_AUTHOR',
      `"author" expected the acting identity ${acting}, got ${describeValue(author)}: artifacts are written only as the DID that acts`,
      { hint: 'write as the DID itself (--as DID); nobody can author an artifact for another DID' },
    );
  }
}

/** No run with this id on this host. */
export class RunNotFoundError extends AnxError {
  constructor(runId: string) {
    super('ANX_RUN_NOT_FOUND', `no run ${describeValue(runId)} on this host`, {
      hint: 'list runs with `anx-runtime run list`',
    });
  }
}

/** The run has no Delivery Manifest (yet). */
export class ManifestNotFoundError extends AnxError {
  constructor(runId: string, state: string) {
    super('ANX_MANIFEST_NOT_FOUND', `run ${describeValue(runId)} has no delivery manifest: it is ${state}`, {
      hint: 'a manifest is written when the run completes; follow it with `anx-runtime run status RUN`',
    });
  }
}

/** A task a worker answers for is not a running task of that worker (finished, stale or someone else's). */
export class TaskNotRunningError extends AnxError {
  constructor(taskId: string, did: string) {
    super('ANX_TASK_NOT_RUNNING', `task ${JSON.stringify(taskId)} is not running for ${did}`, {
      hint: 'list what the worker has to do with `GET /v1/workers/DID/tasks`',
    });
  }
}

/** The change was sent but the actor refused it or did not apply it in time. */
export class ChangeRefusedError extends AnxError {
  constructor(code: string, message: string) {
    super(code, message);
  }
}
