// Typed errors of the actor system: unknown actors and machines, refused snapshots, failed actors.
import { AnxError, describeValue } from '../errors.ts';

/** A message or request named an address that no actor on this host holds. */
export class UnknownActorError extends AnxError {
  constructor(address: string) {
    super('ANX_ACTOR_UNKNOWN', `no actor at address ${describeValue(address)} on this host`, {
      hint: 'check the address, or create the actor first (e.g. `anx-runtime id new`)',
    });
  }
}

/** An actor with this address exists already. */
export class ActorExistsError extends AnxError {
  constructor(address: string) {
    super('ANX_ACTOR_EXISTS', `an actor at address "${address}" exists already`);
  }
}

/** A persisted snapshot names a machine kind this host does not have. */
export class UnknownMachineError extends AnxError {
  constructor(kind: string, address: string) {
    super(
      'ANX_MACHINE_UNKNOWN',
      `actor "${address}" was persisted by machine kind "${kind}", which this host does not know`,
      {
        hint: 'run the anx-runtime version that created this data directory',
      },
    );
  }
}

/** A persisted snapshot was written by another version of its machine: refused, never guessed. */
export class MachineVersionError extends AnxError {
  constructor(kind: string, address: string, persisted: number, known: number) {
    super(
      'ANX_MACHINE_VERSION',
      `actor "${address}" was persisted by ${kind} machine version ${persisted}, this host runs version ${known}`,
      {
        hint: 'upgrade (or downgrade) anx-runtime to a version that can migrate this snapshot; its mail is kept',
      },
    );
  }
}

/** The actor threw while handling a message and was stopped with an error status. */
export class ActorFailedError extends AnxError {
  constructor(address: string, cause: unknown) {
    super('ANX_ACTOR_FAILED', `actor "${address}" failed: ${(cause as Error)?.message ?? String(cause)}`, {
      cause,
    });
  }
}

/** The message expired (its `exp` passed) before it could be handled. */
export class MessageExpiredError extends AnxError {
  constructor(id: string, exp: number) {
    super('ANX_MESSAGE_EXPIRED', `message ${id} expired at ${new Date(exp).toISOString()} before delivery`);
  }
}

/** The system is stopping or stopped and takes no more work. */
export class SystemStoppedError extends AnxError {
  constructor() {
    super('ANX_SYSTEM_STOPPED', 'the actor system is stopped', { hint: 'start the host again' });
  }
}

/**
 * A group commit failed (disk full, an I/O error, a value the store could not encode). Nothing of that
 * commit was written, while the actors' state in memory had moved past it: the system takes no more
 * work, and the host must be restarted to carry on from what is on disk.
 */
export class CommitFailedError extends AnxError {
  constructor(cause: unknown) {
    super(
      'ANX_COMMIT_FAILED',
      `a group commit failed, so the host takes no more work: ${(cause as Error)?.message ?? String(cause)}`,
      {
        cause,
        hint: 'restart the host: everything committed before is kept, and the work of the failed commit is replayed or redone; check free disk space if it happens again',
      },
    );
  }
}
