// The DID actor: the DID statechart bound to the kernel under the DID itself as its address.
import {
  batchable,
  DID_MACHINE_VERSION,
  type DidContext,
  didMachine,
  GATEKEEPER_LIST_MAX,
  type GatekeeperMode,
  gatekeeperList,
  gatekeeperVerdict,
  PENDING_TTL_MAX_MS,
  PENDING_TTL_MS,
} from '../machines/did.ts';
import { AnxError, describeValue } from '../runtime/errors.ts';
import type { ActorSystem, MachineDefinition } from '../runtime/kernel/actor-system.ts';
import { UnknownActorError } from '../runtime/kernel/errors.ts';

export const DID_KIND = 'did';

/** Registers with `system.register(didActor)`; spawn with `system.spawn('did', did, { name })`. */
export const didActor: MachineDefinition = {
  kind: DID_KIND,
  version: DID_MACHINE_VERSION,
  machine: didMachine,
  // Mail accepted together (a relay frame's batch, an API call of many messages) is one transition.
  batch: (envelope) => batchable(envelope.type),
  input: (address, init) => {
    const options = (init ?? {}) as { name?: string; presenceTtlMs?: number };
    return {
      did: address,
      ...(options.name === undefined ? {} : { name: options.name }),
      ...(options.presenceTtlMs === undefined ? {} : { presenceTtlMs: options.presenceTtlMs }),
    };
  },
};

/** A held message as the gatekeeper CLI and API show it. */
export interface PendingMessage {
  id: string;
  from: string;
  type: string;
  ts: number;
  expires_at: number;
  body: unknown;
}

/**
 * The gatekeeper of local DIDs, from the host's side: settings, the queue of held messages with their
 * bodies, and the answers (approve, deny) and expiry sweeps it sends to the DID actor as control messages.
 * Who may answer is checked by the caller (the DID itself or its Owner).
 */
export class Gatekeeper {
  constructor(private readonly system: ActorSystem) {}

  /** Mode, lists, and the number of held messages. */
  show(did: string): {
    did: string;
    mode: GatekeeperMode;
    allow: string[];
    block: string[];
    pending_ttl_ms: number;
    held: number;
    refused: number;
  } {
    const c = this.context(did);
    return {
      did,
      mode: c.gatekeeper.mode,
      allow: c.gatekeeper.allow,
      block: c.gatekeeper.block,
      pending_ttl_ms: c.gatekeeper.pendingTtlMs ?? PENDING_TTL_MS,
      held: (c.pending ?? []).length,
      refused: c.refused,
    };
  }

  /** What the gatekeeper would do with mail from `from` now (for transports deciding on a handshake). */
  verdict(did: string, from: string): ReturnType<typeof gatekeeperVerdict> {
    return gatekeeperVerdict(this.context(did), from);
  }

  /** Held messages still waiting, oldest first, with their bodies; expired ones are swept first. */
  async pending(did: string): Promise<PendingMessage[]> {
    await this.sweep(did);
    const entries = this.context(did).pending ?? [];
    if (entries.length === 0) return [];
    const bodies = new Map<string, unknown>();
    for (const { value } of this.system.records('pending', did)) {
      const v = value as { id: string; body: unknown };
      bodies.set(v.id, v.body);
    }
    return entries.map((e) => ({ ...e, body: bodies.get(e.id) ?? null }));
  }

  async set(
    did: string,
    settings: { mode?: GatekeeperMode; allow?: string[]; block?: string[]; pending_ttl_ms?: number },
  ) {
    for (const field of ['allow', 'block'] as const) {
      const list = settings[field];
      if (list === undefined) continue;
      const distinct = new Set(list).size;
      if (distinct > GATEKEEPER_LIST_MAX)
        throw new GatekeeperSettingsError(
          `"${field}" expected at most ${GATEKEEPER_LIST_MAX} DIDs, got ${distinct}`,
          field === 'allow'
            ? 'a list that long belongs in an Owner binding or a capability token, not the gatekeeper'
            : 'block a sender at the relay, or keep the DID private with a short allow-list',
        );
      settings = { ...settings, [field]: gatekeeperList(list) };
    }
    const ttl = settings.pending_ttl_ms;
    if (ttl !== undefined && (!Number.isInteger(ttl) || ttl < 1000 || ttl > PENDING_TTL_MAX_MS))
      throw new GatekeeperSettingsError(
        `"pending_ttl_ms" expected an integer from 1000 (1 s) to ${PENDING_TTL_MAX_MS} (30 days), got ${ttl}`,
      );
    const same = (a: string[], b: string[] | undefined) => b === undefined || a.join() === b.join();
    await this.control(
      did,
      'gatekeeper.set',
      settings,
      (c) =>
        (settings.mode === undefined || c.gatekeeper.mode === settings.mode) &&
        same(c.gatekeeper.allow, settings.allow) &&
        same(c.gatekeeper.block, settings.block) &&
        (settings.pending_ttl_ms === undefined || c.gatekeeper.pendingTtlMs === settings.pending_ttl_ms),
    );
    return this.show(did);
  }

  /** Lets a held message into the inbox; with `allow` (default) its sender is allowed from now on. */
  async approve(did: string, id: string, options: { allow?: boolean } = {}): Promise<PendingMessage> {
    const held = (await this.pending(did)).find((p) => p.id === id);
    if (held === undefined) throw new PendingNotFoundError(did, id);
    if (options.allow !== false) this.roomFor(did, 'allow', held.from);
    const record = this.system
      .records('pending', did)
      .map((r) => r.value as Record<string, unknown>)
      .find((r) => r['id'] === id);
    await this.control(
      did,
      'gatekeeper.approve',
      { id, message: record ?? {}, allow: options.allow !== false },
      (c) => !(c.pending ?? []).some((p) => p.id === id),
    );
    return held;
  }

  /** Drops a held message; with `block` its sender is blocked from now on. */
  async deny(did: string, id: string, options: { block?: boolean } = {}): Promise<PendingMessage> {
    const held = (await this.pending(did)).find((p) => p.id === id);
    if (held === undefined) throw new PendingNotFoundError(did, id);
    if (options.block === true) this.roomFor(did, 'block', held.from);
    await this.control(
      did,
      'gatekeeper.deny',
      { id, block: options.block === true },
      (c) => !(c.pending ?? []).some((p) => p.id === id),
    );
    return held;
  }

  /** Drops held messages past their deadline; resolves once the DID actor has applied it. */
  async sweep(did: string): Promise<void> {
    const now = this.system.clock.now();
    if (!(this.context(did).pending ?? []).some((p) => p.expires_at <= now)) return;
    await this.control(did, 'gatekeeper.expire', {}, (c) =>
      (c.pending ?? []).every((p) => p.expires_at > now),
    );
  }

  /** Refuses an answer that would add `from` to a list already full (the machine would skip it). */
  private roomFor(did: string, field: 'allow' | 'block', from: string): void {
    const list = this.context(did).gatekeeper[field];
    if (list.length >= GATEKEEPER_LIST_MAX && !list.includes(from))
      throw new GatekeeperSettingsError(
        `the ${field} list of ${did} is full (${GATEKEEPER_LIST_MAX} DIDs): ${from} cannot join it`,
        `answer without adding the sender (${field === 'allow' ? '`gatekeeper approve --once`' : '`gatekeeper deny` without `--block`'}), or shorten the list with \`anx-runtime gatekeeper set ${did} --${field} …\``,
      );
  }

  private context(did: string): DidContext {
    if (!this.system.has(did)) throw new UnknownActorError(did);
    return this.system.snapshot(did).context as DidContext;
  }

  /** Sends a control message as the host and waits (bounded) until the DID actor shows its effect. */
  private async control(did: string, type: string, body: unknown, applied: (c: DidContext) => boolean) {
    await this.system.accept([this.system.envelope({ type, from: 'host', to: did, body })]);
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline) {
      if (applied(this.context(did))) return;
      await new Promise((r) => setTimeout(r, 10));
    }
  }
}

/** No held message with this id waits for the DID (answered, expired or never held). */
/** Gatekeeper settings out of bounds: a list over GATEKEEPER_LIST_MAX, a hold time out of range. */
export class GatekeeperSettingsError extends AnxError {
  constructor(message: string, hint?: string) {
    super('ANX_GATEKEEPER_INVALID', message, hint === undefined ? undefined : { hint });
  }
}

export class PendingNotFoundError extends AnxError {
  constructor(did: string, id: string) {
    super('ANX_PENDING_NOT_FOUND', `no held message ${describeValue(id)} waits for ${did}`, {
      hint: 'list what waits with `anx-runtime gatekeeper pending DID`; held messages expire unanswered',
    });
  }
}
