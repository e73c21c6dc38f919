import { chmodSync, existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
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

it('opens a data directory whose name has a dot in it as a directory', async () => {
  const dir = join(mkdtempSync(join(tmpdir(), 'anx-')), 'tmp.XyZ12');
  const store = openStore(dir);
  await store.meta.put('probe', 1);
  await store.close();
  expect(existsSync(join(dir, 'data.mdb'))).toBe(true);
  const again = openStore(dir);
  expect(again.meta.get('probe')).toBe(1);
  await again.close();
  rmSync(dirname(dir), { recursive: true });
});

it('keeps its LMDB files owner-only in a data directory others can enter, also files of an older environment', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'anx-'));
  chmodSync(dir, 0o755);
  const store = openStore(dir);
  await store.meta.put('probe', 1);
  await store.close();
  for (const file of ['data.mdb', 'lock.mdb']) {
    expect(statSync(join(dir, file)).mode & 0o777).toBe(0o600);
    chmodSync(join(dir, file), 0o644);
  }
  const again = openStore(dir);
  expect(again.meta.get('probe')).toBe(1);
  await again.close();
  for (const file of ['data.mdb', 'lock.mdb']) expect(statSync(join(dir, file)).mode & 0o777).toBe(0o600);
  rmSync(dir, { recursive: true });
});
