// The end-to-end suite's "system browser": Debian's headless Chromium, driven by playwright-core the way a
// person uses a browser. The harness makes this the default http/https handler, so Gatehouse's xdg-open of the
// authorization URL lands here. It signs in on the provider's real pages, answers consent, and hands the final
// custom-scheme redirect to xdg-open, which is what a desktop browser does with a scheme it doesn't handle.
//
// $GATEHOUSE_TEST_BROWSER_DIR is its control directory:
//   decision       approve (default), deny, ignore (the person never finishes), or capture (approve, but keep
//                  the redirect in last-redirect without handing it to the OS; the test delivers it later)
//   hold           while this file exists, the person has not started yet
//   login          who signs in (default alice)
//   opened         one line per page opened, appended as the page is opened
//   log            one line per page opened, with how it ended, appended when done
//   last-redirect  the last redirect handed to the OS (single-use, in the test's scratch space only)
//   last-authorize the last authorization URL opened (for a loopback redirect, it names the listener's port)
//
// A redirect to the app's private-use scheme is handed to xdg-open, as a desktop browser does; a redirect to a
// loopback listener (RFC 8252 §7.3) is simply followed, and the page it answers with is read.
import { spawnSync } from 'node:child_process';
import { appendFileSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

import { chromium } from 'playwright-core';

const url = process.argv[2];
const dir = process.env.GATEHOUSE_TEST_BROWSER_DIR ?? '/tmp';
const read = (name) => (existsSync(join(dir, name)) ? readFileSync(join(dir, name), 'utf8').trim() : '');
const log = (line) => appendFileSync(join(dir, 'log'), `${line}\n`);
const customScheme = /^com\.example\.gatehouse:/;
const loopback = /^http:\/\/(127\.0\.0\.1|\[::1\]):\d+\/callback\?/;

appendFileSync(join(dir, 'opened'), `${new Date().toISOString()}\n`);
writeFileSync(join(dir, 'last-authorize'), url);
for (const until = Date.now() + 120_000; existsSync(join(dir, 'hold')) && Date.now() < until;) await sleep(50);
const decision = read('decision') || 'approve';
const login = read('login') || 'alice';

const browser = await chromium.launch({
  executablePath: process.env.GATEHOUSE_TEST_CHROMIUM ?? '/usr/bin/chromium',
  headless: true,
  // As root in a container, and with no network beyond loopback: no sandbox, no background traffic.
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage'],
});
let outcome = 'left the sign-in page';
let code = 0;
try {
  const page = await browser.newPage();
  let redirect;
  // The provider's last answer is a redirect to the app's scheme, which a browser hands to the OS.
  page.on('response', (response) => {
    const location = response.headers().location;
    if (location && (customScheme.test(location) || loopback.test(location))) redirect = location;
  });
  await page.goto(url);
  if (decision !== 'ignore') {
    await page.fill('input[name=login]', login);
    await page.fill('input[name=password]', 'any password');
    await page.click('button[type=submit]');
    await page.waitForSelector('input[name=prompt][value=consent]', { state: 'attached' });
    if (decision === 'deny') {
      await page.click('a[href$="/abort"]').catch(() => {});
    } else {
      await page.click('button[type=submit]').catch(() => {});
    }
    for (const until = Date.now() + 15_000; !redirect && Date.now() < until;) await sleep(20);
    if (!redirect) throw new Error(`no redirect to the app; the page is at ${page.url()}`);
    writeFileSync(join(dir, 'last-redirect'), redirect);
    if (loopback.test(redirect)) {
      // The browser itself goes to the app's listener; what it shows is the app's answer.
      await page.waitForURL(loopback, { waitUntil: 'load', timeout: 15_000 });
      const heading = await page.textContent('h1', { timeout: 5_000 });
      outcome = `loopback page: ${heading}`;
      code = heading === 'Signed in' ? 0 : 1;
    } else if (decision === 'capture') {
      outcome = 'kept the redirect for the test';
    } else {
      const opened = spawnSync('xdg-open', [redirect], { stdio: 'inherit' });
      outcome = opened.status === 0 ? 'handed the redirect to xdg-open' : `xdg-open failed: ${opened.status}`;
      code = opened.status === 0 ? 0 : 1;
    }
  }
} catch (e) {
  outcome = `sign-in failed: ${e.message.split('\n')[0]}`;
  code = 1;
} finally {
  await browser.close();
}
log(`${decision}: ${outcome}`);
process.exit(code);
