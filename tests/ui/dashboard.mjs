// Drives the dashboard in headless Chromium (Debian's /usr/bin/chromium, or
// $CHROMIUM) with playwright-core. Run by tests/all/dashboard.rs against a real host:
//
//   node tests/ui/dashboard.mjs ADMIN_URL --screenshots DIR [--route R]... \
//        [--plugin NAME] [--load-error FILE] [--dead ID --dead-route R] [--bulk-replay R] [--token T]
//
// Without --token: the overview lists every --route, the plugins page shows --plugin and
// a load error naming --load-error, the events page shows event --dead as dead, a page of
// another origin cannot replay it (403), the Replay button turns it done, and (with
// --bulk-replay R) "Replay all dead" replays R's one dead event, dash-2, after a confirmation.
// With --token: the login form, a refused token, then the token kept in sessionStorage and
// sent as a header, never in a URL. Either way, no request may leave 127.0.0.1.
// Exits non-zero with the reason on the first failed check.

import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

const { values: opts, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    screenshots: { type: 'string' },
    route: { type: 'string', multiple: true, default: [] },
    plugin: { type: 'string' },
    'load-error': { type: 'string' },
    dead: { type: 'string' },
    'dead-route': { type: 'string' },
    'bulk-replay': { type: 'string' },
    token: { type: 'string' },
  },
});
const admin = positionals[0];
if (!admin || !opts.screenshots) {
  console.error('usage: node tests/ui/dashboard.mjs ADMIN_URL --screenshots DIR [...]');
  process.exit(2);
}

const executablePath = process.env.CHROMIUM || '/usr/bin/chromium';
if (!existsSync(executablePath)) {
  console.error(`FAIL: no Chromium at ${executablePath}: install it (apt-get install -y chromium, ` +
    'or `make browser`) or set CHROMIUM. The dashboard test cannot pass without a browser.');
  process.exit(3);
}

let playwright;
try {
  playwright = await import('playwright-core');
} catch (err) {
  console.error(`FAIL: playwright-core is not installed (make js-tools): ${err.message}`);
  process.exit(3);
}

const step = (what) => console.log(`ok: ${what}`);
function check(condition, what) {
  if (!condition) throw new Error(`check failed: ${what}`);
}

mkdirSync(opts.screenshots, { recursive: true });
const browser = await playwright.chromium.launch({
  executablePath,
  headless: true,
  // Root in CI containers: Chromium's sandbox needs user namespaces it may not get.
  args: ['--no-sandbox', '--disable-dev-shm-usage'],
});
const requests = [];
let failure = null;
try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  context.on('request', (request) => requests.push(request));
  const page = await context.newPage();
  page.on('pageerror', (err) => console.error(`page error: ${err.message}`));
  const shot = async (name) => {
    await page.screenshot({ path: join(opts.screenshots, `${name}.png`), fullPage: true });
    step(`screenshot ${name}.png`);
  };
  if (opts.token) {
    await withToken(page, context, shot);
  } else {
    await open(page, context, shot);
  }
  const left = requests
    .map((request) => new URL(request.url()))
    .filter((url) => !['data:', 'about:', 'blob:'].includes(url.protocol) && url.hostname !== '127.0.0.1');
  check(left.length === 0, `no request leaves 127.0.0.1 (saw ${left.map(String).join(', ')})`);
  step(`${requests.length} requests, every one to 127.0.0.1`);
} catch (err) {
  failure = err;
} finally {
  await browser.close();
}
if (failure) {
  console.error(`FAIL: ${failure.stack || failure}`);
  process.exit(1);
}

/** The flow without a token: overview, plugins, events, cross-site refusal, replays. */
async function open(page, context, shot) {
  await page.goto(`${admin}/ui/`);
  for (const route of opts.route) {
    await page.locator(`.route[data-route="${route}"] .chart`).first().waitFor();
  }
  step(`overview lists ${opts.route.join(', ')}`);
  await page.waitForFunction(() => document.querySelectorAll('.chart svg path.line').length > 0);
  step('overview charts drew the requests');
  await shot('overview');

  await page.click('nav a[data-page=plugins]');
  if (opts.plugin) await page.locator(`tr[data-plugin="${opts.plugin}"]`).waitFor();
  if (opts['load-error']) {
    await page.locator('td.load-error', { hasText: opts['load-error'] }).waitFor();
    step(`plugins page shows the load error of ${opts['load-error']}`);
  }
  await shot('plugins');

  if (!opts.dead) return;
  await page.click('nav a[data-page=events]');
  const row = page.locator(`#event-table tr[data-id="${opts.dead}"]`);
  await row.locator('td.status', { hasText: 'dead' }).waitFor();
  step(`event ${opts.dead} is listed as dead`);
  await row.locator('a').click();
  const detail = page.locator('#event-detail');
  await detail.locator('h3', { hasText: opts.dead }).waitFor();
  const headers = await detail.locator('table.headers').innerText();
  check(headers.includes('[redacted]'), `a secret header is redacted (${headers})`);
  check(!headers.includes('dashboard-s3cret'), 'the secret value is not on the page');
  const body = await detail.locator('pre.body').innerText();
  check(body.includes('\n  "'), `the JSON body is pretty-printed (${body})`);
  check((await detail.locator('table.attempts').innerText()).includes('unsupported event'),
    'the attempt log shows the rejection');
  step('event detail: headers redacted, JSON pretty, attempts with their error');
  await shot('events');

  await crossSite(context, opts.dead, opts['dead-route']);
  await page.reload();
  await page.locator(`#event-table tr[data-id="${opts.dead}"] td.status`, { hasText: 'dead' }).waitFor();
  step('still dead after the cross-site attempts');

  const posted = page.waitForRequest((r) => r.method() === 'POST' && r.url().includes('/replay'));
  await page.locator(`#event-table tr[data-id="${opts.dead}"] button.replay`).click();
  const replayRequest = await posted;
  const answer = await replayRequest.response();
  check(answer && answer.status() === 200, `the replay was accepted (${answer && answer.status()})`);
  // Read once the answer is in: only then are the network-level headers known.
  const sent = await replayRequest.allHeaders();
  check(sent.origin === admin, `the page's POST names its own origin (${sent.origin})`);
  // (Playwright does not report the Sec-Fetch-* headers Chromium adds; the
  // other origin's refused GET above, which carries no Origin, shows they arrive.)
  step(`the page's replay POST went with Origin ${sent.origin}: admitted`);
  await page.locator(`#event-table tr[data-id="${opts.dead}"] td.status`, { hasText: 'done' })
    .waitFor({ timeout: 20000 });
  step(`Replay turned ${opts.dead} done`);
  await shot('events-replayed');

  if (opts['bulk-replay']) {
    await page.selectOption('#filter select[name=route]', opts['bulk-replay']);
    await page.click('#replay-dead');
    // The count comes from a fetch: wait for the confirmation to show it.
    await page.locator('#confirm-text', { hasText: /Replay \d+ dead/ }).waitFor();
    const text = await page.locator('#confirm-text').innerText();
    check(/Replay \d+ dead/.test(text), `the confirmation names a count (${text})`);
    await page.click('#confirm-yes');
    await page.locator('#action-note', { hasText: /Replayed 1 dead/ }).waitFor();
    await page.locator('#event-table tr[data-id="dash-2"] td.status', { hasText: 'done' })
      .waitFor({ timeout: 20000 });
    step(`replay all dead of ${opts['bulk-replay']}: ${await page.locator('#action-note').innerText()}, dash-2 done`);
  }
}

/**
 * A page of another origin (127.0.0.1 on another port, served by the browser itself
 * through request interception) tries to replay the event and to read the events:
 * the admin API refuses both with 403 (Origin / Sec-Fetch-Site).
 */
async function crossSite(context, id, route) {
  // A port of 127.0.0.1 nothing listens on (the interception answers), and
  // not one of Chromium's blocked ports.
  const other = 'http://127.0.0.1:48123';
  await context.route(`${other}/**`, (r) => r.fulfill({ contentType: 'text/html', body: '<!doctype html><title>other site</title>' }));
  const page = await context.newPage();
  await page.goto(`${other}/page.html`);
  const target = `${admin}/events/${encodeURIComponent(id)}/replay?route=${encodeURIComponent(route || '')}`;
  // A form POST (what any page may send anywhere, no CORS involved) and a
  // link followed to the events: both navigations, so their answers are seen.
  const [posted] = await Promise.all([
    page.waitForNavigation(),
    page.evaluate((action) => {
      const form = document.createElement('form');
      form.method = 'POST';
      form.action = action;
      document.body.append(form);
      form.submit();
    }, target),
  ]);
  const postSent = await posted.request().allHeaders();
  await page.goto(`${other}/page.html`);
  const [read] = await Promise.all([
    page.waitForNavigation(),
    page.evaluate((href) => { location.href = href; }, `${admin}/events`),
  ]);
  const statuses = [posted.status(), read.status()];
  await page.close();
  check(postSent.origin === other, `the POST named the other origin (${postSent.origin})`);
  check(statuses.every((status) => status === 403),
    `the other origin's POST and GET were refused 403 (${statuses})`);
  step('a page of another origin gets 403 for a replay POST and for reading events');
}

/** The flow with a token: login form, a wrong token, then the right one. */
async function withToken(page, context, shot) {
  await page.goto(`${admin}/ui/`);
  await page.locator('#login').waitFor();
  await shot('login');
  await page.fill('#token', 'not-the-token');
  await page.click('#login-form button[type=submit]');
  await page.locator('#login-error', { hasText: 'refused' }).waitFor();
  step('a wrong token is refused');
  await page.fill('#token', opts.token);
  await page.click('#login-form button[type=submit]');
  for (const route of opts.route) await page.locator(`.route[data-route="${route}"]`).waitFor();
  step('logged in: the overview lists the routes');
  const stored = await page.evaluate(() => sessionStorage.getItem('hookhost-admin-token'));
  check(stored === opts.token, 'the token is in sessionStorage');
  const local = await page.evaluate(() => localStorage.length);
  check(local === 0, 'nothing in localStorage');
  await page.reload();
  for (const route of opts.route) await page.locator(`.route[data-route="${route}"]`).waitFor();
  step('still logged in after a reload (same tab)');
  const api = requests.filter((r) => new URL(r.url()).pathname === '/stats');
  check(api.length > 0, 'the page fetched /stats');
  for (const request of api) {
    check((await request.allHeaders()).authorization === `Bearer ${opts.token}`, 'sent as a bearer header');
  }
  check(requests.every((r) => !r.url().includes(opts.token)), 'the token is in no URL');
  check(!page.url().includes(opts.token), 'the token is not in the page URL');
  step('the token goes in the Authorization header only');
  await page.click('#logout');
  await page.locator('#login').waitFor();
  check(await page.evaluate(() => sessionStorage.getItem('hookhost-admin-token')) === null, 'logout forgets the token');
  step('log out forgets it');
}
