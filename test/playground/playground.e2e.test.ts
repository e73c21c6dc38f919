// The playground in real headless Chromium against a real daemon: live highlight as stages move, timeline = trace, replay, abort, vault diff, topology.
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { request } from 'node:http';
import { promisify } from 'node:util';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI, type DaemonProcess, killHard, startDaemonProcess, waitFor } from '../helpers/daemon.ts';
import { cleanupTempDirs, tempDir } from '../helpers/tmp.ts';
import {
  ARTIFACTS,
  launchChromium,
  nextTask,
  openPlayground,
  setUpTeam,
  startDevTeamRun,
  type TeamSetUp,
  timelineRows,
} from './browser.ts';

const run = promisify(execFile);

let browser: Browser;
let daemon: DaemonProcess;
let dataDir: string;
let token: string;
let apiUrl: string;
let team: TeamSetUp;

beforeAll(async () => {
  browser = await launchChromium();
  dataDir = tempDir('anx-playground-');
  daemon = await startDaemonProcess(`${dataDir}/data`);
  token = readFileSync(`${dataDir}/data/api.token`, 'utf8').trim();
  apiUrl = daemon.api.baseUrl;
  team = await setUpTeam(daemon.api);
}, 120_000);

afterAll(async () => {
  await browser?.close();
  if (daemon !== undefined) await killHard(daemon);
  cleanupTempDirs();
});

/** The id of the state the page marks as current (the innermost active one). */
async function currentState(page: Page): Promise<string[]> {
  return page.$$eval('#graph g.state.current', (gs) => gs.map((g) => g.getAttribute('data-id') ?? ''));
}

async function waitForCurrent(page: Page, id: string): Promise<void> {
  await waitFor(async () => (await currentState(page)).includes(id), 60_000, `the page to highlight ${id}`);
}

async function deliver(role: string, value: string): Promise<void> {
  const did = team.workers[role] as string;
  const task = await nextTask(daemon.api, did);
  await daemon.api.post(`/v1/workers/${encodeURIComponent(did)}/deliver`, {
    task_id: task.task_id,
    value,
    summary: value.split('\n')[0],
  });
}

async function cliTrace(id: string): Promise<string[]> {
  const { stdout } = await run(process.execPath, [CLI, '--data-dir', `${dataDir}/data`, 'trace', id]);
  return stdout.trimEnd().split('\n');
}

describe('playground in Chromium', () => {
  it('asks for the token when opened without one, and refuses a wrong one', async () => {
    const page = await browser.newPage();
    await page.goto(`${apiUrl}/playground/`);
    await page.waitForSelector('#token-form:not([hidden])');
    await page.fill('#token-input', 'not-the-token');
    await page.click('#token-form button[type="submit"]');
    await page.waitForFunction(() => (document.getElementById('token-error')?.textContent ?? '') !== '');
    expect(await page.isHidden('#app')).toBe(true);
    // The API itself answers nothing without the token.
    const res = await fetch(`${apiUrl}/v1/playground/machines`);
    expect(res.status).toBe(401);
    await page.close();
  });

  it('follows a dev-team run stage by stage, matches trace, replays it and aborts it from the page', async () => {
    const run_id = await startDevTeamRun(daemon.api, team, 'run-playground-e2e', 'Ship the login page');
    const page = await openPlayground(browser, apiUrl, token, { run: run_id });
    // The token left the address bar once the page had it.
    expect(page.url()).not.toContain('token=');
    await page.waitForFunction(() => document.getElementById('actor-title')?.textContent?.includes('Run'));
    await waitForCurrent(page, 'run.live.running.requirements.working');
    expect(
      await page.getAttribute('#graph g.state[data-id="run.live.running.requirements"]', 'class'),
    ).toContain('active');
    await page.screenshot({ path: `${ARTIFACTS}e2e-1-requirements.png` });

    await deliver('pm', '# Requirements\n\n- a login form\n- lockout after 5 attempts\n');
    await waitForCurrent(page, 'run.live.running.design.working');
    await deliver('architect', '# Design\n\nLoginForm → AuthService.verify\n');
    await waitForCurrent(page, 'run.live.running.implement.working');
    expect(await page.textContent('#stages tr.current')).toContain('implement');
    await page.screenshot({ path: `${ARTIFACTS}e2e-2-implement.png` });

    // The timeline of the run shows exactly what `anx-runtime trace` prints for it.
    await page.click('button[data-tab="timeline"]');
    await page.waitForSelector('#tl-list .tl-row');
    const expected = await cliTrace(run_id);
    await waitFor(
      async () => (await page.$eval('#tl-list', (el) => (el as HTMLElement).dataset['loaded'])) !== undefined,
      30_000,
      'the timeline to load',
    );
    await waitFor(
      async () => (await page.textContent('#tl-count')) === `${expected.length} events`,
      30_000,
      `the timeline to hold ${expected.length} events`,
    );
    expect(await timelineRows(page)).toEqual(expected);
    // Filters: only status events, and a status filter on stage starts.
    await page.check('#tl-kinds input[data-kind="status"]');
    await page.fill('#tl-status', 'stage.started');
    const started = expected.filter(
      (l) => /^#\d+ \S+ status /.test(l) && l.includes('"state":"stage.started"'),
    );
    await waitFor(
      async () => (await page.textContent('#tl-count')) === `${started.length} of ${expected.length} events`,
      30_000,
      'the filtered count',
    );
    expect(await timelineRows(page)).toEqual(started);
    await page.screenshot({ path: `${ARTIFACTS}e2e-3-timeline.png` });
    await page.fill('#tl-status', '');
    await page.uncheck('#tl-kinds input[data-kind="status"]');

    // Replay: the first step is the pending run, the last is where it is now.
    await page.click('button[data-tab="statechart"]');
    await page.waitForSelector('#replay:not([hidden])');
    await page.click('#replay-first');
    await waitForCurrent(page, 'run.pending');
    await page.click('#replay-next');
    await page.click('#replay-next');
    await waitForCurrent(page, 'run.live.running.requirements.working');
    await page.click('#replay-live');
    await waitForCurrent(page, 'run.live.running.implement.working');

    // Pause and resume from the page: the run parks in paused and comes back to the same stage.
    await page.click('#ctl-pause');
    await waitForCurrent(page, 'run.paused');
    expect((await daemon.api.get<{ state: string }>(`/v1/runs/${run_id}`)).state).toBe('paused');
    await page.click('#ctl-resume');
    await waitForCurrent(page, 'run.live.running.implement.working');

    // Abort from the page: the Owner's control goes through the API like any request.
    page.once('dialog', (d) => void d.accept());
    await page.fill('#ctl-reason', 'stopped from the playground');
    await page.click('#ctl-abort');
    await waitFor(
      async () => (await daemon.api.get<{ state: string }>(`/v1/runs/${run_id}`)).state === 'aborted',
      60_000,
      'the run to be aborted',
    );
    await waitForCurrent(page, 'run.aborted');
    expect(await page.getAttribute('#actor-panel', 'data-run-state')).toBe('aborted');
    expect(await page.isHidden('#controls')).toBe(true);
    const status = await daemon.api.get<{ end_reason: string }>(`/v1/runs/${run_id}`);
    expect(status.end_reason).toContain('stopped from the playground');
    await page.screenshot({ path: `${ARTIFACTS}e2e-4-aborted.png` });
    await page.close();
  });

  it('settles a run waiting for its owner with a takeover action from the page', async () => {
    const run_id = await startDevTeamRun(daemon.api, team, 'run-playground-takeover', 'Take over');
    const pm = team.workers['pm'] as string;
    const task = await nextTask(daemon.api, pm);
    await daemon.api.post(`/v1/workers/${encodeURIComponent(pm)}/fail`, {
      task_id: task.task_id,
      error: 'cannot reach the customer',
      fatal: true,
    });
    const page = await openPlayground(browser, apiUrl, token, { run: run_id });
    await waitForCurrent(page, 'run.live.takeover');
    await page.waitForSelector('#takeover:not([hidden])');
    expect(await page.textContent('#takeover-info')).toContain('requirements');
    // Reassign offers every member of the Enclave with write, not only the workers the run used (pm).
    await page.waitForFunction(
      (did) =>
        Array.from(document.querySelectorAll('#ctl-worker option')).some(
          (o) => (o as HTMLOptionElement).value === did,
        ),
      team.workers['architect'],
      { timeout: 10_000 },
    );
    const firstOption = await page.$eval('#ctl-worker option', (o) => (o as HTMLOptionElement).value);
    expect(firstOption).toBe(pm);
    await page.screenshot({ path: `${ARTIFACTS}e2e-takeover.png` });
    await page.fill('#ctl-content', '# Requirements\n\nwritten by the owner\n');
    await page.click('#ctl-deliver');
    await waitForCurrent(page, 'run.live.running.design.working');
    const status = await daemon.api.get<{ stages: Array<{ stage: string; status: string }> }>(
      `/v1/runs/${run_id}`,
    );
    expect(status.stages.find((s) => s.stage === 'requirements')?.status).toBe('delivered');
    await daemon.api.post(`/v1/runs/${run_id}/control`, { action: 'abort' });
    await page.close();
  });

  it('is linked by `anx-runtime playground` and answers only on loopback names', async () => {
    const { stdout } = await run(process.execPath, [
      CLI,
      '--data-dir',
      `${dataDir}/data`,
      '--json',
      'playground',
      '--run',
      'run-playground-e2e',
    ]);
    const { url } = JSON.parse(stdout) as { url: string };
    expect(url).toBe(`${apiUrl}/playground/#token=${token}&run=run-playground-e2e`);
    const page = await browser.newPage();
    await page.goto(url);
    await page.waitForSelector('body[data-ready="true"]');
    await waitForCurrent(page, 'run.aborted');
    await page.close();
    const res = await fetch(`${apiUrl}/playground/`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-security-policy')).toContain("default-src 'none'");
    expect(res.headers.get('referrer-policy')).toBe('no-referrer');
    // A page fetched under another name (DNS rebinding) is refused.
    const port = new URL(apiUrl).port;
    const rebound = await new Promise<number>((resolve, reject) => {
      const req = request(
        { host: '127.0.0.1', port, path: '/playground/', headers: { host: `evil.example:${port}` } },
        (r) => {
          r.resume();
          resolve(r.statusCode ?? 0);
        },
      );
      req.on('error', reject);
      req.end();
    });
    expect(rebound).toBe(421);
  });

  it('shows the topology and diffs two versions of a vault artifact', async () => {
    const key = 'design/spec.md';
    await daemon.api.post(`/v1/vault/${team.enclave}/put`, {
      as: team.owner,
      key,
      content: 'line one\nline two\nline three\n',
      summary: 'first',
    });
    await daemon.api.post(`/v1/vault/${team.enclave}/put`, {
      as: team.owner,
      key,
      content: 'line one\nline 2\nline three\nline four\n',
      summary: 'second',
    });
    const page = await openPlayground(browser, apiUrl, token);
    await page.click('button[data-tab="topology"]');
    await page.waitForSelector('#topology-agents');
    const agents = await page.$$eval('#topology-agents tr', (rows) =>
      rows.slice(1).map((r) => r.textContent ?? ''),
    );
    expect(agents).toHaveLength(6);
    expect(agents.join('\n')).toContain('reviewer');
    expect(await page.textContent('#topology')).toContain('Enclave login page (team)');
    await page.screenshot({ path: `${ARTIFACTS}e2e-5-topology.png` });

    await page.click('button[data-tab="vault"]');
    await page.waitForSelector(`#vault-artifacts tr[data-key="${key}"]`);
    await page.click(`#vault-artifacts tr[data-key="${key}"]`);
    await page.waitForSelector('#vault-view[data-mode="diff"]');
    const lines = await page.$$eval('#vault-view .diff', (els) => els.map((e) => e.textContent ?? ''));
    expect(lines).toEqual(['  line one', '- line two', '+ line 2', '  line three', '+ line four', '  ']);
    await page.screenshot({ path: `${ARTIFACTS}e2e-6-vault-diff.png` });
    await page.close();
  });

  it('draws the machine of the actor followed last when the graph of the one followed before comes later', async () => {
    const run_id = await startDevTeamRun(daemon.api, team, 'run-playground-race', 'Race');
    const page = await openPlayground(browser, apiUrl, token);
    await page.waitForSelector(`#actor-select option[value="run/${run_id}"]`, { state: 'attached' });
    // The page opens on the run machine's statechart.
    await page.waitForFunction(() =>
      document.getElementById('graph')?.dataset['kind']?.startsWith('playbook/'),
    );
    const runKind = await page.getAttribute('#graph', 'data-kind');
    // A DID's statechart answers late.
    await page.route('**/v1/playground/machines/did', async (route) => {
      await new Promise((r) => setTimeout(r, 1_500));
      await route.continue().catch(() => {});
    });
    await page.selectOption('#actor-select', team.owner);
    await page.selectOption('#actor-select', `run/${run_id}`);
    await page.waitForFunction(() => document.getElementById('actor-title')?.textContent?.includes('Run'));
    await new Promise((r) => setTimeout(r, 2_500));
    expect(await page.getAttribute('#graph', 'data-kind')).toBe(runKind);
    expect(await page.inputValue('#actor-select')).toBe(`run/${run_id}`);
    await page.close();
  }, 60_000);

  it('keeps the Enclave chosen last when the answer for the one chosen before comes later', async () => {
    for (const id of ['race-x', 'race-y']) {
      await daemon.api.post('/v1/enclaves', { owner: team.owner, id, name: id });
      await daemon.api.post(`/v1/vault/${id}/put`, { as: team.owner, key: `${id}/only.txt`, content: id });
    }
    const page = await openPlayground(browser, apiUrl, token);
    await page.click('button[data-tab="vault"]');
    await page.waitForSelector('#vault-enclave option[value="race-y"]', { state: 'attached' });
    // The list of the first choice answers late.
    await page.route('**/v1/vault/race-x/list*', async (route) => {
      await new Promise((r) => setTimeout(r, 1_500));
      await route.continue().catch(() => {});
    });
    await page.selectOption('#vault-enclave', 'race-x');
    await page.selectOption('#vault-enclave', 'race-y');
    await page.waitForSelector('#vault-artifacts tr[data-key="race-y/only.txt"]');
    await new Promise((r) => setTimeout(r, 2_500));
    const keys = await page.$$eval('#vault-artifacts tr[data-key]', (rows) =>
      rows.map((r) => r.getAttribute('data-key')),
    );
    expect(keys).toEqual(['race-y/only.txt']);
    expect(await page.inputValue('#vault-enclave')).toBe('race-y');
    await page.close();
  }, 60_000);

  it("shows a reader's refusal with nothing of the owner's view, diffs a long artifact, and survives a bad deep link", async () => {
    const enclave = 'vault-checks';
    await daemon.api.post('/v1/enclaves', { owner: team.owner, id: enclave, name: 'checks' });
    const writer = (await daemon.api.post<{ did: string }>('/v1/identities', { name: 'write-only' })).did;
    await daemon.api.post(`/v1/enclaves/${enclave}/members`, {
      as: team.owner,
      did: writer,
      role: 'scribe',
      permissions: ['write'],
    });
    // Longer than a browser takes as the arguments of one call (about 120,000).
    const long = Array.from({ length: 160_000 }, (_, i) => `l${i}`);
    const key = 'logs/long.txt';
    await daemon.api.post(`/v1/vault/${enclave}/put`, { as: team.owner, key, content: long.join('\n') });
    long[80_000] = 'changed';
    await daemon.api.post(`/v1/vault/${enclave}/put`, { as: team.owner, key, content: long.join('\n') });

    const page = await openPlayground(browser, apiUrl, token, { run: 'no-such-run' });
    const errors: string[] = [];
    page.on('pageerror', (err) => errors.push(err.message));
    // The bad deep link is said, and the page goes on.
    expect(await page.textContent('#error')).toContain('no-such-run');
    await page.click('button[data-tab="vault"]');
    await page.selectOption('#vault-enclave', enclave);
    await page.waitForSelector(`#vault-artifacts tr[data-key="${key}"]`);
    await page.click(`#vault-artifacts tr[data-key="${key}"]`);
    await page.waitForSelector('#vault-view[data-mode="diff"] .diff.add', { timeout: 60_000 });
    expect(await page.$$eval('#vault-view .diff.add', (els) => els.map((e) => e.textContent))).toEqual([
      '+ changed',
    ]);
    await page.evaluate(() => {
      document.getElementById('error')!.textContent = '';
    });
    await page.selectOption('#vault-as', writer);
    await page.waitForFunction(() => (document.getElementById('error')?.textContent ?? '') !== '');
    expect(await page.textContent('#error')).toContain('may write');
    expect(await page.$$('#vault-artifacts tr')).toHaveLength(0);
    expect(await page.textContent('#vault-view')).toBe('');
    expect(errors).toEqual([]);
    await page.close();
  }, 120_000);
});
