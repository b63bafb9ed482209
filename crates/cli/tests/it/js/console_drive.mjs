// Drives claimdb's web console (/console/) in Debian's Chromium with playwright-core for
// `console_browser.rs`, as an operator would, finding every control by its role and accessible
// name: signs in with the admin key (a wrong key first), acts as user `ada`, creates a typed
// document, sees another client's writes appear live, is denied a read, finds the denial in the
// audit log, opens it in the playground (denied), fails to publish rules that do not compile,
// publishes fixed rules, sees the same request allowed, sets a custom claim on `ada`, runs a
// rules test file, reads the health page and signs out. It takes a screenshot after each step,
// records console messages, page errors and every answer of 400 or above, checks that every
// control has an accessible name, and prints one line `RESULT <json>` for the Rust test to
// judge; it judges little itself (a step that cannot proceed throws, and the report says where).
//
// argv: chromium path, params (JSON: base, key, writerToken, shots).

import { chromium } from 'playwright-core';

const [executablePath, paramsJson] = process.argv.slice(2);
const { base, key, writerToken, shots } = JSON.parse(paramsJson);
const report = { steps: [], console: [], pageErrors: [], failed: [], unlabeled: [] };
const finish = (code) => {
  console.log(`RESULT ${JSON.stringify(report)}`);
  process.exit(code);
};
setTimeout(() => {
  report.timeout = true;
  finish(3);
}, 170_000);

const browser = await chromium.launch({
  executablePath,
  headless: true,
  args: [
    '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
  ],
});
report.browser = browser.version();
const page = await browser.newPage({ viewport: { width: 1366, height: 860 } });
page.setDefaultTimeout(15_000);
page.on('console', (m) => {
  if (m.type() === 'error' || m.type() === 'warning') report.console.push({ type: m.type(), text: m.text() });
});
page.on('pageerror', (e) => report.pageErrors.push(String(e)));
page.on('response', (r) => {
  if (r.status() >= 400) report.failed.push({ status: r.status(), url: r.url(), method: r.request().method() });
});

/** Another client: claimdb's JSON API with a bearer token of user `writer`. */
async function other(method, path, body) {
  const r = await fetch(`${base}/v1/docs/${path}`, {
    method,
    headers: { authorization: `Bearer ${writerToken}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  if (!r.ok) throw new Error(`the other client's ${method} ${path}: ${r.status} ${await r.text()}`);
}

/** Every form control on the page has an accessible name (a label, aria-label or text). */
async function checkLabels(where) {
  const missing = await page.evaluate(() => [...document.querySelectorAll('input, select, textarea, button')]
    .filter((el) => !el.closest('[hidden]') && el.type !== 'hidden')
    .filter((el) => !(el.labels?.length || el.getAttribute('aria-label') || el.getAttribute('aria-labelledby') || (el.tagName === 'BUTTON' && el.textContent.trim())))
    .map((el) => el.outerHTML.slice(0, 120)));
  for (const m of missing) report.unlabeled.push({ where, control: m });
}

async function step(name, body) {
  const started = Date.now();
  try {
    const value = await body();
    report.steps.push({ name, ok: true, ms: Date.now() - started, value: value ?? null });
  } catch (e) {
    report.steps.push({ name, ok: false, error: String(e?.stack ?? e) });
    await page.screenshot({ path: `${shots}/console-failed-${name}.png`, fullPage: true }).catch(() => {});
    throw e;
  }
  await checkLabels(name);
  await page.screenshot({ path: `${shots}/console-${name}.png`, fullPage: true });
}

const go = (hash) => page.evaluate((h) => { location.hash = h; }, hash);
const main = page.locator('main');

try {
  await step('signin', async () => {
    await page.goto(`${base}/console/`);
    // The key field has the focus; from the top of the page, Tab reaches the skip link first.
    await page.getByLabel('Admin key', { exact: true }).waitFor();
    const focused = await page.evaluate(() => document.activeElement?.id && document.querySelector(`label[for="${document.activeElement.id}"]`)?.textContent);
    await page.keyboard.press('Shift+Tab');
    const skip = await page.evaluate(() => document.activeElement?.textContent);
    await page.keyboard.press('Enter');
    const afterSkip = await page.evaluate(() => document.activeElement?.id);
    await page.getByLabel('Admin key', { exact: true }).focus();
    await page.getByLabel('Admin key', { exact: true }).fill('wrong-key-0123456789');
    await page.getByRole('button', { name: 'Sign in with the admin key' }).click();
    const refused = await page.getByRole('alert').innerText();
    await page.getByLabel('Admin key', { exact: true }).fill(key);
    await page.getByLabel('Admin key', { exact: true }).press('Enter');
    await page.getByRole('button', { name: 'Sign out' }).waitFor();
    await page.getByRole('navigation', { name: 'Console sections' }).waitFor();
    const kept = await page.evaluate(() => sessionStorage.getItem('claimdb.console.adminKey') !== null);
    return { focused, skip, afterSkip, refused, kept };
  });

  await step('act-as', async () => {
    await page.getByRole('heading', { name: 'Collections' }).waitFor();
    await page.getByLabel('Data requests run as', { exact: true }).selectOption('user');
    await page.getByLabel('User id', { exact: true }).fill('ada');
    await page.getByLabel('Token claims (JSON)', { exact: true }).fill('{"team": "blue"}');
    await page.getByRole('button', { name: 'Apply' }).click();
    const status = page.getByRole('status').filter({ hasText: 'running as user ada' });
    await status.waitFor();
    return status.innerText();
  });

  await step('create', async () => {
    await go('#/documents/notes');
    await page.getByRole('link', { name: 'Add document' }).click();
    await page.getByLabel('Document id', { exact: true }).fill('n1');
    const fields = [
      ['title', 'string', 'Hello, console'],
      ['count', 'integer', '1'],
      ['ratio', 'double', '2'],
      ['when', 'timestamp', '2026-01-02T03:04:05.000006Z'],
      ['owner', 'reference', 'users/ada'],
      ['place', 'geopoint', ['48.85', '2.35']],
      ['blob', 'bytes', 'AAEC'],
      ['at', 'serverTimestamp', null],
    ];
    for (const [i, [fname, type, value]] of fields.entries()) {
      await page.getByRole('button', { name: 'Add field', exact: true }).click();
      const n = `field ${i + 1}`;
      await page.getByLabel(`name of ${n}`, { exact: true }).fill(fname);
      await page.getByLabel(`type of ${n}`, { exact: true }).selectOption(type);
      if (type === 'geopoint') {
        await page.getByLabel(`latitude of ${n}`).fill(value[0]);
        await page.getByLabel(`longitude of ${n}`).fill(value[1]);
      } else if (value !== null) {
        await page.getByLabel(`value of ${n}`, { exact: true }).fill(value);
      }
    }
    await page.getByRole('button', { name: 'Save' }).click();
    await page.waitForFunction(() => location.hash === '#/documents/notes/n1');
    await page.getByRole('heading', { name: 'notes/n1' }).waitFor();
    await page.locator('dl.fields dt', { hasText: 'title' }).waitFor();
    const shown = await page.locator('.doc-body').innerText();
    await page.getByRole('region', { name: 'Documents in notes' }).getByRole('link', { name: 'n1', exact: true }).waitFor();
    return shown;
  });

  await step('live', async () => {
    await page.evaluate(() => { window.claimdbNoReload = true; });
    await other('PATCH', 'notes/n1', { count: 2, title: 'changed elsewhere' });
    await other('PUT', 'notes/n2', { title: 'written elsewhere' });
    await page.waitForFunction(() => [...document.querySelectorAll('dl.fields dt')]
      .some((dt) => dt.textContent.startsWith('count') && dt.nextElementSibling?.textContent === '2'));
    await page.locator('dl.fields dd', { hasText: 'changed elsewhere' }).waitFor();
    await page.getByRole('region', { name: 'Documents in notes' }).getByRole('link', { name: 'n2', exact: true }).waitFor();
    const noReload = await page.evaluate(() => window.claimdbNoReload === true);
    return { noReload, status: await page.locator('.pane.wide [role="status"]').innerText() };
  });

  await step('edit', async () => {
    await page.getByRole('button', { name: 'Edit', exact: true }).click();
    // The editor lists the fields in the document's order: `count` is the third.
    const count = page.getByLabel('value of count', { exact: true });
    await count.fill('3');
    await page.getByRole('button', { name: 'Save' }).click();
    await page.waitForFunction(() => [...document.querySelectorAll('dl.fields dt')]
      .some((dt) => dt.textContent.startsWith('count') && dt.nextElementSibling?.textContent === '3'));
    return page.locator('.pane.wide [role="status"]').innerText();
  });

  await step('query', async () => {
    await page.getByRole('link', { name: 'Query', exact: true }).click();
    await page.getByLabel('Query (JSON)', { exact: true }).fill('{"collection": "notes", "where": [["count", "==", 3]]}');
    await page.getByRole('button', { name: 'Run', exact: true }).click();
    const results = page.locator('.query-results');
    await results.waitFor();
    return { status: await page.locator('main [role="status"]', { hasText: 'document' }).last().innerText(), results: await results.locator('li > a').allInnerTexts() };
  });

  await step('delete', async () => {
    await go('#/documents/notes/n2');
    await page.getByRole('heading', { name: 'notes/n2' }).waitFor();
    await page.locator('dl.fields dt', { hasText: 'title' }).waitFor();
    const remove = page.getByRole('button', { name: 'Delete' });
    await remove.click();
    await page.getByRole('button', { name: 'Really delete?' }).click();
    await page.waitForFunction(() => location.hash === '#/documents/notes');
    const list = page.getByRole('region', { name: 'Documents in notes' });
    await list.getByRole('link', { name: 'n1', exact: true }).waitFor();
    await page.waitForFunction(() => ![...document.querySelectorAll('section a')].some((a) => a.textContent === 'n2'));
    return list.innerText();
  });

  await step('denied', async () => {
    await go('#/documents/secret/s1');
    const alert = page.locator('.pane.wide .error');
    await alert.waitFor();
    return alert.innerText();
  });

  let playgroundUrl;
  await step('audit', async () => {
    await page.getByRole('link', { name: 'Audit', exact: true }).click();
    const row = page.locator('tr', { hasText: 'secret/s1' }).filter({ hasText: 'ada' }).first();
    await row.waitFor();
    const text = await row.innerText();
    await row.getByRole('link', { name: 'Try get secret/s1 as ada in the playground' }).click();
    await page.getByRole('heading', { name: 'Rules playground' }).waitFor();
    playgroundUrl = page.url();
    return text;
  });

  await step('playground-denied', async () => {
    const filled = {
      method: await page.getByLabel('Method', { exact: true }).inputValue(),
      path: await page.getByLabel('Path (a document; a collection for list)', { exact: true }).inputValue(),
      uid: await page.getByLabel('User id (request.auth.uid)', { exact: true }).inputValue(),
    };
    await page.getByRole('button', { name: 'Run' }).click();
    const decision = page.locator('.decision');
    await decision.waitFor();
    return { filled, decision: await decision.innerText(), marked: await page.locator('.listing .mark').count() };
  });

  await step('rules-error', async () => {
    await page.getByRole('link', { name: 'Rules', exact: true }).click();
    const editor = page.getByLabel('Rules source (Firestore Security Rules)', { exact: true });
    await editor.waitFor();
    const source = await editor.inputValue();
    await editor.fill(source.replace('request.auth.token.level >= 2', 'request.auth.token.level >= 2 &&'));
    await page.getByRole('button', { name: 'Publish' }).click();
    const first = page.locator('.diagnostics.error li').first();
    await first.waitFor();
    const status = await page.locator('main [role="status"]').first().innerText();
    // The error's position button puts the cursor there.
    await first.getByRole('button').click();
    const focused = await page.evaluate(() => document.activeElement?.id);
    return { error: await first.innerText(), status, focused, source };
  });

  await step('rules-publish', async () => {
    const editor = page.getByLabel('Rules source (Firestore Security Rules)', { exact: true });
    const source = await editor.inputValue();
    await editor.fill(source.replace('request.auth.token.level >= 2 &&', "request.auth.token.level >= 2 || request.auth.uid == 'ada'"));
    await page.getByRole('button', { name: 'Publish' }).click();
    const status = page.locator('main [role="status"]', { hasText: /^Published/ });
    await status.waitFor();
    return status.innerText();
  });

  await step('playground-allowed', async () => {
    await page.goto(playgroundUrl);
    await page.getByRole('heading', { name: 'Rules playground' }).waitFor();
    await page.getByRole('button', { name: 'Run' }).click();
    const decision = page.locator('.decision');
    await decision.waitFor();
    return { decision: await decision.innerText(), granted: await page.locator('.listing .mark.granted').count() };
  });

  await step('claims', async () => {
    await page.getByRole('link', { name: 'Users', exact: true }).click();
    await page.getByLabel('Open a user by id', { exact: true }).fill('ada');
    await page.getByRole('button', { name: 'Open', exact: true }).click();
    await page.getByRole('heading', { name: 'User ada' }).waitFor();
    const claims = page.getByLabel('Custom claims (a JSON object; reserved JWT names are refused)', { exact: true });
    await claims.fill('{"level": 2}');
    const counter = await page.locator('.counter').innerText();
    await page.getByRole('button', { name: 'Save claims' }).click();
    const saved = await page.locator('main [role="status"]', { hasText: 'saved' }).innerText();
    return { counter, saved, record: await page.locator('.meta').innerText() };
  });

  await step('rules-tests', async () => {
    await go('#/rules/tests');
    await page.getByRole('button', { name: 'Run tests' }).click();
    const verdict = page.locator('main p[role="status"]', { hasText: 'passed' });
    await verdict.waitFor();
    return { verdict: await verdict.innerText(), coverage: await page.locator('table', { hasText: 'Coverage' }).locator('tbody tr').count() };
  });

  await step('health', async () => {
    await page.getByRole('link', { name: 'Health', exact: true }).click();
    const keys = page.locator('table', { hasText: 'Signing keys' });
    await keys.waitFor();
    return { keys: await keys.innerText(), ready: await page.locator('.decision').first().innerText() };
  });

  await step('signout', async () => {
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByLabel('Admin key', { exact: true }).waitFor();
    return page.evaluate(() => ({
      key: sessionStorage.getItem('claimdb.console.adminKey'),
      navHidden: document.getElementById('nav').hidden,
    }));
  });
} catch (e) {
  report.driverError = String(e?.stack ?? e);
} finally {
  await browser.close();
}
finish(0);
