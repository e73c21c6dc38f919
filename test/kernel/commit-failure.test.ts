// A group commit that fails stops the system for good, with a typed error its listeners hear once.
import { expect, it } from 'vitest';
import { CommitFailedError } from '../../runtime/kernel/errors.ts';
import { pingActor } from './fixtures.ts';
import { openSystem } from './systems.ts';

it('turns a failed group commit into ANX_COMMIT_FAILED: heard once, then every call refuses', async () => {
  const entry = await openSystem([pingActor]);
  const { sys, store } = entry;
  const heard: CommitFailedError[] = [];
  sys.onFatal((err) => heard.push(err));
  // A value nested far too deep for the encoder fails the transaction it is in (the edges refuse such
  // values; this writes one past them on purpose).
  let deep: unknown = 1;
  for (let i = 0; i < 100_000; i++) deep = [deep];
  sys.commits.put(store.meta, 'poison', deep);
  // The queue hands the failure to the system rather than to whoever flushed.
  await sys.commits.flush();
  expect(heard).toHaveLength(1);
  expect(heard[0]).toBeInstanceOf(CommitFailedError);
  expect(heard[0]?.code).toBe('ANX_COMMIT_FAILED');
  expect(heard[0]?.hint).toMatch(/restart the host/);
  await expect(sys.quiesce()).rejects.toMatchObject({ code: 'ANX_COMMIT_FAILED' });
  expect(() => sys.envelope({ type: 'ping', from: 'test/a', to: 'ping/1' })).not.toThrow();
  await expect(
    sys.accept([sys.envelope({ type: 'ping', from: 'test/a', to: 'ping/1' })]),
  ).rejects.toMatchObject({
    code: 'ANX_COMMIT_FAILED',
  });
  // Nothing of the poisoned commit reached the store.
  expect(store.meta.get('poison')).toBeUndefined();
  expect(heard).toHaveLength(1);
});
