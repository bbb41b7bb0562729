/**
 * The web catalog in a real browser (chromium through playwright-core): browse, filter (by the
 * form and by the self-applying selects), open a model, read its card, metadata and files, copy a
 * pull command; sign in and out; a hostile model runs no script (an alert, a page error or a CSP
 * violation fails); axe-core finds no serious or critical problem on any page, light or dark.
 * One browser for the file, its pages reused.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import bcrypt from 'bcryptjs';
import type { BrowserContext } from 'playwright-core';
import { CHROMIUM, axeCheck, launchBrowser, requireChromium, watchPage } from '../../test-support/browser.js';
import { HOSTILE_README, pushTestModel } from '../../test-support/catalog-models.js';
import { request, startTestServer } from '../../test-support/serve.js';
import { tempDir } from '../../test-support/tmp.js';
import type { RunningServer } from '../server.js';

/** Cleanups registered while `before` runs, run (last first) when the file's tests are done. */
const cleanups: Array<() => unknown> = [];
const hooks = { after: (fn: () => unknown) => void cleanups.push(fn) };
after(async () => {
  for (const fn of cleanups.reverse()) await fn();
});
let browser: BrowserContext;
let open: RunningServer;
let secured: RunningServer;

before(async () => {
  open = await startTestServer(hooks);
  const gguf = { 'general.architecture': 'llama', 'llama.context_length': 4096, 'general.license': 'mit' };
  await pushTestModel(open.url, 'acme/llama-small', 'v1', { arch: 'llama', paramSize: '1B', readme: '# Llama small\n\nA **tiny** test model.\n', gguf });
  await pushTestModel(open.url, 'acme/qwen-big', 'q8', { arch: 'qwen2', paramSize: '7B', quantization: 'Q8_0' });
  await pushTestModel(open.url, 'evil/model', 'v1', {
    readme: HOSTILE_README,
    files: { '<script>window.__pwned=9</script>.md': 'x', '"><img src=x onerror=alert(10)>.txt': 'y' },
    annotations: { 'org.example.note': '<script>alert(11)</script><img src=x onerror=alert(12)>' },
    arch: '<img src=x onerror=alert(13)>',
  });
  const dir = await tempDir(hooks);
  const users = join(dir, 'users.json');
  const h = (p: string) => bcrypt.hashSync(p, 4);
  await writeFile(users, JSON.stringify({ users: { bob: h('bob-pw'), alice: h('alice-pw') }, access: [
    { account: 'alice', name: '*', actions: ['*'] },
    { account: 'bob', name: 'team/*', actions: ['pull'] },
    { account: '', name: 'public/*', actions: ['pull'] },
    { account: '*', name: 'public/*', actions: ['pull'] },
  ] }));
  secured = await startTestServer(hooks, { tokenUsers: users });
  for (const name of ['public/open', 'team/secret']) {
    const q = new URLSearchParams({ service: 'mpk-serve', scope: `repository:${name}:pull,push` });
    const tok = (await request(`${secured.url}/token?${q}`, { headers: { authorization: `Basic ${Buffer.from('alice:alice-pw').toString('base64')}` } })).json<{ token: string }>().token;
    await pushTestModel(secured.url, name, 'v1', { headers: { authorization: `Bearer ${tok}` } });
  }
  if (existsSync(CHROMIUM)) browser = await launchBrowser(hooks);
});

test('browse, filter, open a model, copy its pull command', async (t) => {
  if (!requireChromium(t)) return;
  const page = await browser.newPage();
  const trouble = await watchPage(page);
  await browser.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: open.url });
  await page.goto(`${open.url}/`);
  assert.equal(await page.locator('main tbody tr').count(), 3);
  await page.fill('form.filters input[name=q]', 'qwen');
  await Promise.all([page.waitForURL(/q=qwen/), page.press('form.filters input[name=q]', 'Enter')]);
  assert.deepEqual(await page.locator('main tbody td.name').allTextContents(), ['acme/qwen-big']);
  await page.goto(`${open.url}/`);
  // The select applies itself (the page's script submits the form on change).
  await Promise.all([page.waitForURL(/arch=llama/), page.selectOption('form.filters select[name=arch]', 'llama')]);
  assert.deepEqual(await page.locator('main tbody td.name').allTextContents(), ['acme/llama-small']);
  await Promise.all([page.waitForURL(/\/r\/acme\/llama-small\/-\/v1$/), page.click('main tbody td >> text=v1')]);
  assert.equal(await page.locator('.card h1').textContent(), 'Llama small');
  assert.equal(await page.locator('.card strong').textContent(), 'tiny');
  const meta = Object.fromEntries(await page.evaluate('[...document.querySelector("dl.meta").querySelectorAll("dt")].map((dt) => [dt.textContent, dt.nextElementSibling.textContent])') as Array<[string, string]>);
  assert.equal(meta['Context length'], '4096');
  assert.equal(meta.Licence, 'mit');
  assert.deepEqual(await page.locator('#h-files + div td:first-child').allTextContents(), ['model.gguf', 'README.md']);
  const button = page.getByRole('button', { name: 'Copy the mpk command' });
  await button.click();
  // The clipboard write resolves asynchronously: wait (up to 5 s) for the label, then check it.
  // The clipboard write resolves asynchronously, and the label goes back to Copy after 1.5 s: wait
  // for it (a locator polls in Playwright's own world, out of the page's CSP's reach).
  const copied = await page.locator('button[data-copy]', { hasText: 'Copied' }).first().waitFor({ timeout: 10_000 })
    .then(() => true, (e: Error) => e.message.split('\n')[0]);
  assert.equal(copied, true, `the copy button never said Copied (it says ${await button.textContent()})`);
  assert.equal(await page.evaluate('navigator.clipboard.readText()'), `mpk pull ${open.host}/acme/llama-small:v1`);
  assert.deepEqual(trouble, { violations: [], dialogs: [], errors: [] });
  await page.close();
});

test('a hostile model runs no script anywhere it is shown', async (t) => {
  if (!requireChromium(t)) return;
  const page = await browser.newPage();
  const trouble = await watchPage(page);
  for (const path of ['/', '/?q=evil', '/r/evil/model', '/r/evil/model/-/v1', '/-/api/r/evil/model/-/v1']) {
    await page.goto(`${open.url}${path}`);
    await page.waitForLoadState('load');
  }
  await page.goto(`${open.url}/r/evil/model/-/v1`);
  // The card's javascript: link is no link; clicking its text does nothing.
  await page.click('text=click me');
  assert.equal(await page.evaluate('window.__pwned'), undefined);
  assert.ok((await page.locator('.card').textContent())!.includes('<script>'), 'the card shows the markup as text');
  assert.deepEqual(trouble, { violations: [], dialogs: [], errors: [] });
  await page.close();
});

test('sign in and out; anonymous viewers see only public models', async (t) => {
  if (!requireChromium(t)) return;
  const page = await browser.newPage();
  await page.goto(`${secured.url}/`);
  assert.deepEqual(await page.locator('main tbody td.name').allTextContents(), ['public/open']);
  await page.click('header >> text=Sign in');
  await page.fill('input[name=user]', 'bob');
  await page.fill('input[name=password]', 'bob-pw');
  await Promise.all([page.waitForURL(`${secured.url}/`), page.click('main button[type=submit]')]);
  assert.deepEqual(await page.locator('main tbody td.name').allTextContents(), ['public/open', 'team/secret']);
  assert.match((await page.locator('header .who').textContent())!, /Signed in as bob/);
  const cookie = (await browser.cookies(secured.url)).find((c) => c.name === 'mpk_session')!;
  assert.equal(cookie.httpOnly, true);
  assert.equal(cookie.sameSite, 'Strict');
  assert.equal(await page.evaluate('document.cookie'), '', 'the session cookie is out of the page script’s reach');
  await Promise.all([page.waitForURL(`${secured.url}/`), page.click('header >> text=Sign out')]);
  assert.deepEqual(await page.locator('main tbody td.name').allTextContents(), ['public/open']);
  await page.goto(`${secured.url}/-/login`);
  await page.fill('input[name=user]', 'bob');
  await page.fill('input[name=password]', 'wrong');
  await page.click('main button[type=submit]');
  assert.match((await page.locator('[role=alert]').textContent())!, /refused/);
  await page.close();
});

test('axe-core: no serious or critical problem on any page, light or dark', async (t) => {
  if (!requireChromium(t)) return;
  const page = await browser.newPage();
  const problems: string[] = [];
  const pages = ['/', '/r/acme/llama-small', '/r/acme/llama-small/-/v1', '/-/login', '/r/no/such'];
  for (const scheme of ['light', 'dark'] as const) {
    await page.emulateMedia({ colorScheme: scheme });
    // Dark mode changes only colours: checked on the pages that use them all.
    for (const path of scheme === 'light' ? pages : pages.slice(0, 3)) {
      await page.goto(`${open.url}${path}`);
      for (const v of await axeCheck(page)) problems.push(`${scheme} ${path}: ${v.id} (${v.impact}) ${v.help} at ${v.nodes.join(' ')}`);
    }
  }
  assert.deepEqual(problems, []);
  await page.close();
});
