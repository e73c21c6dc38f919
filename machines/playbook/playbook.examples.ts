// Type-checked usage examples of the playbook API, as the TSDoc examples show it (compiled, never run by the runtime).
import { createActor } from 'xstate';
import {
  armedTimers,
  buildContextSnapshot,
  compilePlaybook,
  loadPlaybook,
  PlaybookValidationError,
  type RunEffect,
} from './index.ts';

/** Loads a YAML playbook, reporting every issue with its path. */
export function exampleLoad(text: string): string[] {
  try {
    loadPlaybook(text);
    return [];
  } catch (err) {
    if (err instanceof PlaybookValidationError)
      return err.issues.map((i) => `${i.path}: expected ${i.expected}, got ${i.got}`);
    throw err;
  }
}

/** Runs a playbook the way the kernel hosts it: effects out through `perform`, envelopes in through `send`. */
export function exampleRun(text: string, owner: string, perform: (effect: RunEffect) => void) {
  const def = loadPlaybook(text);
  const machine = compilePlaybook(def);
  const actor = createActor(machine, {
    input: {
      run_id: 'run-1',
      objective: 'login page',
      owner,
      assignments: { developer: 'did:agentnexus:z6Mk...' },
    },
  });
  actor.on('*', (effect) => perform(effect as RunEffect));
  actor.start();
  actor.send({ type: 'run.start', from: owner, ts: 0, body: {} });
  const timers = armedTimers(def, actor.getSnapshot());
  const first = def.stages[0]?.id ?? '';
  const snapshot = buildContextSnapshot(def, actor.getSnapshot().context, first);
  return { actor, timers, snapshot };
}
