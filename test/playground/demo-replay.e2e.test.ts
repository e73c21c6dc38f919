// `anx-runtime demo --keep`, then a daemon on its data directory: the playground replays the finished demo run from its events.
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { CLI, type DaemonProcess, killHard, startDaemonProcess, waitFor } from '../helpers/daemon.ts';
import { cleanupTempDirs } from '../helpers/tmp.ts';
import { ARTIFACTS, DEMO_STAGES, launchChromium, openPlayground, timelineRows } from './browser.ts';

const run = promisify(execFile);
let browser: Browser;
let daemon: DaemonProcess | undefined;
let dataDir = '';
let runId = '';

beforeAll(async () => {
  browser = await launchChromium();
  const { stdout, stderr } = await run(process.execPath, [CLI, 'demo', '--keep'], { timeout: 120_000 });
  dataDir = /data directory kept: (\S+)/.exec(stdout)?.[1] ?? '';
  runId = /^run\s+(\S+)/m.exec(stderr)?.[1] ?? '';
  if (dataDir === '' || runId === '')
    throw new Error(`demo output without run or data directory:\n${stdout}\n${stderr}`);
  daemon = await startDaemonProcess(dataDir);
}, 180_000);

afterAll(async () => {
  await browser?.close();
  if (daemon !== undefined) await killHard(daemon);
  if (dataDir !== '') (await import('node:fs')).rmSync(dataDir, { recursive: true, force: true });
  cleanupTempDirs();
});

async function current(page: Page): Promise<string[]> {
  return page.$$eval('#graph g.state.current', (gs) => gs.map((g) => g.getAttribute('data-id') ?? ''));
}

it('replays the demo run step by step: every stage, the rejected review, the rollback, completion', async () => {
  const d = daemon as DaemonProcess;
  const token = readFileSync(`${dataDir}/api.token`, 'utf8').trim();
  const page = await openPlayground(browser, d.api.baseUrl, token, { run: runId });
  await waitFor(async () => (await current(page)).includes('run.completed'), 60_000, 'the completed run');
  await page.waitForSelector('#replay:not([hidden])');
  await page.click('#replay-first');
  const seen: string[] = [];
  const steps = Number(await page.getAttribute('#replay-range', 'max')) + 1;
  for (let i = 0; i < steps; i++) {
    const ids = await current(page);
    seen.push(
      ids.find((id) => id.endsWith('.working'))?.split('.')[3] ?? ids[0]?.replace(/^run\./, '') ?? '',
    );
    if (i < steps - 1) await page.click('#replay-next');
  }
  const stages = seen.filter((s) => ['requirements', 'design', 'implement', 'test', 'review'].includes(s));
  expect(stages).toEqual(DEMO_STAGES);
  expect(seen[0]).toBe('pending');
  expect(seen.at(-1)).toBe('completed');
  expect(seen).toContain('live.route');
  await page.click('#replay-first');
  for (let i = 0; i < 7; i++) await page.click('#replay-next');
  expect(await page.textContent('#replay-label')).toContain('stage.rejected');
  await page.screenshot({ path: `${ARTIFACTS}demo-replay-rejected.png` });

  // The demo's timeline in the page is its trace, and the vault holds its Delivery Manifest.
  const { stdout } = await run(process.execPath, [CLI, '--data-dir', dataDir, 'trace', runId]);
  await page.click('button[data-tab="timeline"]');
  const expected = stdout.trimEnd().split('\n');
  await waitFor(
    async () => (await page.textContent('#tl-count')) === `${expected.length} events`,
    30_000,
    'the timeline',
  );
  expect(await timelineRows(page)).toEqual(expected);
  await page.click('button[data-tab="vault"]');
  await page.waitForSelector(`#vault-run option[value="${runId}"]`, { state: 'attached' });
  await page.selectOption('#vault-run', runId);
  await page.waitForSelector('#vault-view[data-mode="manifest"]');
  expect(await page.textContent('#vault-view')).toContain('review/report.md');
  await page.close();
});
