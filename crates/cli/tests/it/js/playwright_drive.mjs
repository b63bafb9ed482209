// Drives Debian's Chromium with playwright-core for `firestore_browser.rs`: opens the page served
// from an origin claimdb allows (`cors_origins`) and runs the bundled lite-SDK scenario in it,
// takes a screenshot, then opens the same page from an origin claimdb does not allow and makes
// one read there (which the browser must refuse). It records console errors, page errors and the
// CORS preflights Chromium sent and the answers of 400 and above (through the DevTools protocol), and prints one line
// `RESULT <json>` for the Rust test to judge; it judges nothing itself.
//
// argv: chromium path, allowed page URL, denied page URL, screenshot path, scenario params (JSON).

import { chromium } from 'playwright-core';

const [executablePath, allowedUrl, deniedUrl, screenshotPath, paramsJson] = process.argv.slice(2);
const params = JSON.parse(paramsJson);
const report = { console: [], pageErrors: [], preflights: [], failed: [] };
const finish = (code) => {
  console.log(`RESULT ${JSON.stringify(report)}`);
  process.exit(code);
};
// Never hang the test: whatever happened so far is reported.
setTimeout(() => {
  report.timeout = true;
  finish(3);
}, 150_000);

const browser = await chromium.launch({
  executablePath,
  headless: true,
  // playwright-core starts it with a fresh temporary --user-data-dir.
  args: [
    '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
  ],
});
report.browser = browser.version();

async function open(url, label) {
  const page = await browser.newPage({ viewport: { width: 900, height: 700 } });
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('Network.enable');
  cdp.on('Network.responseReceived', (e) => {
    if (e.response.status >= 400) {
      report.failed.push({ page: label, url: e.response.url, status: e.response.status, type: e.type });
    }
  });
  cdp.on('Network.requestWillBeSent', (e) => {
    if (e.type === 'Preflight' || e.request.method === 'OPTIONS') {
      report.preflights.push({ page: label, url: e.request.url, method: e.request.method });
    }
  });
  page.on('console', (m) => {
    if (m.type() === 'error') report.console.push({ page: label, text: m.text() });
  });
  page.on('pageerror', (e) => report.pageErrors.push({ page: label, text: String(e) }));
  await page.goto(url);
  await page.waitForFunction(() => globalThis.claimdb !== undefined, null, { timeout: 10_000 });
  return page;
}

try {
  const page = await open(allowedUrl, 'allowed');
  report.origin = await page.evaluate(() => location.origin);
  try {
    report.run = { ok: true, value: await page.evaluate((p) => globalThis.claimdb.scenario(p), params) };
  } catch (e) {
    report.run = { ok: false, error: String(e?.message ?? e) };
  }
  await page.screenshot({ path: screenshotPath, fullPage: true });

  const denied = await open(deniedUrl, 'denied');
  report.deniedOrigin = await denied.evaluate(() => location.origin);
  report.probe = await denied.evaluate((p) => globalThis.claimdb.probe(p), params);
} catch (e) {
  report.driverError = String(e?.stack ?? e);
} finally {
  await browser.close();
}
finish(0);
