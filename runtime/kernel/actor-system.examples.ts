// Type-checked usage of the actor system: a durable counter actor, a message, its trace. Run by test/kernel/examples.test.ts.
import { assign, emit, setup } from 'xstate';
import { openStore } from '../store/store.ts';
import { ActorSystem, type MachineDefinition } from './actor-system.ts';

/**
 * A machine is pure: it receives envelopes as events and causes effects only by `emit()` of
 * `anx.send`, `anx.event` or `anx.append` (see `effects.ts`).
 */
export const counter: MachineDefinition = {
  kind: 'counter',
  version: 1,
  machine: setup({
    types: {
      context: {} as { count: number },
      events: {} as { type: 'add'; body: { by: number } },
      emitted: {} as { type: 'anx.event'; kind: 'status'; payload: { count: number } },
    },
  }).createMachine({
    context: { count: 0 },
    on: {
      add: {
        actions: [
          assign({ count: ({ context, event }) => context.count + event.body.by }),
          emit(({ context }) => ({
            type: 'anx.event' as const,
            kind: 'status' as const,
            payload: { count: context.count },
          })),
        ],
      },
    },
  }),
};

/**
 * Opens a host's store in `dataDir`, creates a durable counter, sends it a message and returns what
 * the trace shows. Run it twice on the same directory: the second run continues from the first.
 *
 * @example
 * ```ts
 * const { count, events } = await countOnce('/tmp/anx-example');
 * ```
 */
export async function countOnce(dataDir: string): Promise<{ count: number; events: number }> {
  const store = openStore(dataDir);
  const system = new ActorSystem({ store });
  system.register(counter);
  await system.start(); // replays whatever a crash left in the outbox
  if (!system.has('counter/main')) await system.spawn('counter', 'counter/main');
  // Committed to the outbox before `accept` resolves; handled exactly once, even across a crash.
  await system.accept([system.envelope({ type: 'add', from: 'host', to: 'counter/main', body: { by: 2 } })]);
  await system.quiesce();
  const { context } = system.snapshot('counter/main');
  const events = system.events.trace('counter/main').length;
  await system.stop();
  await store.close();
  return { count: (context as { count: number }).count, events };
}
