// The audit log: hash chain across restarts, and detection of records altered, deleted, reordered or re-chained in LMDB directly.
import { open } from 'lmdb';
import { afterEach, describe, expect, it } from 'vitest';
import { type AuditEntry, auditHash } from '../../runtime/authority/audit.ts';
import { cleanupTempDirs } from '../helpers/tmp.ts';
import { closeHost, closeHosts, identities, openHost } from './tokens-fixture.ts';

afterEach(async () => {
  await closeHosts();
  cleanupTempDirs();
});

/** A host with `n` audit records, closed; returns its data directory. */
async function logWith(n: number): Promise<string> {
  const { host, dir } = await openHost();
  for (let i = 1; i <= n; i++)
    host.authority.audit.append({
      action: 'test.step',
      decision: i % 2 === 0 ? 'deny' : 'allow',
      details: { i },
    });
  await host.authority.audit.flush();
  await closeHost(host);
  return dir;
}

/** Opens the host's LMDB environment directly (as an attacker with file access would) and edits the audit db. */
async function tamper(
  dir: string,
  edit: (
    db: ReturnType<ReturnType<typeof open>['openDB']>,
    meta: ReturnType<ReturnType<typeof open>['openDB']>,
  ) => Promise<void>,
) {
  const env = open({ path: dir, maxDbs: 64, compression: false });
  const db = env.openDB({ name: 'audit', useRecords: false } as never);
  const meta = env.openDB({ name: 'meta', useRecords: false } as never);
  await edit(db, meta);
  await env.close();
}

async function verifyAt(dir: string) {
  const { host } = await openHost({ dir });
  const result = host.authority.audit.verify();
  await closeHost(host);
  return result;
}

describe('audit log', () => {
  it('chains every record to the one before it, across a restart', async () => {
    const dir = await logWith(3);
    const { host } = await openHost({ dir });
    const entry = host.authority.audit.append({
      action: 'test.after_restart',
      decision: 'allow',
      actor: 'operator',
    });
    expect(entry.seq).toBe(4);
    const [, , third] = host.authority.audit.list();
    expect(entry.prev).toBe((third as AuditEntry).hash);
    expect(entry.hash).toBe(auditHash(host.suite, entry));
    await host.authority.audit.flush();
    expect(host.authority.audit.verify()).toMatchObject({ ok: true, count: 4, problems: [] });
  });

  it('detects a record whose content was changed', async () => {
    const dir = await logWith(5);
    await tamper(dir, async (db) => {
      const rec = db.get(3) as AuditEntry;
      await db.put(3, { ...rec, decision: 'allow' === rec.decision ? 'deny' : 'allow' });
    });
    const r = await verifyAt(dir);
    expect(r.ok).toBe(false);
    expect(r.problems).toContainEqual(expect.objectContaining({ seq: 3, kind: 'altered' }));
  });

  it('detects a deleted record in the middle', async () => {
    const dir = await logWith(5);
    await tamper(dir, async (db) => {
      await db.remove(2);
    });
    const r = await verifyAt(dir);
    expect(r.ok).toBe(false);
    expect(r.problems).toContainEqual(expect.objectContaining({ seq: 2, kind: 'missing' }));
  });

  it('detects two records swapped', async () => {
    const dir = await logWith(5);
    await tamper(dir, async (db) => {
      const two = db.get(2);
      const four = db.get(4);
      await db.put(2, four);
      await db.put(4, two);
    });
    const r = await verifyAt(dir);
    expect(r.ok).toBe(false);
    expect(r.problems.filter((p) => p.kind === 'reordered').map((p) => p.seq)).toEqual([2, 4]);
  });

  it('detects records renumbered into another order with their own sequence fields rewritten', async () => {
    const dir = await logWith(4);
    await tamper(dir, async (db) => {
      const two = db.get(2) as AuditEntry;
      const three = db.get(3) as AuditEntry;
      await db.put(2, { ...three, seq: 2 });
      await db.put(3, { ...two, seq: 3 });
    });
    const r = await verifyAt(dir);
    expect(r.ok).toBe(false);
    expect(r.problems.some((p) => p.seq === 2 || p.seq === 3)).toBe(true);
  });

  it('detects the newest records cut off, even when the head is moved back', async () => {
    const dir = await logWith(5);
    await tamper(dir, async (db) => {
      await db.remove(5);
    });
    const cut = await verifyAt(dir);
    expect(cut.problems).toContainEqual(expect.objectContaining({ kind: 'missing' }));

    const dir2 = await logWith(5);
    await tamper(dir2, async (db, meta) => {
      const four = db.get(4) as AuditEntry;
      await db.remove(5);
      const head = meta.get('audit.head') as { mac: string };
      await meta.put('audit.head', { seq: 4, hash: four.hash, mac: head.mac });
    });
    const moved = await verifyAt(dir2);
    expect(moved.ok).toBe(false);
    expect(moved.problems).toContainEqual(expect.objectContaining({ kind: 'head' }));
  });

  it('detects a rewritten history whose hashes were all recomputed, by the head MAC', async () => {
    const dir = await logWith(4);
    const { host } = await openHost({ dir });
    const suite = host.suite;
    await closeHost(host);
    await tamper(dir, async (db, meta) => {
      let prev = '0'.repeat(64);
      let last: AuditEntry | undefined;
      for (let seq = 1; seq <= 4; seq++) {
        const { hash: _h, ...rest } = db.get(seq) as AuditEntry;
        const forged = {
          ...rest,
          prev,
          ...(seq === 2 ? { decision: 'allow' as const, reason: 'nothing to see' } : {}),
        };
        last = { ...forged, hash: auditHash(suite, forged) };
        await db.put(seq, last);
        prev = last.hash;
      }
      const head = meta.get('audit.head') as { mac: string };
      await meta.put('audit.head', { seq: 4, hash: (last as AuditEntry).hash, mac: head.mac });
    });
    const r = await verifyAt(dir);
    expect(r.ok).toBe(false);
    expect(r.problems).toEqual([expect.objectContaining({ kind: 'head' })]);
  });

  it('reports a record that is not an audit record at all', async () => {
    const dir = await logWith(3);
    await tamper(dir, async (db) => {
      await db.put(2, 'garbage');
    });
    const r = await verifyAt(dir);
    expect(r.problems).toContainEqual(expect.objectContaining({ seq: 2, kind: 'unreadable' }));
  });

  it('lists records by action prefix, decision, DID and sequence, oldest or newest first', async () => {
    const { host } = await openHost();
    const [alice] = await identities(host, 1);
    const a = host.authority.audit;
    a.append({ action: 'token.issue', decision: 'allow', actor: alice });
    a.append({
      action: 'token.check',
      decision: 'deny',
      actor: 'someone',
      principal: alice,
      code: 'ANX_TOKEN_EXPIRED',
    });
    a.append({ action: 'host.freeze', decision: 'allow', actor: 'operator' });
    expect(a.list({ action: 'token' }).map((e) => e.action)).toEqual(['token.issue', 'token.check']);
    expect(a.list({ decision: 'deny' }).map((e) => e.code)).toEqual(['ANX_TOKEN_EXPIRED']);
    expect(a.list({ did: alice as string })).toHaveLength(2);
    expect(a.list({ afterSeq: 1 }).map((e) => e.seq)).toEqual([2, 3]);
    expect(a.list({ reverse: true, limit: 2 }).map((e) => e.seq)).toEqual([3, 2]);
    await a.flush();
    expect(a.list({ reverse: true }).map((e) => e.seq)).toEqual([3, 2, 1]);
  });

  it('refuses malformed records with a typed error and keeps the chain intact', async () => {
    const { host } = await openHost();
    const a = host.authority.audit;
    const bad: unknown[] = [
      null,
      { action: 'Bad Action', decision: 'allow' },
      { action: 'x', decision: 'maybe' },
      { action: 'x', decision: 'allow', actor: 42 },
      { action: 'x', decision: 'allow', details: { big: 10n } },
    ];
    for (const input of bad)
      expect(() => a.append(input as never)).toThrow(
        expect.objectContaining({ code: 'ANX_REQUEST_INVALID' }),
      );
    a.append({ action: 'x', decision: 'allow', reason: 'r'.repeat(5_000) });
    await a.flush();
    expect(a.verify()).toMatchObject({ ok: true, count: 1 });
    expect((a.list()[0] as AuditEntry).reason?.length).toBeLessThanOrEqual(1_024);
  });
});
