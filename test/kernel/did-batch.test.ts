// Mail accepted together is one DID transition (`anx.batch`), with exactly the outcome of one transition per message.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { AnyStateMachine } from 'xstate';
import { didActor } from '../../actors/did.ts';
import { DID_BATCH_EVENT, type DidContext, PENDING_MAX } from '../../machines/did.ts';
import { ManualClock } from '../../runtime/clock.ts';
import { Host } from '../../runtime/host.ts';
import { generateIdentity } from '../../runtime/identity/keys.ts';
import { type ActorSystem, BATCH_EVENT, type MachineDefinition } from '../../runtime/kernel/actor-system.ts';
import type { KernelEnvelope } from '../../runtime/kernel/message.ts';
import { tempDir } from '../helpers/tmp.ts';
import { closeSystem, openSystem } from './systems.ts';

const me = generateIdentity().did;
const friend = generateIdentity().did;
const enemy = generateIdentity().did;
const strangers = [generateIdentity().did, generateIdentity().did];

/** The DID actor, with every event its machine is given counted by type. */
function countingDidActor(counts: Map<string, number>): MachineDefinition {
  const machine = new Proxy(didActor.machine, {
    get(target, prop, receiver) {
      if (prop === 'transition')
        return (snapshot: unknown, event: { type: string }, scope: unknown) => {
          counts.set(event.type, (counts.get(event.type) ?? 0) + 1);
          return (target.transition as (...a: unknown[]) => unknown)(snapshot, event, scope);
        };
      return Reflect.get(target, prop, receiver);
    },
  }) as AnyStateMachine;
  return { ...didActor, machine };
}

/** A system holding DID `me` in gatekeeper mode `ask` (friend allowed, enemy blocked), on a fixed clock. */
async function didHost(counts = new Map<string, number>(), turnSize?: number) {
  const clock = new ManualClock(1_800_000_000_000);
  const { sys, store } = await openSystem([countingDidActor(counts)], {
    clock,
    ...(turnSize === undefined ? {} : { turnSize }),
  });
  await sys.spawn('did', me, { name: 'Mia' });
  await sys.accept([
    sys.envelope({
      type: 'gatekeeper.set',
      from: me,
      to: me,
      body: { mode: 'ask', allow: [friend], block: [enemy] },
    }),
  ]);
  return { sys, store, counts };
}

interface Mail {
  from: string;
  type: string;
  text: string;
  run?: string;
  expired?: boolean;
}

const envelopeOf = (sys: ActorSystem, mail: Mail, i: number): KernelEnvelope => ({
  ...sys.envelope({
    type: mail.type,
    from: mail.from,
    to: me,
    id: `message-${String(i).padStart(6, '0')}`,
    body: { text: mail.text },
    ...(mail.run === undefined ? {} : { ctx: { run_id: mail.run, task_id: `${mail.run}/s/1` } }),
  }),
  ...(mail.expired === true ? { exp: 1 } : {}),
});

/** Everything the DID's messages left: its context, inbox and pending records, and its events. */
async function outcome(sys: ActorSystem) {
  await sys.quiesce();
  const c = sys.snapshot(me).context as DidContext;
  return {
    context: {
      received: c.received,
      unread: c.unread,
      mentions: c.mentions,
      refused: c.refused,
      held: c.held,
      pending: c.pending,
      lastMessageId: c.lastMessageId,
    },
    inbox: sys.records('inbox', me).map((r) => r.value),
    pending: sys.records('pending', me).map((r) => r.value),
    events: sys.events
      .trace(me)
      .map((e) => ({ kind: e.kind, payload: e.payload, run_id: e.run_id, task_id: e.task_id })),
  };
}

const mailArb = fc.record(
  {
    from: fc.constantFrom(friend, enemy, ...strangers, 'run/local-actor'),
    type: fc.constantFrom('message', 'mention', 'task.propose'),
    text: fc.constantFrom('hello', 'hi @Mia', `ping @${me}`, '@miA, look', '@Miami is not her'),
    run: fc.constantFrom('run-a', 'run-b'),
    expired: fc.boolean(),
  },
  { requiredKeys: ['from', 'type', 'text'] },
);

describe('DID batches', () => {
  it('handles the kernel’s batch event under the kernel’s name, which no message may carry', async () => {
    expect(DID_BATCH_EVENT).toBe(BATCH_EVENT);
    const host = await Host.open({ dataDir: tempDir() });
    try {
      const { did } = await host.createIdentity({ name: 'sender' });
      await expect(host.send([{ from: did, to: did, type: BATCH_EVENT, body: 'x' }])).rejects.toMatchObject({
        code: 'ANX_REQUEST_INVALID',
        message: `"type" expected a message type other than "${BATCH_EVENT}" (the kernel's own event)`,
      });
    } finally {
      await host.close();
    }
  });

  it('takes mail accepted together in one transition, with the outcome of one transition each', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(mailArb, { minLength: 2, maxLength: 40 }), async (mails) => {
        const alone = await didHost();
        for (const [i, m] of mails.entries()) await alone.sys.accept([envelopeOf(alone.sys, m, i)]);
        const together = await didHost();
        await together.sys.accept(mails.map((m, i) => envelopeOf(together.sys, m, i)));
        expect(await outcome(together.sys)).toEqual(await outcome(alone.sys));
        expect(alone.counts.get(BATCH_EVENT)).toBeUndefined();
        // Expired envelopes split the batch where they stand (they are dead-lettered in their place).
        const runs = [0];
        for (const m of mails) {
          if (m.expired === true) runs.push(0);
          else runs[runs.length - 1] = (runs[runs.length - 1] as number) + 1;
        }
        expect(together.counts.get(BATCH_EVENT) ?? 0).toBe(runs.filter((n) => n >= 2).length);
        for (const h of [alone, together]) await closeSystem(h);
      }),
      { numRuns: 25 },
    );
  });

  it('dead-letters an envelope typed as the batch event, whatever it carries, whichever way it came', async () => {
    const { sys } = await didHost();
    const forged = {
      ...sys.envelope({ type: BATCH_EVENT, from: enemy, to: me, body: null }),
      items: [envelopeOf(sys, { from: friend, type: 'message', text: 'spoofed' }, 1)],
    };
    await sys.accept([forged]);
    const result = await outcome(sys);
    expect(result.inbox).toEqual([]);
    expect(result.context.received).toBe(0);
    const errors = sys.events
      .trace(me, { kinds: ['error'] })
      .map((e) => (e.payload as { code: string }).code);
    expect(errors).toContain('ANX_ENVELOPE_RESERVED_TYPE');
  });

  it('holds strangers up to the queue limit and refuses the rest, in a batch as alone', async () => {
    const mails = Array.from({ length: PENDING_MAX + 20 }, (_, i) => ({
      from: strangers[i % 2] as string,
      type: 'message',
      text: `note ${i}`,
    }));
    const alone = await didHost();
    for (const [i, m] of mails.entries()) await alone.sys.accept([envelopeOf(alone.sys, m, i)]);
    const together = await didHost();
    await together.sys.accept(mails.map((m, i) => envelopeOf(together.sys, m, i)));
    const expected = await outcome(alone.sys);
    expect(expected.context.held).toBe(PENDING_MAX);
    expect(expected.context.refused).toBe(20);
    expect(await outcome(together.sys)).toEqual(expected);
  });

  it('batches mail waiting in a busy DID’s mailbox, control messages still one by one', async () => {
    // Four messages per turn: most of the mail waits in the mailbox and is taken from there.
    const { sys, counts } = await didHost(new Map(), 4);
    const mails = Array.from({ length: 30 }, (_, i) =>
      envelopeOf(sys, { from: friend, type: 'message', text: `m${i}` }, i),
    );
    // A read marker in the middle: what comes before and after it are two batches around it.
    const read = sys.envelope({ type: 'inbox.read', from: me, to: me, body: { count: 0 } });
    await Promise.all([
      sys.accept(mails.slice(0, 10)),
      sys.accept([...mails.slice(10, 20), read, ...mails.slice(20)]),
    ]);
    const result = await outcome(sys);
    expect(result.context.received).toBe(30);
    expect(result.inbox.map((r) => (r as { body: { text: string } }).body.text)).toEqual(
      mails.map((m) => (m.body as { text: string }).text),
    );
    expect(counts.get('inbox.read')).toBe(1);
    expect(counts.get(BATCH_EVENT)).toBeGreaterThanOrEqual(6);
    expect(counts.get('message') ?? 0).toBeLessThanOrEqual(3);
  });
});
