// `npx tsx test/playground/screenshots.ts [DIR]`: takes the screenshots of docs/playground.md from a real daemon and a real dev-team run.
import { mkdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Page } from 'playwright-core';
import { killHard, startDaemonProcess, waitFor } from '../helpers/daemon.ts';
import { cleanupTempDirs, tempDir } from '../helpers/tmp.ts';
import { launchChromium, nextTask, openPlayground, setUpTeam, startDevTeamRun } from './browser.ts';

const out = process.argv[2] ?? fileURLToPath(new URL('../../docs/playground/', import.meta.url));
mkdirSync(out, { recursive: true });
const dataDir = `${tempDir('anx-shots-')}/data`;
const daemon = await startDaemonProcess(dataDir);
const browser = await launchChromium();
try {
  const api = daemon.api;
  const team = await setUpTeam(api);
  const run_id = await startDevTeamRun(api, team, 'login-page', 'Ship the login page');
  const act = async (role: string, path: 'deliver' | 'reject', body: Record<string, unknown>) => {
    const did = team.workers[role] as string;
    const task = await nextTask(api, did);
    await api.post(`/v1/workers/${encodeURIComponent(did)}/${path}`, { task_id: task.task_id, ...body });
  };
  await act('pm', 'deliver', {
    value: '# Requirements\n\n- a login form with e-mail and password\n- lock out after 5 failed attempts\n',
    summary: 'Requirements',
  });
  await act('architect', 'deliver', {
    value: '# Design\n\nLoginForm → AuthService.verify → SessionStore\n',
    summary: 'Design',
  });
  await act('developer', 'deliver', {
    value:
      'diff --git a/login.ts b/login.ts\n+export function login(email, password) {\n+  return auth.verify(email, password);\n+}\n',
    summary: 'login form',
  });
  await act('tester', 'deliver', { value: '# Test report\n\n12/12 passed\n', summary: '12/12 passed' });
  await act('reviewer', 'reject', {
    reason: 'no rate limiting on failed logins: add a lockout after 5 attempts',
  });
  await act('developer', 'deliver', {
    value:
      'diff --git a/login.ts b/login.ts\n+export function login(email, password) {\n+  limiter.check(email);\n+  return auth.verify(email, password);\n+}\n',
    summary: 'login form with lockout',
  });

  const token = readFileSync(`${dataDir}/api.token`, 'utf8').trim();
  const page: Page = await openPlayground(browser, api.baseUrl, token, {
    run: run_id,
    width: 1600,
    height: 900,
  });
  const current = (id: string) =>
    waitFor(
      async () =>
        (
          await page.$$eval('#graph g.state.current', (g) => g.map((e) => e.getAttribute('data-id')))
        ).includes(id),
      60_000,
      id,
    );
  await current('run.live.running.test.working');
  await page.$eval('#graph', (el) => {
    el.scrollLeft = 180;
  });
  await page.screenshot({ path: `${out}statechart.png` });

  await page.click('#replay-first');
  for (let i = 0; i < 6; i++) await page.click('#replay-next');
  await page.waitForTimeout(200);
  await page.screenshot({ path: `${out}replay.png` });
  await page.click('#replay-live');

  await page.click('button[data-tab="timeline"]');
  await page.waitForSelector('#tl-list .tl-row');
  await page.waitForTimeout(300);
  await page.screenshot({ path: `${out}timeline.png` });

  await page.click('button[data-tab="topology"]');
  await page.waitForSelector('#topology-agents');
  await page.screenshot({ path: `${out}topology.png` });

  await page.click('button[data-tab="vault"]');
  await page.waitForSelector('#vault-artifacts tr[data-key="impl/diff.patch"]');
  await page.click('#vault-artifacts tr[data-key="impl/diff.patch"]');
  await page.waitForSelector('#vault-view[data-mode="diff"]');
  await page.screenshot({ path: `${out}vault-diff.png` });

  await act('tester', 'deliver', {
    value: '# Test report\n\n14/14 passed, incl. lockout after 5 attempts\n',
    summary: '14/14 passed',
  });
  await act('reviewer', 'deliver', { value: '# Review\n\nApproved.\n', summary: 'Approved' });
  await waitFor(
    async () => {
      try {
        await api.get(`/v1/runs/${run_id}/manifest`);
        return true;
      } catch {
        return false;
      }
    },
    60_000,
    'the manifest',
  );
  await page.selectOption('#vault-run', run_id).catch(async () => {
    await page.click('button[data-tab="topology"]');
    await page.click('button[data-tab="vault"]');
    await page.waitForSelector(`#vault-run option[value="${run_id}"]`, { state: 'attached' });
    await page.selectOption('#vault-run', run_id);
  });
  await page.waitForSelector('#vault-view[data-mode="manifest"]');
  await page.screenshot({ path: `${out}manifest.png` });
  process.stdout.write(`screenshots in ${out}\n`);
} finally {
  await browser.close();
  await killHard(daemon);
  cleanupTempDirs();
}
