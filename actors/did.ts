// The DID actor: the DID statechart bound to the kernel under the DID itself as its address.
import { DID_MACHINE_VERSION, didMachine } from '../machines/did.ts';
import type { MachineDefinition } from '../runtime/kernel/actor-system.ts';

export const DID_KIND = 'did';

/** Registers with `system.register(didActor)`; spawn with `system.spawn('did', did, { name })`. */
export const didActor: MachineDefinition = {
  kind: DID_KIND,
  version: DID_MACHINE_VERSION,
  machine: didMachine,
  input: (address, init) => {
    const options = (init ?? {}) as { name?: string; presenceTtlMs?: number };
    return {
      did: address,
      ...(options.name === undefined ? {} : { name: options.name }),
      ...(options.presenceTtlMs === undefined ? {} : { presenceTtlMs: options.presenceTtlMs }),
    };
  },
};
