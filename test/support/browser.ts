import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import type { BrowserContext } from 'playwright-core';

/** Where browser tests save their screenshots (ignored by git). */
export const SCREENSHOT_DIR = path.resolve(__dirname, '..', '..', 'artifacts', 'screenshots');
/** The screenshots the docs show (committed): rewritten only when UPDATE_SCREENSHOTS=1. */
export const DOCS_SCREENSHOT_DIR = path.resolve(__dirname, '..', '..', 'docs', 'screenshots');
export const UPDATE_DOCS_SCREENSHOTS = process.env.UPDATE_SCREENSHOTS === '1';

/**
 * Records every Content-Security-Policy violation of the context's pages in `window.__cspViolations` (directive and
 * blocked URI or "inline"): Chromium also logs them as console errors, this names them.
 */
export async function recordCspViolations(context: BrowserContext): Promise<void> {
  await context.addInitScript(() => {
    const w = globalThis as unknown as { __cspViolations: string[]; document: EventTarget };
    w.__cspViolations = [];
    w.document.addEventListener('securitypolicyviolation', (e) => {
      const v = e as unknown as { violatedDirective: string; blockedURI: string };
      w.__cspViolations.push(`${v.violatedDirective} ${v.blockedURI || 'inline'}`);
    });
  });
}

/** Debian's Chromium (`apt-get install chromium`), or CHROMIUM_PATH. */
export function chromiumPath(): string | undefined {
  const candidates = [process.env.CHROMIUM_PATH, '/usr/bin/chromium', '/usr/bin/chromium-browser'];
  return candidates.find((p): p is string => !!p && existsSync(p));
}

/** Chromium flags for tests: headless, no sandbox (root in CI), nothing phoning home. */
const FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

export interface TestBrowser {
  context: BrowserContext;
  close(): Promise<void>;
}

/** A fresh headless Chromium with its own profile directory (removed on close). */
export async function launchBrowser(executablePath: string): Promise<TestBrowser> {
  const { chromium } = await import('playwright-core');
  const profile = mkdtempSync(path.join(tmpdir(), 'canvas-batch-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath,
    headless: true,
    args: FLAGS,
    viewport: { width: 1280, height: 900 },
    reducedMotion: 'reduce',
  });
  mkdirSync(SCREENSHOT_DIR, { recursive: true });
  return {
    context,
    async close() {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}
