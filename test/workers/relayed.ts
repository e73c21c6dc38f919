// What the tests of workers on another host than their run share: presence across the relay, Enclaves on the run's host, a kill -9 and restart.
import { type DaemonProcess, killHard, startDaemonProcess, waitFor } from '../helpers/daemon.ts';
import type { startRelayedDaemons } from '../helpers/nats.ts';

type Relayed = Awaited<ReturnType<typeof startRelayedDaemons>>;

/** Whether a daemon's relay shows `did` online. */
export const online = async (api: DaemonProcess['api'], did: string): Promise<boolean> =>
  (await api.get<{ online: boolean }>(`/v1/presence/${encodeURIComponent(did)}`)).online;

/** Waits until `home` sees `worker` (a DID of the other host) online and `away` sees `owner`. */
export function seeEachOther(home: DaemonProcess, worker: string, away: DaemonProcess, owner: string) {
  return waitFor(
    async () => (await online(home.api, worker)) && (await online(away.api, owner)),
    30_000,
    'both hosts see each other',
  );
}

/** Creates the Enclave `id` on `host`, owned by `owner`, with `members` as read/write members. */
export async function createEnclave(
  host: DaemonProcess,
  id: string,
  owner: string,
  members: string[],
): Promise<void> {
  await host.api.post('/v1/enclaves', { id, owner });
  for (const did of members)
    await host.api.post(`/v1/enclaves/${id}/members`, {
      as: owner,
      did,
      role: 'worker',
      permissions: ['read', 'write'],
    });
}

/** The code of a typed error (or its message). */
export function codeOf(err: unknown): string {
  return String((err as { code?: unknown })?.code ?? (err as Error)?.message);
}

/** The NATS URL (its leaf) a daemon was started with. */
export function natsOf(daemon: DaemonProcess): string {
  const args = daemon.child.spawnargs;
  return args[args.indexOf('--nats') + 1] as string;
}

/** `kill -9` of daemon `which`, then the same daemon started again on its data directory and leaf. */
export async function restartHard(
  relayed: Relayed,
  which: 0 | 1,
  env: Record<string, string>,
): Promise<DaemonProcess> {
  const daemon = relayed.daemons[which];
  const nats = natsOf(daemon);
  await killHard(daemon);
  const again = await startDaemonProcess(relayed.dirs[which], 60_000, { args: ['--nats', nats], env });
  relayed.daemons[which] = again;
  return again;
}
