// Waits for the event an actor emits when it handles a given envelope: how a request learns its outcome.
import type { EventV1 } from '../runtime/events/event.ts';
import type { ActorSystem } from '../runtime/kernel/actor-system.ts';

/**
 * Resolves with the first committed event of `actor` that `match` accepts, or undefined after `timeoutMs`.
 * Subscribe before sending, so an event committed right away is not missed.
 */
export function watchActorEvent(
  system: ActorSystem,
  actor: string,
  match: (event: EventV1) => boolean,
  timeoutMs = 10_000,
): { result: Promise<EventV1 | undefined>; cancel: () => void } {
  let unsubscribe: () => void = () => {};
  let timer: ReturnType<typeof setTimeout> | undefined;
  const result = new Promise<EventV1 | undefined>((resolve) => {
    unsubscribe = system.events.subscribe((events) => {
      for (const e of events) {
        if (e.actor === actor && match(e)) {
          clearTimeout(timer);
          unsubscribe();
          resolve(e);
          return;
        }
      }
    });
    timer = setTimeout(() => {
      unsubscribe();
      resolve(undefined);
    }, timeoutMs);
  });
  return {
    result,
    cancel: () => {
      clearTimeout(timer);
      unsubscribe();
    },
  };
}
