import * as path from 'node:path';
import type { Page } from 'playwright-core';
import { chromiumPath, launchBrowser, SCREENSHOT_DIR, type TestBrowser } from './support/browser';
import { writeDemoCanvas } from './support/demo-canvas';
import { http, startServer, type TestServer } from './support/harness';

type Json = Record<string, any>;
/** The page's DOM inside `page.evaluate` callbacks (this project compiles without the DOM lib). */
declare const document: any;

/**
 * The dashboard in real headless Chromium (Debian's `chromium` through playwright-core) against a real server with
 * API_TOKEN set: sign in, start a batch from the form, watch the bars reach 100 %, open a result, see a failed
 * node's error, cancel a batch from its page, reload mid-batch. Every test saves a screenshot to artifacts/.
 */
const executable = chromiumPath();
if (!executable) {
  process.stderr.write(
    'dashboard browser tests SKIPPED: Chromium not found (apt-get install -y chromium, or set CHROMIUM_PATH)\n',
  );
}
const TOKEN = 'dashboard-token-0123456789';

(executable ? describe : describe.skip)('dashboard (headless Chromium)', () => {
  jest.setTimeout(90_000);
  let server: TestServer;
  /** Nodes that take 1.5 s each: batches stay observable mid-way on any machine. */
  let slow: TestServer;
  let browser: TestBrowser;
  let page: Page;
  /** Every request the page made, and every console error or CSP violation. */
  const requests: string[] = [];
  const consoleErrors: string[] = [];

  const api = <T = Json>(method: string, route: string, body?: unknown) =>
    http<T>(method, `${server.url}${route}`, body, { authorization: `Bearer ${TOKEN}` });
  const shot = (name: string) =>
    page.screenshot({ path: path.join(SCREENSHOT_DIR, `${name}.png`), fullPage: true });
  const overall = () => page.locator('#overall');
  const valueOf = async (selector: string) =>
    Number(await page.locator(selector).getAttribute('aria-valuenow'));

  beforeAll(async () => {
    server = await startServer(
      { API_TOKEN: TOKEN, AGENT_LATENCY_MS: '150-400', SHUTDOWN_GRACE_MS: '0' },
      (vault) => {
        writeDemoCanvas(vault, 'Demo/colors.canvas', { '1': 4, '4': 3, '#8844ff': 2 });
        writeDemoCanvas(vault, 'Demo/mixed.canvas', { '2': 3 }, 2);
      },
    );
    slow = await startServer(
      { API_TOKEN: TOKEN, AGENT_LATENCY_MS: '1500', SHUTDOWN_GRACE_MS: '0' },
      (vault) => writeDemoCanvas(vault, 'Demo/slow.canvas', { '6': 10 }),
    );
    browser = await launchBrowser(executable!);
    page = await browser.context.newPage();
    page.on('request', (r) => requests.push(r.url()));
    page.on('console', (m) => {
      if (m.type() === 'error') consoleErrors.push(m.text());
    });
    page.on('pageerror', (e) => consoleErrors.push(e.message));
  });
  afterAll(async () => {
    await browser?.close();
    await server?.close();
    await slow?.close();
  });

  it('asks for the token, and signs in with the login form', async () => {
    await page.goto(`${server.url}/`);
    await page.getByRole('heading', { name: 'canvas-batch' }).waitFor();
    await page.getByLabel('API token').fill('wrong');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByText('That token is not valid.').waitFor();
    await page.getByLabel('API token').fill(TOKEN);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'Recent tasks' }).waitFor();
    await shot('01-signed-in');
    const cookies = await browser.context.cookies(server.url);
    expect(cookies.find((c) => c.name === 'canvas_batch_session')).toMatchObject({
      httpOnly: true,
      sameSite: 'Strict',
    });
  });

  it('starts a batch from the form (nodes by colour, an agent per group), bars reach 100 %, a result opens', async () => {
    await page.getByRole('link', { name: 'New batch' }).click();
    await page.getByLabel('Canvas').selectOption('Demo/colors.canvas');
    await page.getByRole('button', { name: 'All nodes of colour 1 (red)' }).click();
    await page.getByLabel('Agent', { exact: true }).selectOption('oral-explanation');
    await page.getByRole('button', { name: 'Add selected nodes as a group' }).click();
    await page.getByRole('button', { name: 'All nodes of colour 4 (green)' }).click();
    // one more node by hand
    await page.getByRole('checkbox', { name: /Concept #8844ff\.0/ }).check();
    await page.getByLabel('Agent', { exact: true }).selectOption('basic-decomposition');
    await page.getByRole('button', { name: 'Add selected nodes as a group' }).click();
    const groups = page.locator('#groups-table tbody tr');
    await expect(groups.count()).resolves.toBe(2);
    await expect(groups.nth(1).innerText()).resolves.toMatch(/Group 2\s+basic-decomposition\s+4/);
    await shot('02-new-batch-form');
    await page.getByRole('button', { name: 'Start batch' }).click();
    await page.waitForURL(/#\/tasks\/[0-9a-f-]{36}$/);
    const taskId = page.url().split('/').pop()!;

    await page.locator('#overall[aria-valuenow="100"]').waitFor({ timeout: 20_000 });
    await page.locator('#task-status').getByText('completed').waitFor();
    expect(await valueOf('#group-1')).toBe(100);
    expect(await valueOf('#group-2')).toBe(100);
    await expect(overall().getAttribute('aria-valuetext')).resolves.toBe('100 % (8 of 8)');
    await expect(page.locator('#results-list li').count()).resolves.toBe(8);
    await expect(page.getByRole('button', { name: 'Cancel batch' }).isDisabled()).resolves.toBe(true);

    const status = await api('GET', `/parallel/status/${taskId}`);
    expect(status.body).toMatchObject({
      status: 'completed',
      canvas_path: 'Demo/colors.canvas',
      groups: [
        { group_id: 1, agent_type: 'oral-explanation', completed_nodes: 4 },
        { group_id: 2, agent_type: 'basic-decomposition', completed_nodes: 4 },
      ],
    });
    expect(status.body.groups[1].results.map((r: Json) => r.node_id).sort()).toEqual(
      ['c#8844ffn0', 'c4n0', 'c4n1', 'c4n2'].sort(),
    );

    const first = page.locator('#results-list a').first();
    const file = (await first.getAttribute('data-preview'))!;
    await first.click();
    const preview = page.locator('#preview-body');
    await preview.waitFor();
    // the preview is the file's markdown, rendered
    const raw = await api<string>('GET', `/files?path=${encodeURIComponent(file)}`);
    const firstHeading = /^#+\s+(.+)$/m.exec(raw.body)![1].replace(/\*\*/g, '');
    await expect(preview.locator('h3, h4').first().innerText()).resolves.toBe(firstHeading);
    await expect(page.locator('#preview').evaluate((el) => el === document.activeElement)).resolves.toBe(
      true,
    );
    await shot('03-batch-completed-with-preview');
  });

  it("shows a failed node's error type and message", async () => {
    const started = await api('POST', '/parallel/execute', {
      canvas_path: 'Demo/mixed.canvas',
      groups: [
        {
          group_id: 'mix',
          agent_type: 'oral-explanation',
          node_ids: ['c2n0', 'c2n1', 'c2n2', 'missing0', 'missing1'],
        },
      ],
    });
    await page.goto(`${server.url}/#/tasks/${started.body.task_id}`);
    await page.locator('#task-status').getByText('partial failure').waitFor({ timeout: 20_000 });
    const rows = page.locator('#failures-table tbody tr');
    await expect(rows.count()).resolves.toBe(2);
    const text = await rows.first().innerText();
    expect(text).toMatch(/^missing\d\s+mix\s+NODE_CONTENT_MISSING\s+\S/);
    const stored = await api('GET', `/parallel/status/${started.body.task_id}`);
    const message = stored.body.groups[0].errors[0].error_message as string;
    await page.getByText(message).first().waitFor();
    await expect(overall().getAttribute('aria-valuetext')).resolves.toBe('100 % (5 of 5)');
    await shot('04-failed-nodes');
  });

  const slowAuth = { authorization: `Bearer ${TOKEN}` };
  /**
   * Signs the browser in on one of the two servers (`/?access_token=` trades the token for a session): sessions belong
   * to the server that made them, while the cookie belongs to the host, so switching servers means signing in again.
   */
  const signIn = async (url: string): Promise<void> => {
    await page.goto(`${url}/?access_token=${TOKEN}`);
    await page.waitForURL((u) => !u.search.includes('access_token'));
  };
  const startSlow = async (nodes: number, maxConcurrent: number): Promise<string> => {
    const started = await http<Json>(
      'POST',
      `${slow.url}/parallel/execute`,
      {
        canvas_path: 'Demo/slow.canvas',
        max_concurrent: maxConcurrent,
        groups: [
          {
            group_id: 1,
            agent_type: 'oral-explanation',
            node_ids: Array.from({ length: nodes }, (_, i) => `c6n${i}`),
          },
        ],
      },
      slowAuth,
    );
    expect(started.status).toBe(202);
    return started.body.task_id as string;
  };

  it('cancels a running batch from its page', async () => {
    await signIn(slow.url);
    const taskId = await startSlow(10, 1);
    await page.goto(`${slow.url}/#/tasks/${taskId}`);
    await page.locator('#live').getByText('Live').waitFor();
    await page.getByRole('button', { name: 'Cancel batch' }).click();
    await page
      .locator('#live')
      .getByText(/Cancel requested/)
      .waitFor();
    await page.locator('#task-status').getByText('cancelled').waitFor({ timeout: 20_000 });
    await expect(page.getByRole('button', { name: 'Cancel batch' }).isDisabled()).resolves.toBe(true);
    await expect(overall().getAttribute('aria-valuenow')).resolves.toBe('100');
    await shot('05-cancelled');
    const status = await http<Json>('GET', `${slow.url}/parallel/status/${taskId}`, undefined, slowAuth);
    expect(status.body.status).toBe('cancelled');
    expect(status.body.skipped_nodes).toBeGreaterThan(0);
    await expect(page.locator('#group-1-counts').innerText()).resolves.toBe(
      `${status.body.completed_nodes} done, 0 failed, ${status.body.skipped_nodes} skipped`,
    );
  });

  it('keeps following after a reload in the middle of a batch', async () => {
    const taskId = await startSlow(9, 3);
    await page.goto(`${slow.url}/#/tasks/${taskId}`);
    await page.waitForFunction(
      () => Number(document.querySelector('#overall')?.getAttribute('aria-valuenow')) > 0,
    );
    const before = await http<Json>('GET', `${slow.url}/parallel/status/${taskId}`, undefined, slowAuth);
    expect(before.body.status).toBe('running');
    await page.reload();
    await page.locator('#overall').waitFor();
    // replayed from the event log: at least what was done before the reload, then live to the end
    const seen = before.body.completed_nodes as number;
    expect(seen).toBeGreaterThan(0);
    await page.waitForFunction(
      (n) =>
        Number(
          /\((\d+) of/.exec(document.querySelector('#overall')?.getAttribute('aria-valuetext') ?? '')?.[1],
        ) >= n,
      seen,
    );
    await shot('06-after-reload');
    await page.locator('#overall[aria-valuenow="100"]').waitFor({ timeout: 30_000 });
    await page.locator('#task-status').getByText('completed').waitFor();
    await expect(page.locator('#results-list li').count()).resolves.toBe(9);
  });

  it('lists recent tasks; works by keyboard; made no request to another host and no console error', async () => {
    await signIn(server.url);
    await page.goto(`${server.url}/#/`);
    const rows = page.locator('#tasks-table tbody tr');
    await rows.first().waitFor();
    await expect(rows.count()).resolves.toBe(2);
    await expect(rows.nth(0).innerText()).resolves.toMatch(
      /Demo\/mixed\.canvas\s+partial failure\s+100 % · 5\/5\s+3\/5\s+2/,
    );
    await expect(rows.nth(1).innerText()).resolves.toMatch(
      /Demo\/colors\.canvas\s+completed\s+100 % · 8\/8\s+8\/8\s+0/,
    );
    await shot('07-tasks');
    // from a fresh load: the skip link first, then the main navigation
    await page.reload();
    await rows.first().waitFor();
    await page.keyboard.press('Tab');
    await expect(page.evaluate(() => document.activeElement?.textContent)).resolves.toBe('Skip to content');
    await page.keyboard.press('Tab');
    await page.keyboard.press('Tab');
    await page.keyboard.press('Tab');
    await expect(page.evaluate(() => document.activeElement?.textContent)).resolves.toBe('New batch');
    await page.keyboard.press('Enter');
    await page.getByLabel('Canvas').waitFor();
    // every form control has an accessible name
    const unnamed = await page.evaluate(() =>
      [...document.querySelectorAll('input, select, button')]
        .filter((el) => !el.labels?.length && !el.getAttribute('aria-label') && !el.textContent?.trim())
        .map((el) => el.outerHTML),
    );
    expect(unnamed).toEqual([]);
    const hosts = new Set(requests.map((u) => new URL(u).origin));
    expect([...hosts].filter((o) => !o.startsWith('http://127.0.0.1:'))).toEqual([]);
    expect(consoleErrors.filter((e) => !/401 \(Unauthorized\)/.test(e))).toEqual([]);
  });
});

if (!executable && process.env.REQUIRE_SERVICES === '1') {
  it('Chromium is installed (REQUIRE_SERVICES=1)', () => {
    throw new Error(
      'Chromium is required (REQUIRE_SERVICES=1): apt-get install -y chromium, or set CHROMIUM_PATH',
    );
  });
}
