// Small machines used by the kernel tests: a counter that forwards, one with a delayed step, one that throws.
import { assign, emit, setup } from 'xstate';
import type { MachineDefinition } from '../../runtime/kernel/actor-system.ts';

interface Ev {
  type: string;
  id: string;
  from: string;
  body?: unknown;
}

/** Counts `tick` messages; forwards each to `body.next` when given; emits one event per tick. */
export const counterMachine = setup({
  types: { context: {} as { count: number; ids: number }, events: {} as Ev },
}).createMachine({
  id: 'counter',
  context: { count: 0, ids: 0 },
  on: {
    tick: {
      actions: [
        assign({ count: ({ context }) => context.count + 1 }),
        emit(({ event }) => ({ type: 'anx.event', kind: 'message', payload: { id: event.id } })),
        emit(({ event }) => ({ type: 'anx.append', collection: 'seen', value: event.id })),
        emit(({ event }) => {
          const next = (event.body as { next?: string } | undefined)?.next;
          return next === undefined
            ? { type: 'noop' }
            : { type: 'anx.send', to: next, msgType: 'tick', body: {} };
        }),
      ],
    },
    boom: {
      actions: () => {
        throw new Error('boom');
      },
    },
  },
});

export const counterActor = (version = 1): MachineDefinition => ({
  kind: 'counter',
  version,
  machine: counterMachine,
});

/** Waits `delayMs` in `waiting` then moves to `fired` and emits an event. */
export const delayMachine = setup({
  types: {
    context: {} as { delayMs: number },
    input: {} as { delayMs: number },
    events: {} as Ev,
    emitted: {} as { type: 'anx.event'; kind: 'status'; payload: unknown },
  },
  delays: { wait: ({ context }) => context.delayMs },
}).createMachine({
  id: 'delay',
  context: ({ input }) => ({ delayMs: input.delayMs }),
  initial: 'idle',
  states: {
    idle: { on: { go: 'waiting' } },
    waiting: {
      after: { wait: 'fired' },
      on: { cancel: 'idle' },
    },
    fired: {
      entry: emit({ type: 'anx.event', kind: 'status', payload: { status: 'fired' } }),
    },
  },
});

export const delayActor: MachineDefinition = {
  kind: 'delay',
  version: 1,
  machine: delayMachine,
  input: (_address, init) => ({ delayMs: (init as { delayMs: number }).delayMs }),
};
