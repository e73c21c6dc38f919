// Real headless Chromium for the playground tests and benchmark, and a daemon set up with a dev-team run driven step by step.
import { existsSync, mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { type Browser, chromium, type Page } from 'playwright-core';
import type { ApiClient } from '../../bridge/api/client.ts';
import { playgroundUrl } from '../../bridge/api/playground-routes.ts';

export const CHROMIUM = process.env['ANX_CHROMIUM'] ?? '/usr/bin/chromium';

/** Where screenshots of test runs go (git-ignored). */
export const ARTIFACTS = fileURLToPath(new URL('../../test-artifacts/playground/', import.meta.url));

/** Launches headless Chromium; a missing browser fails loudly instead of skipping the browser tests. */
export async function launchChromium(): Promise<Browser> {
  if (!existsSync(CHROMIUM))
    throw new Error(
      `Chromium not found at ${CHROMIUM}: the playground tests need a real browser. Install Debian's \`chromium\` package (apt-get install chromium) or set ANX_CHROMIUM to its path.`,
    );
  mkdirSync(ARTIFACTS, { recursive: true });
  return chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-dev-shm-usage',
      '--disable-background-networking',
    ],
  });
}

/** Opens the playground of a daemon the way `anx-runtime playground` links it, and waits until it is ready. */
export async function openPlayground(
  browser: Browser,
  apiUrl: string,
  token: string,
  options: { run?: string; width?: number; height?: number } = {},
): Promise<Page> {
  const page = await browser.newPage({
    viewport: { width: options.width ?? 1500, height: options.height ?? 950 },
  });
  const errors: string[] = [];
  page.on('pageerror', (err) => errors.push(err.message));
  await page.goto(playgroundUrl(apiUrl, token, options.run));
  try {
    await page.waitForSelector('body[data-ready="true"]', { timeout: 60_000 });
  } catch (err) {
    throw new Error(
      `the playground did not become ready: ${errors.join('; ') || (await page.textContent('#error'))}`,
      {
        cause: err,
      },
    );
  }
  return page;
}

export const ROLES = ['pm', 'architect', 'developer', 'tester', 'reviewer'] as const;

/** The stages the demo run goes through: the review rejects the first implementation, which is done again. */
export const DEMO_STAGES = [
  'requirements',
  'design',
  'implement',
  'test',
  'review',
  'implement',
  'test',
  'review',
];

export interface TeamSetUp {
  owner: string;
  workers: Record<string, string>;
  enclave: string;
}

/** An owner, five workers in one Enclave: the cast of the dev-team playbook. */
export async function setUpTeam(api: ApiClient, enclave = 'team'): Promise<TeamSetUp> {
  const owner = (await api.post<{ did: string }>('/v1/identities', { name: 'owner' })).did;
  await api.post('/v1/enclaves', { owner, id: enclave, name: 'login page' });
  const workers: Record<string, string> = {};
  for (const role of ROLES) {
    const did = (await api.post<{ did: string }>('/v1/identities', { name: role })).did;
    workers[role] = did;
    await api.post(`/v1/enclaves/${enclave}/members`, {
      as: owner,
      did,
      role,
      permissions: ['read', 'write'],
    });
  }
  return { owner, workers, enclave };
}

/** Starts a dev-team run of the team under a chosen id. */
export async function startDevTeamRun(
  api: ApiClient,
  team: TeamSetUp,
  runId: string,
  objective: string,
): Promise<string> {
  const { run_id } = await api.post<{ run_id: string }>('/v1/runs', {
    playbook: 'dev-team',
    objective,
    owner: team.owner,
    enclave: team.enclave,
    assignments: team.workers,
    run_id: runId,
  });
  return run_id;
}

/** The task open for a worker, once it has one. */
export async function nextTask(
  api: ApiClient,
  did: string,
  timeoutMs = 30_000,
): Promise<{ task_id: string }> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const { tasks } = await api.get<{ tasks: Array<{ task_id: string }> }>(
      `/v1/workers/${encodeURIComponent(did)}/tasks`,
    );
    if (tasks[0] !== undefined) return tasks[0];
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`no task for ${did} within ${timeoutMs} ms`);
}

/** Every row of the virtualised timeline, read by scrolling it from top to bottom. */
export async function timelineRows(page: Page): Promise<string[]> {
  const rows = new Map<number, string>();
  await page.$eval('#tl-list', (el) => {
    el.scrollTop = 0;
  });
  for (let i = 0; i < 1000; i++) {
    await page.waitForTimeout(50);
    const visible = await page.$$eval('#tl-list .tl-row:not([hidden])', (els) =>
      els.map((e) => [Number((e as HTMLElement).dataset['seq']), e.textContent ?? ''] as const),
    );
    for (const [seq, text] of visible) rows.set(seq, text);
    const end = await page.$eval('#tl-list', (el) => {
      const before = el.scrollTop;
      el.scrollTop += el.clientHeight;
      return el.scrollTop === before;
    });
    if (end) break;
  }
  return [...rows.entries()].sort(([a], [b]) => a - b).map(([, text]) => text);
}
