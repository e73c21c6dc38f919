// Bench group `playground` (real Chromium): a run's 10,000-event timeline, and how the page answers with 100 active runs.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import type { StageHandler } from '../../actors/worker-runtime.ts';
import { startApiServer } from '../../bridge/api/server.ts';
import { Host } from '../../runtime/host.ts';
import { launchChromium, openPlayground, ROLES } from '../playground/browser.ts';
import { type BenchGroup, type BenchResult, median, percentile, withRatio } from './harness.ts';

const EVENTS = 10_000;
const ACTIVE_RUNS = 100;

/** In the page: how long the timeline takes to fetch, filter and draw every event of `id`. */
async function timelineLoad(page: Page, id: string): Promise<{ total: number; draw: number; count: number }> {
  return page.evaluate(async (runId) => {
    const app = (
      window as unknown as {
        anxPlayground: {
          timeline: {
            load(id: string): Promise<void>;
            lastTimings: { total_ms: number; render_ms: number; count: number };
          };
        };
      }
    ).anxPlayground;
    await app.timeline.load(runId);
    return {
      total: app.timeline.lastTimings.total_ms,
      draw: app.timeline.lastTimings.render_ms,
      count: app.timeline.lastTimings.count,
    };
  }, id);
}

/** The raw layer under the timeline, in the same page: fetching and parsing the same trace JSON. */
async function traceFetch(page: Page, id: string, token: string): Promise<number> {
  return page.evaluate(
    async ([runId, t]) => {
      const start = performance.now();
      const res = await fetch(`/v1/trace/${encodeURIComponent(runId as string)}`, {
        headers: { authorization: `Bearer ${t}` },
        cache: 'no-store',
      });
      await res.json();
      return performance.now() - start;
    },
    [id, token],
  );
}

/** From a click (switching tabs) to the second frame after it: what a person feels as the page's answer. */
async function clickToFrame(page: Page, samples: number): Promise<number[]> {
  return page.evaluate(async (n) => {
    const out: number[] = [];
    const tabs = ['timeline', 'statechart'];
    for (let i = 0; i < n; i++) {
      const button = document.querySelector<HTMLButtonElement>(`button[data-tab="${tabs[i % 2]}"]`);
      const start = performance.now();
      button?.click();
      await new Promise<void>((r) => requestAnimationFrame(() => requestAnimationFrame(() => r())));
      out.push(performance.now() - start);
      await new Promise((r) => setTimeout(r, 100));
    }
    return out;
  }, samples);
}

export const playgroundGroup: BenchGroup = {
  name: 'playground',
  async run(log) {
    const dir = mkdtempSync(join(tmpdir(), 'anx-bench-playground-'));
    const host = await Host.open({ dataDir: dir, noSync: true });
    const token = randomBytes(32).toString('base64url');
    const api = await startApiServer(host, { port: 0, token });
    const browser = await launchChromium();
    const results: BenchResult[] = [];
    let stop = false;
    try {
      const t = host.teamwork;
      const owner = (await host.createIdentity({ name: 'owner' })).did;
      const enclave = (await t.enclaves.create({ owner, id: 'bench' })).enclave_id;
      const workers: Record<string, string> = {};
      for (const role of ROLES) {
        const did = (await host.createIdentity({ name: role })).did;
        workers[role] = did;
        await t.enclaves.setMember(enclave, owner, { did, role, permissions: ['read', 'write'] });
      }
      // 10,000 events of one run, as a long run's trace would hold them.
      const runId = 'bench-10k';
      const kinds = ['status', 'message', 'artifact', 'tool', 'reasoning'] as const;
      for (let i = 0; i < EVENTS; i += 500) {
        await Promise.all(
          Array.from({ length: 500 }, (_, j) =>
            host.system.emitEvent({
              kind: kinds[(i + j) % kinds.length] as (typeof kinds)[number],
              actor: `run/${runId}`,
              run_id: runId,
              step: `s${(i + j) % 20}`,
              payload: { state: 'stage.progress', n: i + j, note: 'x'.repeat(40) },
            }),
          ),
        );
      }
      const page = await openPlayground(browser, api.url, token);
      const totals: number[] = [];
      const raws: number[] = [];
      const draws: number[] = [];
      for (let i = 0; i < 5; i++) {
        raws.push(await traceFetch(page, runId, token));
        const { total, draw, count } = await timelineLoad(page, runId);
        if (count !== EVENTS) throw new Error(`the timeline drew ${count} events, expected ${EVENTS}`);
        totals.push(total);
        draws.push(draw);
      }
      results.push(
        withRatio(
          'playground.timeline_10k_ms',
          median(totals),
          'ms',
          median(raws),
          `fetch + parse + filter + draw (draw alone ${median(draws).toFixed(0)} ms); raw = fetch + parse of the same trace`,
        ),
      );
      log(`  timeline 10k: ${median(totals).toFixed(0)} ms (trace fetch ${median(raws).toFixed(0)} ms)`);

      // Responsiveness: idle first, then with 100 runs moving (each stage takes its worker 0.3-1.5 s).
      const idle = await clickToFrame(page, 20);
      for (const role of ROLES) {
        const handler: StageHandler = async (ctx) => {
          await new Promise((r) => setTimeout(r, 300 + Math.random() * 1200));
          if (stop) return;
          await ctx.deliver({ value: `${role} ${ctx.task.stage} ${ctx.task.attempt}`, summary: role });
        };
        t.worker(workers[role] as string).onStage(role, handler);
      }
      const before = host.system.events.lastSeq;
      for (let i = 0; i < ACTIVE_RUNS; i++)
        await t.startRun({
          playbook: 'dev-team',
          objective: `run ${i}`,
          owner,
          enclave,
          assignments: workers,
          run_id: `active-${i}`,
        });
      await page.evaluate(() => {
        const sel = document.getElementById('actor-select') as HTMLSelectElement;
        return (window as unknown as { anxPlayground: { loadActors(): Promise<void> } }).anxPlayground
          .loadActors()
          .then(() => {
            sel.value = 'run/active-0';
            sel.dispatchEvent(new Event('change'));
          });
      });
      await page.waitForSelector('#graph g.state.current', { timeout: 60_000 });
      const started = Date.now();
      const busy = await clickToFrame(page, 40);
      const seconds = (Date.now() - started) / 1000;
      const events = host.system.events.lastSeq - before;
      results.push(
        withRatio(
          'playground.click_to_frame_100_runs_p50_ms',
          percentile(busy, 50),
          'ms',
          percentile(idle, 50),
          `p95 ${percentile(busy, 95).toFixed(1)} ms; raw = same page, no active run; ${Math.round(events / seconds)} events/s streamed`,
        ),
      );
      log(
        `  click→frame with ${ACTIVE_RUNS} runs: p50 ${percentile(busy, 50).toFixed(1)} ms (idle ${percentile(idle, 50).toFixed(1)} ms)`,
      );
    } finally {
      stop = true;
      await browser.close();
      await api.close();
      await host.close();
      rmSync(dir, { recursive: true, force: true });
    }
    return results;
  },
};
