// Actor systems a kernel test opens: each is stopped and its store closed after the test, temp dirs removed.
import { afterEach } from 'vitest';
import {
  ActorSystem,
  type ActorSystemOptions,
  type MachineDefinition,
} from '../../runtime/kernel/actor-system.ts';
import { openStore, type Store } from '../../runtime/store/store.ts';
import { cleanupTempDirs, tempDir } from '../helpers/tmp.ts';

const open: Array<{ sys: ActorSystem; store: Store }> = [];

afterEach(async () => {
  for (const entry of open.splice(0)) await closeSystem(entry);
  cleanupTempDirs();
});

/** A started system on a fresh store (in `dir`, default a new temp dir) with `defs` registered. */
export async function openSystem(
  defs: MachineDefinition[],
  options: Omit<ActorSystemOptions, 'store'> & { dir?: string } = {},
): Promise<{ sys: ActorSystem; store: Store }> {
  const { dir, ...rest } = options;
  const store = openStore(dir ?? tempDir());
  const sys = new ActorSystem({ store, ...rest });
  for (const def of defs) sys.register(def);
  await sys.start();
  const entry = { sys, store };
  open.push(entry);
  return entry;
}

/** Stops a system before the test ends (a restart): it is not closed again afterwards. */
export async function closeSystem(entry: { sys: ActorSystem; store: Store }): Promise<void> {
  const i = open.indexOf(entry);
  if (i >= 0) open.splice(i, 1);
  await entry.sys.stop();
  await entry.store.close();
}
