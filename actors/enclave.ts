// The Enclave actor: the Enclave statechart bound to the kernel at `enclave/<id>`.
import { ENCLAVE_MACHINE_VERSION, type EnclaveInput, enclaveMachine } from '../machines/enclave.ts';
import type { MachineDefinition } from '../runtime/kernel/actor-system.ts';

export const ENCLAVE_KIND = 'enclave';

/** The actor address of an Enclave. */
export function enclaveAddress(enclaveId: string): string {
  return `enclave/${enclaveId}`;
}

/** Registers with `system.register(enclaveActor)`; spawn with `system.spawn('enclave', enclaveAddress(id), input)`. */
export const enclaveActor: MachineDefinition = {
  kind: ENCLAVE_KIND,
  version: ENCLAVE_MACHINE_VERSION,
  machine: enclaveMachine,
  input: (_address, init) => init as EnclaveInput,
};
