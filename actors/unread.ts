// A DID's unread messages and mentions, and marking its inbox read up to a sequence number.
import type { DidContext } from '../machines/did.ts';
import { AnxError, describeValue } from '../runtime/errors.ts';
import type { ActorSystem } from '../runtime/kernel/actor-system.ts';
import { UnknownActorError } from '../runtime/kernel/errors.ts';
import type { InboxRecord } from './inbox-tap.ts';

/** An inbox message with whether it mentions its owner. */
export type UnreadMessage = InboxRecord & { mention: boolean; thread?: string; reply?: string };

export interface UnreadPage {
  did: string;
  unread: number;
  /** Unread messages that mention the DID (a `mention` notice, or @DID / @name in the text). */
  mentions: number;
  /** Sequence number the inbox is marked read through. */
  read_through: number;
  messages: UnreadMessage[];
}

function didContext(system: ActorSystem, did: string): DidContext {
  if (typeof did !== 'string' || !did.startsWith('did:') || system.info(did)?.kind !== 'did')
    throw new UnknownActorError(String(did));
  return system.snapshot(did).context as DidContext;
}

/** Unread messages of a local DID (after its read mark), oldest first, with its unread and mention counts. */
export function unread(
  system: ActorSystem,
  did: string,
  options: { limit?: number; mentionsOnly?: boolean } = {},
): UnreadPage {
  const context = didContext(system, did);
  const readThrough = context.readThrough ?? 0;
  const limit = options.limit ?? 100;
  const messages: UnreadMessage[] = [];
  let after = readThrough;
  // Pages of the inbox until `limit` matching messages are found (mentions may be sparse).
  for (;;) {
    const page = system.records('inbox', did, { afterSeq: after, limit: 500 });
    for (const { seq, value } of page) {
      const record = value as Omit<InboxRecord, 'seq'> & { mention?: boolean };
      const mention = record.mention === true;
      if (options.mentionsOnly === true && !mention) continue;
      const { mention: _flag, ...rest } = record;
      messages.push({ seq, ...rest, mention });
      if (messages.length >= limit) break;
    }
    if (messages.length >= limit || page.length < 500) break;
    after = (page[page.length - 1] as { seq: number }).seq;
  }
  return {
    did,
    unread: context.unread,
    mentions: context.mentions ?? 0,
    read_through: readThrough,
    messages,
  };
}

/**
 * Marks a local DID's inbox read through `through` (default: its newest message): the DID actor lowers its
 * unread and mention counts by the messages in that range. Resolves with the counts once applied.
 */
export async function markRead(
  system: ActorSystem,
  did: string,
  through?: number,
): Promise<{ did: string; unread: number; mentions: number; read_through: number; marked: number }> {
  const context = didContext(system, did);
  const from = context.readThrough ?? 0;
  if (through !== undefined && (!Number.isInteger(through) || through < 0))
    throw new AnxError(
      'ANX_REQUEST_INVALID',
      `"through" expected an inbox sequence number, got ${describeValue(through)}`,
    );
  let count = 0;
  let mentions = 0;
  let last = from;
  for (;;) {
    const page = system.records('inbox', did, { afterSeq: last, limit: 1000 });
    for (const { seq, value } of page) {
      if (through !== undefined && seq > through) break;
      count++;
      if ((value as { mention?: boolean }).mention === true) mentions++;
      last = seq;
    }
    const tail = page[page.length - 1];
    if (page.length < 1000 || tail === undefined || (through !== undefined && tail.seq >= through)) break;
  }
  // Only as far as the last message there is: a `through` beyond it must not mark mail to come as read.
  const target = Math.max(last, from);
  if (count > 0 || target > from) {
    await system.accept([
      system.envelope({ type: 'inbox.read', from: did, to: did, body: { count, mentions, through: target } }),
    ]);
    // The DID actor applies it after the commit; bounded wait for its new counts.
    for (let i = 0; i < 1000; i++) {
      if (((system.snapshot(did).context as DidContext).readThrough ?? 0) >= target) break;
      await new Promise((r) => setTimeout(r, 10));
    }
  }
  const after = system.snapshot(did).context as DidContext;
  return {
    did,
    unread: after.unread,
    mentions: after.mentions ?? 0,
    read_through: after.readThrough ?? 0,
    marked: count,
  };
}
