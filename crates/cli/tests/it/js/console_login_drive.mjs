// Drives claimdb's web console in Debian's Chromium for `console_browser.rs`, signing in with a
// login session instead of the admin key: the sign-in screen lists the login provider, the
// browser goes through claimdb's login to an oidc-provider on loopback (its dev login and
// consent pages), comes back to the console with the HttpOnly session cookie, and the console
// uses that cookie for the admin API (the user holds an admin role) and for data requests —
// a document created through the editor is a cookie-authenticated write, which claimdb accepts
// only from its own origin. Then it signs out. Prints `RESULT <json>`.
//
// argv: chromium path, params (JSON: base, user, shots).

import { chromium } from 'playwright-core';

const [executablePath, paramsJson] = process.argv.slice(2);
const { base, user, shots } = JSON.parse(paramsJson);
const report = { steps: [], console: [], pageErrors: [], failed: [] };
const finish = (code) => {
  console.log(`RESULT ${JSON.stringify(report)}`);
  process.exit(code);
};
setTimeout(() => {
  report.timeout = true;
  finish(3);
}, 120_000);

const browser = await chromium.launch({
  executablePath,
  headless: true,
  args: [
    '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
  ],
});
const context = await browser.newContext({ viewport: { width: 1366, height: 860 } });
const page = await context.newPage();
page.setDefaultTimeout(15_000);
page.on('console', (m) => {
  if (m.type() === 'error' || m.type() === 'warning') report.console.push({ page: page.url(), text: m.text() });
});
page.on('pageerror', (e) => report.pageErrors.push({ page: page.url(), text: String(e) }));
page.on('response', (r) => {
  if (r.status() >= 400) report.failed.push({ status: r.status(), url: r.url() });
});

async function step(name, body) {
  try {
    const value = await body();
    report.steps.push({ name, ok: true, value: value ?? null });
  } catch (e) {
    report.steps.push({ name, ok: false, error: String(e?.stack ?? e) });
    await page.screenshot({ path: `${shots}/login-failed-${name}.png`, fullPage: true }).catch(() => {});
    throw e;
  }
  await page.screenshot({ path: `${shots}/login-${name}.png`, fullPage: true });
}

try {
  await step('login', async () => {
    await page.goto(`${base}/console/`);
    await page.getByRole('button', { name: 'Sign in through op' }).click();
    // The provider's own pages: its login form, then its consent form, until claimdb's
    // callback sends the browser back to the console.
    const visited = [];
    for (let i = 0; i < 8 && !page.url().startsWith(`${base}/console/`); i += 1) {
      await page.waitForLoadState();
      if (page.url().startsWith(`${base}/console/`)) break;
      visited.push(new URL(page.url()).pathname);
      const login = page.locator('input[name="login"]');
      if (await login.count()) {
        await login.fill(user);
        await page.locator('input[name="password"]').fill('any');
      }
      await Promise.all([page.waitForNavigation(), page.locator('[type="submit"]').first().click()]);
    }
    await page.getByRole('button', { name: 'Sign out' }).waitFor();
    const cookies = (await context.cookies(base)).map((c) => ({ name: c.name, httpOnly: c.httpOnly }));
    return { who: await page.locator('#who').innerText(), visited, cookies };
  });

  await step('admin', async () => {
    await page.evaluate(() => { location.hash = '#/rules'; });
    await page.getByRole('button', { name: 'Check' }).click();
    const status = page.locator('main [role="status"]', { hasText: 'Compiles' });
    await status.waitFor();
    return status.innerText();
  });

  await step('write', async () => {
    await page.evaluate(() => { location.hash = '#/documents/notes'; });
    const runsAs = await page.getByLabel('Data requests run as', { exact: true }).inputValue();
    await page.getByRole('link', { name: 'Add document' }).click();
    await page.getByLabel('Document id', { exact: true }).fill('by-session');
    await page.getByRole('button', { name: 'Add field', exact: true }).click();
    await page.getByLabel('name of field 1', { exact: true }).fill('by');
    await page.getByLabel('value of field 1', { exact: true }).fill(user);
    await page.getByRole('button', { name: 'Save' }).click();
    await page.getByRole('heading', { name: 'notes/by-session' }).waitFor();
    await page.locator('dl.fields dt', { hasText: 'by' }).waitFor();
    return { runsAs };
  });

  await step('signout', async () => {
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByLabel('Admin key', { exact: true }).waitFor();
    const cookies = (await context.cookies(base)).map((c) => c.name);
    // A reload stays signed out: the session ended with the cookie.
    await page.reload();
    await page.getByLabel('Admin key', { exact: true }).waitFor();
    return { cookies };
  });
} catch (e) {
  report.driverError = String(e?.stack ?? e);
} finally {
  await browser.close();
}
finish(0);
