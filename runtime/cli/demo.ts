// `anx-runtime demo`: the dev-team playbook end to end on one embedded host, scripted workers, one review rejection.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type ManifestRecord, verifyManifest } from '../../actors/manifest.ts';
import type { StageHandler } from '../../actors/worker-runtime.ts';
import type { EventV1 } from '../events/event.ts';
import { Host } from '../host.ts';

const ROLES = ['pm', 'architect', 'developer', 'tester', 'reviewer'] as const;

const WORK: Record<(typeof ROLES)[number], (attempt: number) => string> = {
  pm: () => '# Requirements\n\n- a login form with e-mail and password\n- lock out after 5 failed attempts\n',
  architect: () => '# Design\n\nLoginForm → AuthService.verify → SessionStore; rate limit in AuthService.\n',
  developer: (attempt) =>
    attempt === 1
      ? 'diff --git a/login.ts b/login.ts\n+export function login(email, password) { return auth.verify(email, password); }\n'
      : 'diff --git a/login.ts b/login.ts\n+export function login(email, password) {\n+  limiter.check(email);\n+  return auth.verify(email, password);\n+}\n',
  tester: (attempt) =>
    `# Test report\n\n${attempt === 1 ? '12/12 passed' : '14/14 passed, incl. lockout after 5 attempts'}\n`,
  reviewer: () => '# Review\n\nApproved: rate limiting is in place and tested.\n',
};

export interface DemoResult {
  run_id: string;
  manifest: ManifestRecord;
  verified: boolean;
  dataDir: string;
}

/**
 * Runs the demo and returns its manifest. Progress lines go to `log`. The host lives in a fresh temporary
 * data directory (removed afterwards unless `keep`), so it never touches a daemon's data.
 */
export async function runDemo(options: {
  log: (line: string) => void;
  keep?: boolean;
  dataDir?: string;
}): Promise<DemoResult> {
  const dataDir = options.dataDir ?? mkdtempSync(join(tmpdir(), 'anx-demo-'));
  const host = await Host.open({ dataDir });
  const log = options.log;
  try {
    const t = host.teamwork;
    const owner = (await host.createIdentity({ name: 'owner' })).did;
    const enclave = (await t.enclaves.create({ owner, name: 'login page' })).enclave_id;
    log(`owner     ${owner}`);
    log(`enclave   ${enclave} (vault: lmdb)`);
    const workers: Record<string, string> = {};
    for (const role of ROLES) {
      const did = (await host.createIdentity({ name: role })).did;
      workers[role] = did;
      await t.enclaves.setMember(enclave, owner, { did, role, permissions: ['read', 'write'] });
      log(`${role.padEnd(10)}${did}`);
    }
    let reviews = 0;
    for (const role of ROLES) {
      const handler: StageHandler = async (ctx) => {
        // A worker reads its inputs by ref: what earlier stages delivered, never a chat history.
        for (const ref of ctx.snapshot.inputs) await ctx.vault.get(ref);
        if (role === 'reviewer' && ++reviews === 1) {
          await ctx.reject({ reason: 'no rate limiting on failed logins: add a lockout after 5 attempts' });
          return;
        }
        const value = WORK[role](ctx.task.attempt);
        await ctx.deliver({
          value,
          summary:
            value
              .split('\n')
              .find((l) => l.trim() !== '')
              ?.replace(/^#+ /, '') ?? role,
        });
      };
      t.worker(workers[role] as string).onStage(role, handler);
    }
    const done = new Promise<ManifestRecord>((resolve) => {
      t.manifests.onManifest((_id, record) => resolve(record));
    });
    const progress = (events: readonly EventV1[]) => {
      for (const e of events) {
        const p = e.payload as Record<string, unknown>;
        if (e.kind === 'status' && typeof p['state'] === 'string' && e.actor?.startsWith('run/')) {
          const state = p['state'];
          if (state === 'stage.started') log(`  ▶ ${p['stage']} (attempt ${p['attempt']})`);
          else if (state === 'stage.completed') log(`  ✓ ${p['stage']}`);
          else if (state === 'stage.rejected')
            log(`  ✗ ${p['stage']} rejected → back to ${p['target']}: ${p['reason']}`);
          else if (state === 'stage.retrying') log(`  ↻ ${p['stage']} retrying: ${p['reason']}`);
          else if (state === 'run.completed') log('  run completed');
        } else if (e.kind === 'artifact' && e.actor?.startsWith('enclave/')) {
          const ref = p['ref'] as { key: string; version: number; hash: string };
          log(`    artifact ${ref.key}@${ref.version} sha256:${ref.hash.slice(0, 12)}…`);
        }
      }
    };
    const unsubscribe = host.system.events.subscribe(progress);
    const { run_id } = await t.startRun({
      playbook: 'dev-team',
      objective: 'Ship the login page',
      owner,
      enclave,
      assignments: workers,
    });
    log(`run       ${run_id} (dev-team)`);
    const manifest = await done;
    unsubscribe();
    await host.teamwork.workers.idle();
    return { run_id, manifest, verified: verifyManifest(manifest.signed), dataDir };
  } finally {
    await host.close();
    if (options.keep !== true && options.dataDir === undefined)
      rmSync(dataDir, { recursive: true, force: true });
  }
}
