// The transport contract: one suite that every Transport implementation runs (in-process, NATS).
import { describe, expect, it } from 'vitest';
import { generateIdentity } from '../../runtime/identity/keys.ts';
import {
  type InboundFrame,
  type Transport,
  TransportNoRespondersError,
  TransportTimeoutError,
} from '../../runtime/transport/transport.ts';

export interface TransportPair {
  /** Two transports on different hosts (for NATS: on different leaves of one hub). */
  a: Transport;
  b: Transport;
  /** Waits until subscriptions made so far are known along the whole path. */
  settle(): Promise<void>;
  close(): Promise<void>;
}

async function until(probe: () => boolean, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!probe()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 10));
  }
}

const bytes = (n: number) => Uint8Array.of(n & 0xff, (n >> 8) & 0xff);
const num = (b: Uint8Array) => (b[0] ?? 0) | ((b[1] ?? 0) << 8);

export function transportCases(name: string, open: () => Promise<TransportPair>): void {
  describe(`${name} transport`, () => {
    it('delivers frames to a DID inbox in send order, with the reply address', async () => {
      const pair = await open();
      try {
        const bob = generateIdentity().did;
        const got: InboundFrame[] = [];
        pair.b.listenDid(bob, (f) => got.push(f));
        await pair.settle();
        for (let i = 0; i < 500; i++) pair.a.sendToDid(bob, bytes(i), pair.a.hostReply('host-a'));
        await pair.a.flush();
        await until(() => got.length === 500);
        expect(got.map((f) => num(f.data))).toEqual(Array.from({ length: 500 }, (_, i) => i));
        expect(got[0]?.reply).toBe(pair.a.hostReply('host-a'));
      } finally {
        await pair.close();
      }
    });

    it('routes answers to a host control address', async () => {
      const pair = await open();
      try {
        const bob = generateIdentity().did;
        const answers: number[] = [];
        pair.a.listenHost('host-a', (f) => answers.push(num(f.data)));
        pair.b.listenDid(bob, (f) => {
          if (f.reply !== undefined) pair.b.respond(f.reply, bytes(num(f.data) + 1));
        });
        await pair.settle();
        pair.a.sendToDid(bob, bytes(41), pair.a.hostReply('host-a'));
        pair.b.sendToHost('host-a', bytes(7));
        await until(() => answers.length === 2);
        expect(answers.sort()).toEqual([42, 7].sort());
      } finally {
        await pair.close();
      }
    });

    it('answers a request, and refuses one nobody listens to or nobody answers with typed errors', async () => {
      const pair = await open();
      try {
        const bob = generateIdentity().did;
        const silent = generateIdentity().did;
        pair.b.listenDid(bob, (f) => pair.b.respond(f.reply as string, bytes(num(f.data) * 2)));
        pair.b.listenDid(silent, () => {});
        await pair.settle();
        expect(num(await pair.a.request(bob, bytes(21), 5_000))).toBe(42);
        await expect(pair.a.request(generateIdentity().did, bytes(1), 2_000)).rejects.toBeInstanceOf(
          TransportNoRespondersError,
        );
        await expect(pair.a.request(silent, bytes(1), 300)).rejects.toBeInstanceOf(TransportTimeoutError);
      } finally {
        await pair.close();
      }
    });

    it('shows heartbeats to watchers, including heartbeats announced before the watch began', async () => {
      const pair = await open();
      try {
        pair.a.announce('host-a', Uint8Array.of(1));
        await pair.a.flush();
        const seen: Array<[string, number]> = [];
        pair.b.watchPresence((host, hb) => seen.push([host, hb[0] ?? -1]));
        await until(() => seen.some(([h]) => h === 'host-a'));
        pair.a.announce('host-a', Uint8Array.of(2));
        await until(() => seen.some(([h, v]) => h === 'host-a' && v === 2));
      } finally {
        await pair.close();
      }
    });

    it('stops delivering after unsubscribe and sends nothing once closed', async () => {
      const pair = await open();
      try {
        const bob = generateIdentity().did;
        const got: number[] = [];
        const sub = pair.b.listenDid(bob, (f) => got.push(num(f.data)));
        await pair.settle();
        pair.a.sendToDid(bob, bytes(1));
        await until(() => got.length === 1);
        sub.unsubscribe();
        await pair.settle();
        pair.a.sendToDid(bob, bytes(2));
        await pair.a.flush();
        await new Promise((r) => setTimeout(r, 200));
        expect(got).toEqual([1]);
        const statuses: string[] = [];
        pair.a.onStatus((s) => statuses.push(s));
        await pair.a.close();
        expect(pair.a.status).toBe('closed');
        expect(statuses).toContain('closed');
        expect(() => pair.a.sendToDid(bob, bytes(3))).not.toThrow();
      } finally {
        await pair.close();
      }
    });
  });
}
