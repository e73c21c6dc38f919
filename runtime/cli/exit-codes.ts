// The CLI's documented exit codes (docs/cli.md), derived from an error's stable code.
import type { AnxError } from '../errors.ts';

export const EXIT = {
  ok: 0,
  internal: 1,
  usage: 2,
  noDaemon: 3,
  notFound: 4,
  refused: 5,
  /** `audit verify` found altered, missing or reordered records. */
  tampered: 6,
  /** `run wait`: the run ended without completing (failed, aborted) or waits in takeover for its Owner. */
  notCompleted: 7,
  /** `run wait --timeout`: the time ran out with the run still going. */
  waitTimeout: 8,
} as const;

export function exitCodeOf(err: AnxError): number {
  const code = err.code;
  if (
    code === 'ANX_DAEMON_NOT_RUNNING' ||
    code === 'ANX_DAEMON_CONNECTION_LOST' ||
    code === 'ANX_DAEMON_TIMEOUT'
  )
    return EXIT.noDaemon;
  // Authority refusals, including a token that does not verify (`ANX_TOKEN_INVALID`).
  if (
    code.startsWith('ANX_TOKEN_') ||
    code === 'ANX_FROZEN' ||
    code === 'ANX_RATE_LIMITED' ||
    code === 'ANX_REVOCATION_UNAVAILABLE' ||
    code === 'ANX_REVOCATION_STALE'
  )
    return EXIT.refused;
  if (code === 'ANX_ACTOR_UNKNOWN' || code.endsWith('_NOT_FOUND')) return EXIT.notFound;
  if (code === 'ANX_RUN_WAIT_TIMEOUT') return EXIT.waitTimeout;
  if (
    code === 'ANX_DAEMON_RUNNING' ||
    code === 'ANX_NOT_LOCAL_IDENTITY' ||
    code === 'ANX_UNAUTHORIZED' ||
    code === 'ANX_PORT_IN_USE' ||
    // A data directory written by a newer runtime, or whose format marker cannot be read.
    code === 'ANX_STORE_FORMAT' ||
    code === 'ANX_RUN_REFUSED' ||
    // A relay command on a host that joined no relay.
    code === 'ANX_RELAY_UNAVAILABLE' ||
    // The hub turned this host's leaf down (credentials, TLS).
    code === 'ANX_RELAY_REFUSED' ||
    code === 'ANX_TASK_NOT_RUNNING' ||
    code === 'ANX_VAULT_REF_MISMATCH' ||
    code.startsWith('ANX_FORBIDDEN') ||
    code.startsWith('ANX_DISPATCH_') ||
    // A request that lost a race (a task claimed by someone else) or was already applied.
    code.endsWith('_CONFLICT') ||
    code.endsWith('_REPLAYED')
  ) {
    return EXIT.refused;
  }
  if (
    code.endsWith('_INVALID') ||
    code.startsWith('ANX_ARGUMENT') ||
    code.startsWith('ANX_REQUEST') ||
    code === 'ANX_VAULT_INPUT' ||
    code === 'ANX_PLAYBOOK_PARSE'
  )
    return EXIT.usage;
  return EXIT.internal;
}
