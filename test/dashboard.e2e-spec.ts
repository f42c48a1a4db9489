import { writeFileSync } from 'node:fs';
import * as path from 'node:path';
import type { Locator, Page } from 'playwright-core';
import {
  chromiumPath,
  DOCS_SCREENSHOT_DIR,
  launchBrowser,
  recordCspViolations,
  SCREENSHOT_DIR,
  type TestBrowser,
  UPDATE_DOCS_SCREENSHOTS,
} from './support/browser';
import { writeDemoCanvas } from './support/demo-canvas';
import { http, startServer, type TestServer } from './support/harness';

type Json = Record<string, any>;
/** The page's DOM inside `page.evaluate` callbacks (this project compiles without the DOM lib). */
declare const document: any;
declare const window: any;
declare const getComputedStyle: (el: any) => any;

/**
 * The dashboard in real headless Chromium (Debian's `chromium` through playwright-core) against a real server with
 * API_TOKEN set: sign in, start a batch from the form, watch the bars reach 100 %, open a result (math, table,
 * callout, footnote; no script runs), see a failed node's error, cancel a batch from its page (its bar shows what was
 * skipped), reload mid-batch, and a server without API_TOKEN (no "Sign out"). Every test saves a screenshot to
 * artifacts/; with UPDATE_SCREENSHOTS=1 the ones of docs/screenshots/ are rewritten too.
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
  /** A full-page screenshot to artifacts/, and to docs/screenshots/ as `docs` when UPDATE_SCREENSHOTS=1. */
  const shot = async (name: string, docs?: string) => {
    await page.screenshot({ path: path.join(SCREENSHOT_DIR, `${name}.png`), fullPage: true });
    if (docs && UPDATE_DOCS_SCREENSHOTS) {
      await page.screenshot({ path: path.join(DOCS_SCREENSHOT_DIR, `${docs}.png`), fullPage: true });
    }
  };
  /**
   * The widths of a bar's segments as shares of its track, once they match `counts` (the bar is drawn from events:
   * it may lag a moment behind the stored status).
   */
  const expectSegments = async (
    bar: Locator,
    counts: { completed: number; failed: number; skipped: number; total: number },
  ) => {
    const expected: Record<string, number> = {
      completed: counts.completed / counts.total,
      failed: counts.failed / counts.total,
      skipped: counts.skipped / counts.total,
    };
    /** Each segment's width and the width it should have (its share of the track), in pixels. */
    const measure = (el: any, wanted: Record<string, number>) => {
      const track = el.querySelector('.track').clientWidth as number;
      return Object.entries(wanted).map(([kind, share]) => ({
        kind,
        px: Math.round(el.querySelector(`.seg.${kind}`).getBoundingClientRect().width * 10) / 10,
        expected: Math.round(share * track * 10) / 10,
      }));
    };
    const handle = await bar.elementHandle();
    // whole pixels: a narrow bar rounds each segment by up to a pixel
    await page
      .waitForFunction(
        ([el, wanted]) => {
          const track = el.querySelector('.track').clientWidth as number;
          return Object.entries(wanted as Record<string, number>).every(
            ([kind, share]) =>
              Math.abs(el.querySelector(`.seg.${kind}`).getBoundingClientRect().width - share * track) <= 1.5,
          );
        },
        [handle, expected] as const,
        { timeout: 15_000 },
      )
      .catch(() => undefined); // the assertion below says what differs
    for (const { kind, px, expected: want } of await bar.evaluate(measure, expected)) {
      const off = Math.abs(px - want) <= 1.5 ? 'within 1.5 px' : `${px} px where ${want} px were due`;
      expect({ kind, off }).toEqual({ kind, off: 'within 1.5 px' });
    }
  };
  const overall = () => page.locator('#overall');
  const valueOf = async (selector: string) =>
    Number(await page.locator(selector).getAttribute('aria-valuenow'));

  beforeAll(async () => {
    server = await startServer(
      { API_TOKEN: TOKEN, AGENT_LATENCY_MS: '150-400', SHUTDOWN_GRACE_MS: '0' },
      (vault) => {
        writeDemoCanvas(vault, 'Demo/colors.canvas', { '1': 4, '4': 3, '#8844ff': 2 });
        writeDemoCanvas(vault, 'Demo/mixed.canvas', { '2': 3 }, 2);
        writeDemoCanvas(vault, 'Demo/plan.canvas', { '3': 3, '5': 3 });
      },
    );
    slow = await startServer(
      { API_TOKEN: TOKEN, AGENT_LATENCY_MS: '1500', SHUTDOWN_GRACE_MS: '0' },
      (vault) => writeDemoCanvas(vault, 'Demo/slow.canvas', { '6': 10 }),
    );
    browser = await launchBrowser(executable!);
    await recordCspViolations(browser.context);
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

  /** The batch the form starts: its results are previewed, its generated nodes hidden from the form. */
  let formTask = '';

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
    // the estimate beside Start, of the two groups as they are now (the offline provider costs nothing)
    await page
      .locator('#estimate', {
        hasText: /^Estimate: 8 node\(s\) · [\d,]+ in \+ [\d,]+ out tokens at most · \$0 · /,
      })
      .waitFor();
    await shot('02-new-batch-form', 'dashboard-new-batch');
    await page.getByRole('button', { name: 'Start batch' }).click();
    await page.waitForURL(/#\/tasks\/[0-9a-f-]{36}$/);
    const taskId = page.url().split('/').pop()!;
    formTask = taskId;

    await page.locator('#overall[aria-valuenow="100"]').waitFor({ timeout: 20_000 });
    await page.locator('#task-status').getByText('completed').waitFor();
    expect(await valueOf('#group-1')).toBe(100);
    expect(await valueOf('#group-2')).toBe(100);
    await expect(overall().getAttribute('aria-valuetext')).resolves.toBe(
      '100 % (8 of 8: 8 completed, 0 failed, 0 skipped)',
    );
    await expectSegments(overall(), { completed: 8, failed: 0, skipped: 0, total: 8 });
    await expect(page.locator('#results-list li').count()).resolves.toBe(8);
    // a finished task has no cancel button
    await expect(page.locator('#cancel').isHidden()).resolves.toBe(true);

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
    await shot('03-batch-completed-with-preview', 'dashboard-batch-completed');
  });

  it('suggests groups (POST /parallel/plan), keeps them editable, re-estimates, and starts what the learner chose', async () => {
    await page.getByRole('link', { name: 'New batch' }).click();
    await page.getByLabel('Canvas').selectOption('Demo/plan.canvas');
    const plan = await api('POST', '/parallel/plan', { canvas_path: 'Demo/plan.canvas' });
    expect(plan.status).toBe(200);
    const planned = plan.body.groups as Json[];
    await page.getByRole('button', { name: 'Suggest groups' }).click();
    await page.locator('#plan-status', { hasText: `${planned.length} group(s) suggested` }).waitFor();
    const rows = page.locator('#groups-table tbody tr');
    await expect(rows.count()).resolves.toBe(planned.length);
    // each suggested group's agent is a choice, preset to the plan's
    const firstAgent = page.getByLabel('Agent of group 1');
    await expect(firstAgent.inputValue()).resolves.toBe(planned[0].agent_type);
    const nodes = planned.reduce((n, g) => n + (g.node_ids as string[]).length, 0);
    await page.locator('#estimate', { hasText: new RegExp(`^Estimate: ${nodes} node\\(s\\)`) }).waitFor();
    // the learner changes the first group's agent: the estimate is asked again, for the groups as they are now
    const chosen = planned[0].agent_type === 'memory-anchor' ? 'oral-explanation' : 'memory-anchor';
    const asked = page.waitForRequest(
      (r) =>
        r.url().endsWith('/parallel/estimate') &&
        (JSON.parse(r.postData() ?? '{}') as { groups: Json[] }).groups[0]?.agent_type === chosen,
    );
    await firstAgent.selectOption(chosen);
    await asked;
    await page.getByRole('button', { name: 'Start batch' }).click();
    await page.waitForURL(/#\/tasks\/[0-9a-f-]{36}$/);
    const taskId = page.url().split('/').pop()!;
    await page.locator('#task-status').getByText('completed').waitFor({ timeout: 20_000 });
    const status = await api('GET', `/parallel/status/${taskId}`);
    expect((status.body.groups as Json[]).map((g) => [g.agent_type, g.total_nodes])).toEqual(
      planned.map((g, i) => [i === 0 ? chosen : g.agent_type, (g.node_ids as string[]).length]),
    );
  });

  it('previews a result with math (KaTeX), a table, a callout and a footnote; its raw HTML never runs', async () => {
    await page.goto(`${server.url}/#/tasks/${formTask}`);
    const first = page.locator('#results-list a').first();
    await first.waitFor();
    const file = (await first.getAttribute('data-preview'))!;
    // the result, as a learner might have edited it in Obsidian
    writeFileSync(
      path.join(server.vault, file),
      [
        '---',
        'tags: [calculus]',
        '---',
        '# The derivative',
        '',
        'The derivative of $f$ at $x_0$ is the limit of the difference quotient[^def]:',
        '',
        '$$',
        "f'(x_0)=\\lim_{h\\to 0}\\frac{f(x_0+h)-f(x_0)}{h}",
        '$$',
        '',
        '> [!note] Differentiable implies continuous',
        '> The converse fails: $|x|$ at $x=0$.',
        '',
        '| Function | Derivative |',
        '|:--|:-:|',
        '| $x^n$ | $n x^{n-1}$ |',
        '| $\\sin x$ | $\\cos x$ |',
        '',
        'See also [[Chain rule]] and ![[Limits]].',
        '',
        'Raw HTML stays text: <script>window.__pwned = 1</script> <img src=x onerror="window.__pwned = 2">',
        '',
        '[^def]: Newton and Leibniz, independently.',
      ].join('\n'),
    );
    await first.click();
    const body = page.locator('#preview-body');
    await body.locator('.katex').first().waitFor();
    // math: inline and display, laid out by KaTeX's stylesheet and fonts (served by the server)
    expect(await body.locator('.katex').count()).toBeGreaterThanOrEqual(7);
    await expect(body.locator('.katex-display').count()).resolves.toBe(1);
    await expect(body.locator('.katex-display annotation').textContent()).resolves.toContain('\\lim_{h');
    // KaTeX's fonts, served by the server from the katex package, are in use
    await page.waitForFunction(() =>
      [...document.fonts].some((f: any) => f.family === 'KaTeX_Main' && f.status === 'loaded'),
    );
    const layout = await body.evaluate((el) => ({
      // KaTeX's positions arrive as data-style and are set through the CSSOM
      struts: [...el.querySelectorAll('.katex .strut')].filter((s) => s.style.height !== '').length,
      hiddenMathml: getComputedStyle(el.querySelector('.katex-mathml')).position,
      font: getComputedStyle(el.querySelector('.katex .mathnormal')).fontFamily,
    }));
    expect(layout.struts).toBeGreaterThanOrEqual(7);
    expect(layout.hiddenMathml).toBe('absolute');
    expect(layout.font).toContain('KaTeX_Math');
    // headings start at level 3, the table has its columns, the callout its title, the footnote its note
    await expect(body.locator('h3').first().innerText()).resolves.toBe('The derivative');
    await expect(body.locator('table th').allInnerTexts()).resolves.toEqual(['Function', 'Derivative']);
    await expect(body.locator('table td.align-center .katex').count()).resolves.toBe(2);
    await expect(body.locator('.callout.callout-note .callout-title').innerText()).resolves.toBe(
      'Differentiable implies continuous',
    );
    await expect(body.locator('.callout .katex').count()).resolves.toBe(2);
    await expect(body.locator('.wikilink').innerText()).resolves.toBe('Chain rule');
    await expect(body.locator('.embed').innerText()).resolves.toBe('Embedded note: Limits');
    await expect(body.locator('.footnotes li').innerText()).resolves.toContain('Newton and Leibniz');
    // a footnote link scrolls to its note without leaving the task's page
    const taskUrl = page.url();
    await body.locator('sup.footnote-ref a').click();
    await expect(page.evaluate(() => document.activeElement?.id)).resolves.toBe('fn-preview-1');
    expect(page.url()).toBe(taskUrl);
    // raw HTML: shown as text, never as live elements, never run
    await expect(body.innerText()).resolves.toContain(
      'Raw HTML stays text: <script>window.__pwned = 1</script> <img src=x onerror="window.__pwned = 2">',
    );
    await expect(body.locator('script, img, iframe, [onerror]').count()).resolves.toBe(0);
    await expect(page.evaluate(() => (window as unknown as { __pwned?: number }).__pwned)).resolves.toBe(
      undefined,
    );
    // and nothing the page did broke its Content Security Policy
    await expect(
      page.evaluate(() => (window as unknown as { __cspViolations: string[] }).__cspViolations),
    ).resolves.toEqual([]);
    expect(consoleErrors.filter((e) => /Content Security Policy|Refused to/i.test(e))).toEqual([]);
    await page.locator('#preview').scrollIntoViewIfNeeded();
    await page.locator('#preview').screenshot({ path: path.join(SCREENSHOT_DIR, '03b-preview-math.png') });
    if (UPDATE_DOCS_SCREENSHOTS) {
      await page.locator('#preview').screenshot({ path: path.join(DOCS_SCREENSHOT_DIR, 'preview-math.png') });
    }
  });

  it('leaves generated nodes out of the node picker unless "show generated nodes" is ticked', async () => {
    const listing = await api('GET', '/canvases/nodes?path=Demo/colors.canvas');
    const nodes = (listing.body.nodes as Json[]).filter((n) => n.type !== 'group');
    const generated = nodes.filter((n) => n.result).length;
    expect(generated).toBeGreaterThanOrEqual(8);
    await page.goto(`${server.url}/#/new`);
    await page.getByLabel('Canvas').selectOption('Demo/colors.canvas');
    const boxes = page.locator('#nodes input[type="checkbox"]');
    await page.locator('#nodes-hint').getByText(`(${generated} generated node(s) hidden)`).waitFor();
    await expect(boxes.count()).resolves.toBe(nodes.length - generated);
    await page.getByRole('button', { name: 'Select all' }).click();
    await page.getByLabel('Show generated nodes').check();
    await expect(boxes.count()).resolves.toBe(nodes.length);
    await expect(page.locator('#nodes .node-meta').filter({ hasText: 'generated' }).count()).resolves.toBe(
      generated,
    );
    // what was selected stays selected; the generated nodes come unselected
    await expect(page.locator('#nodes input:checked').count()).resolves.toBe(nodes.length - generated);
    await page.getByLabel('Show generated nodes').uncheck();
    await expect(boxes.count()).resolves.toBe(nodes.length - generated);
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
    await expect(overall().getAttribute('aria-valuetext')).resolves.toBe(
      '100 % (5 of 5: 3 completed, 2 failed, 0 skipped)',
    );
    // a partial failure: green and red side by side, in proportion
    await expectSegments(overall(), { completed: 3, failed: 2, skipped: 0, total: 5 });
    await expect(overall().locator('.label').innerText()).resolves.toBe('100 % · 5/5 · 2 failed');
    await expect(page.locator('#cancel').isHidden()).resolves.toBe(true);
    await shot('04-failed-nodes', 'dashboard-failures');
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
    // let two nodes finish first: the bar then has all three parts
    await page.waitForFunction(
      () => Number(document.querySelector('#overall')?.getAttribute('aria-valuenow')) >= 20,
      undefined,
      { timeout: 30_000 },
    );
    await page.getByRole('button', { name: 'Cancel batch' }).click();
    await page
      .locator('#live')
      .getByText(/Cancel requested/)
      .waitFor();
    await page.locator('#task-status').getByText('cancelled').waitFor({ timeout: 20_000 });
    await expect(page.locator('#cancel').isHidden()).resolves.toBe(true);
    const status = await http<Json>('GET', `${slow.url}/parallel/status/${taskId}`, undefined, slowAuth);
    expect(status.body.status).toBe('cancelled');
    const counts = {
      completed: status.body.completed_nodes as number,
      failed: status.body.failed_nodes as number,
      skipped: status.body.skipped_nodes as number,
      total: 10,
    };
    expect(counts.completed).toBeGreaterThanOrEqual(2);
    expect(counts.skipped).toBeGreaterThan(0);
    await expect(page.locator('#group-1-counts').innerText()).resolves.toBe(
      `${counts.completed} done, 0 failed, ${counts.skipped} skipped`,
    );
    // never a full bar: what ran is green, what was skipped grey, each in proportion
    const pct = Math.floor(counts.completed * 10);
    await expect(overall().getAttribute('aria-valuenow')).resolves.toBe(String(pct));
    await expect(overall().locator('.label').innerText()).resolves.toBe(
      `${pct} % · ${counts.completed}/10 · ${counts.skipped} skipped`,
    );
    await expectSegments(overall(), counts);
    const skippedLook = await overall()
      .locator('.seg.skipped')
      .evaluate((el) => getComputedStyle(el).backgroundImage);
    expect(skippedLook).toMatch(/^repeating-linear-gradient\(.*rgb\(139, 141, 148\)/);
    await shot('05-cancelled', 'dashboard-cancelled');
    // and the same in the task list
    await page.goto(`${slow.url}/#/`);
    const row = page.locator('#tasks-table tbody tr').filter({ hasText: 'cancelled' });
    await row.waitFor();
    await expect(row.innerText()).resolves.toMatch(
      new RegExp(
        `${pct} % · ${counts.completed}/10 · ${counts.skipped} skipped\\s+${counts.completed}/10\\s+0\\s+${counts.skipped}`,
      ),
    );
    await expectSegments(row.locator('[role="progressbar"]'), counts);
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
    await shot('06-after-reload', 'dashboard-running');
    await expect(page.getByRole('button', { name: 'Cancel batch' }).isVisible()).resolves.toBe(true);
    await page.locator('#overall[aria-valuenow="100"]').waitFor({ timeout: 30_000 });
    await page.locator('#task-status').getByText('completed').waitFor();
    await expect(page.locator('#results-list li').count()).resolves.toBe(9);
  });

  it('lists recent tasks; works by keyboard; made no request to another host and no console error', async () => {
    await signIn(server.url);
    await page.goto(`${server.url}/#/`);
    const rows = page.locator('#tasks-table tbody tr');
    await rows.first().waitFor();
    // newest first: the failures, the suggested groups, the form's batch
    await expect(rows.count()).resolves.toBe(3);
    await expect(rows.nth(0).innerText()).resolves.toMatch(
      /Demo\/mixed\.canvas\s+partial failure\s+100 % · 5\/5 · 2 failed\s+3\/5\s+2\s+0/,
    );
    await expectSegments(rows.nth(0).locator('[role="progressbar"]'), {
      completed: 3,
      failed: 2,
      skipped: 0,
      total: 5,
    });
    await expect(rows.nth(1).innerText()).resolves.toMatch(/Demo\/plan\.canvas\s+completed/);
    await expect(rows.nth(2).innerText()).resolves.toMatch(
      /Demo\/colors\.canvas\s+completed\s+100 % · 8\/8\s+8\/8\s+0\s+0/,
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
    await expect(
      page.evaluate(() => (window as unknown as { __cspViolations: string[] }).__cspViolations),
    ).resolves.toEqual([]);
  });

  it('shows "Sign out" only when the server has an API token', async () => {
    // a page of its own, signed in by ?access_token= (traded for the cookie): nothing left by the tests before it
    const own = await browser.context.newPage();
    const open = await startServer({ SHUTDOWN_GRACE_MS: '0' });
    try {
      await own.goto(`${server.url}/?access_token=${TOKEN}`);
      await own.getByRole('heading', { name: 'Recent tasks' }).waitFor();
      await expect(own.getByRole('button', { name: 'Sign out' }).isVisible()).resolves.toBe(true);
      await own.goto(`${open.url}/`);
      await own.getByRole('heading', { name: 'Recent tasks' }).waitFor();
      await expect(own.getByRole('button', { name: 'Sign out' }).count()).resolves.toBe(0);
      await expect(own.locator('form[action="/logout"]').count()).resolves.toBe(0);
    } catch (err) {
      await own.screenshot({ path: path.join(SCREENSHOT_DIR, '08-sign-out-FAILED.png'), fullPage: true });
      throw err;
    } finally {
      await own.close();
      await open.close();
    }
  });
});

if (!executable && process.env.REQUIRE_SERVICES === '1') {
  it('Chromium is installed (REQUIRE_SERVICES=1)', () => {
    throw new Error(
      'Chromium is required (REQUIRE_SERVICES=1): apt-get install -y chromium, or set CHROMIUM_PATH',
    );
  });
}
