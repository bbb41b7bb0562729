/**
 * A real browser for the web catalog's tests: Debian's chromium driven by playwright-core (no
 * browser download), headless, sandbox off (the tests run as root), a fresh profile per launch.
 * Where chromium is missing the test skips with the reason, except under CI (CI=true), where that
 * is a failure. `axeCheck` runs axe-core inside a page (its source evaluated through the devtools
 * protocol, which the page's CSP does not govern) and gives the serious and critical violations.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import type { TestContext } from 'node:test';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { tempDir } from './tmp.js';

export const CHROMIUM = process.env.MPK_CHROMIUM ?? '/usr/bin/chromium';

export const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

/** True when chromium is there; otherwise skips the test (or throws under CI). */
export function requireChromium(t: TestContext): boolean {
  if (existsSync(CHROMIUM)) return true;
  const reason = `${CHROMIUM} is not installed (apt-get install chromium, or run .ci/run)`;
  if (process.env.CI === 'true') throw new Error(`CI: ${reason}`);
  t.skip(reason);
  return false;
}

/** One browser (a persistent context on a fresh --user-data-dir), closed after the tests of `t`. */
export async function launchBrowser(t: { after(fn: () => unknown): void }): Promise<BrowserContext> {
  const profile = await tempDir(t, 'mpk-chromium-');
  const ctx = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS, viewport: { width: 1280, height: 900 } });
  t.after(() => ctx.close());
  return ctx;
}

/** What a page did that a test must refuse: CSP violations, dialogs (alert), page errors. */
export interface PageTrouble {
  violations: string[];
  dialogs: string[];
  errors: string[];
}

/** Watches a page for script that should not run: every alert is dismissed and recorded. */
export async function watchPage(page: Page): Promise<PageTrouble> {
  const trouble: PageTrouble = { violations: [], dialogs: [], errors: [] };
  await page.exposeFunction('__mpkViolation', (v: string) => void trouble.violations.push(v));
  // Page code runs in the browser: given as text (this project's TypeScript has no DOM types).
  await page.addInitScript({ content: "document.addEventListener('securitypolicyviolation', (e) => window.__mpkViolation(e.violatedDirective + ' ' + e.blockedURI));" });
  page.on('dialog', (d) => {
    trouble.dialogs.push(d.message());
    void d.dismiss();
  });
  page.on('pageerror', (e) => trouble.errors.push(e.message));
  page.on('console', (m) => {
    if (m.type() === 'error' && /Content Security Policy/i.test(m.text())) trouble.violations.push(m.text());
  });
  return trouble;
}

let axeSource: string | undefined;

export interface AxeViolation {
  id: string;
  impact: string;
  help: string;
  nodes: string[];
}

/** axe-core's serious and critical violations on the page as it is now. */
export async function axeCheck(page: Page): Promise<AxeViolation[]> {
  axeSource ??= await readFile(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');
  await page.evaluate(axeSource);
  const found = (await page.evaluate(
    'axe.run().then((r) => r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.slice(0, 5).map((n) => JSON.stringify(n.target)) })))',
  )) as AxeViolation[];
  return found.filter((v) => v.impact === 'serious' || v.impact === 'critical');
}
