// Small machines used by the kernel tests: a counter that forwards, one with a delayed step, one that throws.
import { assign, emit, enqueueActions, setup } from 'xstate';
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

interface PingBody {
  seq: number;
  /** Pings still to send back and forth. */
  left?: number;
  /** Where the next ping goes; with `burst`, how many pings go there at once. */
  peer?: string;
  burst?: number;
}

/**
 * Records every `ping` (its `seq`) in its `pings` collection. With `left` > 0 it sends the next ping to
 * `peer`, naming itself as the peer; with `burst` it sends that many pings (seq counting up from its
 * own) to `peer`.
 */
export const pingMachine = setup({
  types: {
    context: {} as { address: string; count: number },
    input: {} as { address: string },
    events: {} as Ev,
    emitted: {} as
      | { type: 'anx.append'; collection: string; value: unknown }
      | { type: 'anx.send'; to: string; msgType: string; body: unknown },
  },
}).createMachine({
  id: 'ping',
  context: ({ input }) => ({ address: input.address, count: 0 }),
  on: {
    ping: {
      actions: [
        assign({ count: ({ context }) => context.count + 1 }),
        emit(({ event }) => ({
          type: 'anx.append',
          collection: 'pings',
          value: (event.body as PingBody).seq,
        })),
        enqueueActions(({ context, event, enqueue }) => {
          const body = event.body as PingBody;
          if (body.peer === undefined) return;
          if (body.burst !== undefined) {
            for (let i = 0; i < body.burst; i++)
              enqueue.emit({
                type: 'anx.send',
                to: body.peer,
                msgType: 'ping',
                body: { seq: body.seq + 1 + i },
              });
          } else if ((body.left ?? 0) > 0) {
            enqueue.emit({
              type: 'anx.send',
              to: body.peer,
              msgType: 'ping',
              body: { seq: body.seq + 1, left: (body.left ?? 0) - 1, peer: context.address },
            });
          }
        }),
      ],
    },
  },
});

export const pingActor: MachineDefinition = {
  kind: 'ping',
  version: 1,
  machine: pingMachine,
  input: (address) => ({ address }),
};

/**
 * Keeps a count per key in `items` (an `entryFields` field): `add` replaces the key's entry with a new
 * one, `drop` leaves it out; other keys keep their entry objects.
 */
export const ledgerMachine = setup({
  types: {
    context: {} as { items: Record<string, { n: number }>; changes: number },
    events: {} as Ev,
  },
}).createMachine({
  id: 'ledger',
  context: { items: {}, changes: 0 },
  on: {
    add: {
      actions: assign(({ context, event }) => {
        const key = (event.body as { key: string }).key;
        return {
          items: { ...context.items, [key]: { n: (context.items[key]?.n ?? 0) + 1 } },
          changes: context.changes + 1,
        };
      }),
    },
    drop: {
      actions: assign(({ context, event }) => {
        const { [(event.body as { key: string }).key]: _dropped, ...items } = context.items;
        return { items, changes: context.changes + 1 };
      }),
    },
  },
});

export const ledgerActor: MachineDefinition = {
  kind: 'ledger',
  version: 1,
  machine: ledgerMachine,
  entryFields: ['items'],
};

/**
 * Emits its effects as one `anx.effects` event: a record, an event and a forward per `tick`, then a
 * nested `anx.effects` (which the kernel does not apply) and something that is no effect at all.
 */
export const bundledMachine = setup({
  types: { context: {} as { count: number }, events: {} as Ev },
}).createMachine({
  id: 'bundled',
  context: { count: 0 },
  on: {
    tick: {
      actions: [
        assign({ count: ({ context }) => context.count + 1 }),
        emit(({ event }) => {
          const next = (event.body as { next?: string } | undefined)?.next;
          return {
            type: 'anx.effects',
            effects: [
              { type: 'anx.append', collection: 'seen', value: `${event.id}/1` },
              { type: 'anx.event', kind: 'message', payload: { id: event.id } },
              { type: 'anx.append', collection: 'seen', value: `${event.id}/2` },
              ...(next === undefined ? [] : [{ type: 'anx.send', to: next, msgType: 'tick', body: {} }]),
              {
                type: 'anx.effects',
                effects: [{ type: 'anx.append', collection: 'seen', value: 'nested' }],
              },
              { type: 'noop' },
            ],
          };
        }),
      ],
    },
  },
});

export const bundledActor = (): MachineDefinition => ({
  kind: 'bundled',
  version: 1,
  machine: bundledMachine,
});
