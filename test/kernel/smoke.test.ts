import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { didActor } from '../../actors/did.ts';
import { ActorSystem } from '../../runtime/kernel/actor-system.ts';
import { openStore } from '../../runtime/store/store.ts';

it('delivers a message into a DID inbox durably', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'anx-'));
  const store = openStore(dir);
  const sys = new ActorSystem({ store });
  sys.register(didActor);
  await sys.start();
  await sys.spawn('did', 'did:agentnexus:zA');
  await sys.spawn('did', 'did:agentnexus:zB');
  await sys.accept([
    sys.envelope({
      type: 'message',
      from: 'did:agentnexus:zA',
      to: 'did:agentnexus:zB',
      body: { text: 'hi' },
    }),
  ]);
  await sys.quiesce();
  expect(sys.records('inbox', 'did:agentnexus:zB').length).toBe(1);
  expect(sys.events.trace('did:agentnexus:zB').map((e) => e.kind)).toEqual(['message']);
  await sys.stop();
  await store.close();
  rmSync(dir, { recursive: true });
});
