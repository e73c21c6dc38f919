import { startDaemonProcess, waitFor } from '../helpers/daemon.ts';
import { startHub, startLeaf, stopAllNats } from '../helpers/nats.ts';
import { cleanupTempDirs, tempDir } from '../helpers/tmp.ts';
const hub = await startHub();
const [l1, l2] = [await startLeaf(hub), await startLeaf(hub)];
const env = { ANX_HEARTBEAT_MS: '500' };
process.execPath = '/tmp/anx/nodeprof.sh';
const h1 = await startDaemonProcess(tempDir('anx-p1-'), 30_000, { args: ['--nats', l1.url], env });
const h2 = await startDaemonProcess(tempDir('anx-p2-'), 30_000, { args: ['--nats', l2.url], env });
const alice = (await h1.api.post<{ did: string }>('/v1/identities', { name: 'alice' })).did;
const bob = (await h2.api.post<{ did: string }>('/v1/identities', { name: 'bob' })).did;
await waitFor(async () => (await h1.api.get<{ online: boolean }>(`/v1/presence/${bob}`)).online, 20_000, 'bob online');
const text = 'x'.repeat(1024);
const received = async () => (await h2.api.get<{ identities: Array<{ did: string; received: number }> }>('/v1/identities')).identities.find((i) => i.did === bob)?.received ?? 0;
for (let r = 0; r < 3; r++) {
  const before = await received();
  const n = 20000;
  const start = performance.now();
  const posts = [];
  for (let i = 0; i < n; i += 2500) posts.push(h1.api.post('/v1/messages', { messages: Array.from({ length: Math.min(2500, n - i) }, () => ({ from: alice, to: bob, body: { text } })) }));
  await Promise.all(posts);
  await waitFor(async () => (await received()) >= before + n, 120_000, 'all');
  console.log('rate', (n / ((performance.now() - start) / 1000)).toFixed(0));
}
for (const d of [h1, h2]) { const ex = new Promise((r) => d.child.once('exit', r)); process.kill(d.pid, 'SIGTERM'); await ex; }
await stopAllNats(); cleanupTempDirs();
