// Headless Chromium walk of the dashboard (driven by playwright-core):
// log in, every page without console errors, figures equal the API's,
// overview -> site -> range change -> back, screenshots.
// usage: node browser.mjs BASE SHOTS_DIR USER PASSWORD API_TOKEN PLAYWRIGHT_INDEX
import path from 'node:path';

const [base, shots, user, password, token, pwIndex] = process.argv.slice(2);
const { chromium } = await import(pwIndex);

const failures = [];
function check(cond, what) {
  console.log(`${cond ? 'ok' : 'FAIL'}: ${what}`);
  if (!cond) failures.push(what);
}

const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', '--no-first-run'],
});
const context = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1400, height: 900 } });
const page = await context.newPage();
// Sanitizer builds on a busy 2-core machine answer slowly: wait generously.
page.setDefaultTimeout(90000);
const consoleErrors = [];
page.on('console', (m) => { if (m.type() === 'error') consoleErrors.push(`${page.url()}: ${m.text()}`); });
page.on('pageerror', (e) => consoleErrors.push(`${page.url()}: ${e.message}`));
const outside = [];
page.on('request', (r) => { if (!r.url().startsWith(base) && !r.url().startsWith('data:')) outside.push(r.url()); });

// The API through the test's own token (independent of the browser session).
async function apiGet(p) {
  const r = await context.request.get(base + p, { headers: { Authorization: `Bearer ${token}` } });
  if (!r.ok()) throw new Error(`${p}: ${r.status()}`);
  return r.json();
}

function noErrors(where) {
  check(consoleErrors.length === 0, `${where}: no console errors${consoleErrors.length ? ` (${consoleErrors.join(' | ')})` : ''}`);
  consoleErrors.length = 0;
}

try {
  // Not logged in: the overview sends us to the login page.
  await page.goto(`${base}/`);
  check(page.url().startsWith(`${base}/login.html`), `unauthenticated overview goes to login (${page.url()})`);
  await page.screenshot({ path: path.join(shots, '0-login.png') });
  await page.fill('#user', user);
  await page.fill('#password', 'not-the-password');
  await Promise.all([page.waitForURL(/error=1/), page.click('#submit')]);
  check(await page.isVisible('#error'), 'wrong password shows the error');
  consoleErrors.length = 0; // the failed login itself logs nothing, but be safe
  await page.fill('#user', user);
  await page.fill('#password', password);
  await Promise.all([page.waitForURL(`${base}/`), page.click('#submit')]);
  const cookies = await context.cookies();
  const sc = cookies.find((c) => c.name === 'np_session');
  check(sc && sc.httpOnly && sc.secure && sc.sameSite === 'Strict', 'session cookie is HttpOnly, Secure, SameSite=Strict');

  // Overview.
  await page.waitForSelector('body[data-loaded=yes]', { timeout: 30000 });
  await page.waitForFunction(() => document.querySelector('tr[data-site="oak-es"] td[data-field=in]')?.dataset.raw !== '', null, { timeout: 30000 });
  await page.screenshot({ path: path.join(shots, '1-overview.png'), fullPage: true });
  noErrors('overview');
  const sites = await apiGet('/api/v1/sites');
  const rows = await page.$$eval('#sites tbody tr', (trs) => trs.map((tr) => tr.dataset.site));
  check(rows.length === sites.length, `overview lists every school (${rows.length}/${sites.length})`);
  for (const s of sites) {
    const shown = await page.$eval(`tr[data-site="${s.id}"] td[data-field=status]`, (td) => td.dataset.raw);
    check(shown === s.status, `status of ${s.id} equals the API (${shown} / ${s.status})`);
  }
  // Worst first: the school without data comes before those that are up.
  check(rows.indexOf('elm-ms') < rows.indexOf('oak-es'), `worst first (${rows.join(',')})`);
  // Current rate equals the API's newest sample on the uplink.
  const now = Math.floor(Date.now() / 1000);
  const ser = await apiGet(`/api/v1/sites/oak-es/series?from=${now - 7200}&to=${now}&device=edge&iface=eth0`);
  const pts = ser.series[0].points.filter((p) => p.in_bps !== null);
  const apiIn = pts[pts.length - 1].in_bps;
  const shownIn = Number(await page.$eval('tr[data-site="oak-es"] td[data-field=in]', (td) => td.dataset.raw));
  check(Math.abs(shownIn - apiIn) < 1e-6 * apiIn, `current in rate equals the API (${shownIn} / ${apiIn})`);
  const inText = await page.$eval('tr[data-site="oak-es"] td[data-field=in]', (td) => td.textContent);
  check(/Mbps/.test(inText), `rate shown with units (${inText})`);
  const month = new Date().toISOString().slice(0, 7);
  const up = await apiGet(`/api/v1/sites/oak-es/uptime?month=${month}`);
  const shownUp = await page.$eval('tr[data-site="oak-es"] td[data-field=uptime_month]', (td) => td.dataset.raw ?? 'na');
  check(up.uptime_percent === null ? shownUp === '' : Math.abs(Number(shownUp) - up.uptime_percent) < 1e-9,
    `month uptime equals the API (${shownUp} / ${up.uptime_percent})`);
  // Search and filter.
  await page.fill('#search', 'pine');
  check((await page.$$('#sites tbody tr')).length === 1, 'search by name');
  await page.fill('#search', '');
  await page.selectOption('#type', 'elementary');
  const el = await page.$$eval('#sites tbody tr', (trs) => trs.map((t) => t.dataset.site));
  check(el.length === 1 && el[0] === 'oak-es', `filter by type (${el})`);
  await page.selectOption('#type', '');
  // Refresh without reload: the timestamp changes, the page is the same document.
  await page.evaluate(() => { window.__marker = 42; });
  const before = await page.textContent('#updated');
  await page.waitForFunction((b) => document.querySelector('#updated').textContent !== b, before, { timeout: 40000 });
  check(await page.evaluate(() => window.__marker === 42), 'overview refreshes itself without reloading');

  // Overview -> site.
  await Promise.all([page.waitForURL(`${base}/sites/oak-es`), page.click('tr[data-site="oak-es"] a')]);
  await page.waitForSelector('body[data-complete=yes]', { timeout: 30000 });
  await page.waitForSelector('#traffic svg path[data-series=in]', { state: 'attached' });
  await page.screenshot({ path: path.join(shots, '2-site-day.png'), fullPage: true });
  noErrors('site page');
  const site = await apiGet('/api/v1/sites/oak-es');
  check((await page.textContent('#name')) === site.name, 'site name equals the API');
  check(await page.$('#traffic svg line[data-hline=capacity]') !== null, 'capacity line drawn');
  check(await page.$('#traffic svg line[data-hline=in95]') !== null, '95th percentile line drawn');
  const ifRows = await page.$$('#ifaces tbody tr');
  check(ifRows.length === site.interfaces.length, 'interfaces table equals the API');
  const p95shown = Number(await page.$eval('#traffic-legend', (e) => e.dataset.in95));
  const v = await page.$eval('#traffic', (e) => ({ from: e.dataset.from, to: e.dataset.to, step: e.dataset.step }));
  const dayS = await apiGet(`/api/v1/sites/oak-es/series?from=${v.from}&to=${v.to}&step=${v.step}&device=edge&iface=eth0`);
  const ins = dayS.series[0].points.map((p) => p.in_bps).filter((x) => x !== null).sort((a, b) => a - b);
  const apiP95 = ins[Math.max(0, Math.ceil(0.95 * ins.length) - 1)];
  check(Math.abs(p95shown - apiP95) < 1e-6 * apiP95, `95th percentile equals the API's data (${p95shown} / ${apiP95})`);
  const png = await page.getAttribute('#png', 'href');
  const g = await context.request.get(base + png);
  check(g.ok() && g.headers()['content-type'] === 'image/png', `classic graph link works (${png})`);

  // Probe charts: one rtt and one loss chart per probe the API lists, with
  // the API's points.
  const probes = (await apiGet('/api/v1/sites/oak-es/probes')).probes;
  const shownProbes = await page.$$eval('#probes .probe', (d) => d.map((e) => e.dataset.probe));
  check(probes.length === 2 && JSON.stringify(shownProbes.sort()) === JSON.stringify([...probes].sort()),
    `a chart pair per probe of the API (${shownProbes.join(', ')})`);
  check((await page.$$('#probes svg path[data-series=rtt]')).length === probes.length &&
    (await page.$$('#probes svg path[data-series=loss]')).length === probes.length, 'rtt and loss drawn');
  for (const name of probes) {
    const ps = await apiGet(`/api/v1/sites/oak-es/series?${new URLSearchParams({ from: v.from, to: v.to, step: v.step, probe: name })}`);
    const n = ps.series[0].points.filter((p) => p.rtt_ms !== null).length;
    const shownN = Number(await page.$eval(`#probes .probe[data-probe="${name}"]`, (e) => e.dataset.points));
    check(n > 0 && n === shownN, `probe ${name}: points shown equal the API's (${shownN} / ${n})`);
  }

  // Maintenance windows: the admin declares one through the form, sees it
  // listed as the API lists it, and deletes it again.
  check(await page.isVisible('#maint-form'), 'admin sees the maintenance form');
  const start = new Date(Math.floor(Date.now() / 60000) * 60000 + 5 * 86400000);
  const iso = (d) => d.toISOString().slice(0, 16);
  await page.fill('#maint-form input[name=from]', iso(start));
  await page.fill('#maint-form input[name=to]', iso(new Date(start.getTime() + 3600000)));
  await page.fill('#maint-form input[name=reason]', 'browser test window');
  await page.click('#maint-add');
  await page.waitForFunction(() => document.querySelector('#maint-form').dataset.done === '1');
  const mw = (await apiGet('/api/v1/sites/oak-es/maintenance')).find((m) => m.reason === 'browser test window');
  check(mw && mw.from === start.getTime() / 1000 && mw.to === start.getTime() / 1000 + 3600,
    `form declared the window as typed, in UTC (${JSON.stringify(mw)})`);
  check(mw && (await page.textContent(`#maint tr[data-maint="${mw.id}"]`)).includes('browser test window'),
    'the new window is listed on the page');
  await page.screenshot({ path: path.join(shots, '2b-site-probes-maintenance.png'), fullPage: true });
  if (mw) {
    await page.click(`#maint tr[data-maint="${mw.id}"] button.del`);
    await page.waitForFunction((id) => !document.querySelector(`#maint tr[data-maint="${id}"]`), mw.id);
    const after = await apiGet('/api/v1/sites/oak-es/maintenance');
    check(!after.some((m) => m.id === mw.id), 'delete button removed the window');
  }
  noErrors('site probes and maintenance');

  // Range change, zoom, back.
  await page.click('#ranges button[data-range=week]');
  await page.waitForURL(/range=week/);
  await page.waitForFunction(() => document.querySelector('#ranges button[data-range=week]').classList.contains('active'));
  await page.waitForSelector('#traffic svg path[data-series=in]', { state: 'attached' });
  await page.screenshot({ path: path.join(shots, '3-site-week.png'), fullPage: true });
  const box = await page.$('#traffic svg');
  const bb = await box.boundingBox();
  await page.mouse.move(bb.x + bb.width * 0.5, bb.y + bb.height / 2);
  await page.mouse.down();
  await page.mouse.move(bb.x + bb.width * 0.9, bb.y + bb.height / 2, { steps: 5 });
  await page.mouse.up();
  await page.waitForURL(/from=\d+&to=\d+/);
  check(/from=\d+&to=\d+/.test(page.url()), `drag-select zooms (${page.url()})`);
  await page.waitForSelector('#traffic svg path[data-series=in]', { state: 'attached' });
  await page.goBack();
  await page.waitForURL(/range=week/);
  await page.goBack();
  await page.waitForURL(`${base}/sites/oak-es`);
  await page.waitForFunction(() => document.querySelector('#ranges button[data-range=day]').classList.contains('active'));
  check(true, 'back returns to the earlier range');
  await page.goBack();
  await page.waitForURL(`${base}/`);
  await page.waitForSelector('body[data-loaded=yes]', { timeout: 30000 });
  check(await page.$('tr[data-site="oak-es"]') !== null, 'back to the overview');
  noErrors('site navigation');

  // District.
  await page.goto(`${base}/district`);
  await page.waitForSelector('body[data-loaded=yes]', { timeout: 60000 });
  await page.screenshot({ path: path.join(shots, '4-district.png'), fullPage: true });
  noErrors('district page');
  const year = new Date().getUTCFullYear();
  const sum = await apiGet(`/api/v1/district/summary?year=${year}`);
  const met = await page.$eval('#uptime-met', (e) => e.dataset.raw);
  check(Number(met) === sum.summary.uptime.met, `uptime met count equals the API (${met} / ${sum.summary.uptime.met})`);
  const upg = await page.$$('#upgrades tbody tr');
  check(upg.length === sum.summary.upgrades.length, 'upgrade list equals the API');
  check(/\/api\/v1\/report\?year=\d{4}&format=html/.test(await page.getAttribute('#report-html', 'href')), 'report link');

  check(outside.length === 0, `nothing requested outside the collector (${outside.join(' ')})`);
  // Logout ends the session.
  await Promise.all([page.waitForURL(/login/), page.click('#logout')]);
  const r = await context.request.get(`${base}/api/v1/sites`);
  check(r.status() === 401, `logged out: API refused (${r.status()})`);
  noErrors('logout');
} catch (e) {
  check(false, `walk stopped: ${e.stack || e}`);
  await page.screenshot({ path: path.join(shots, 'failure.png'), fullPage: true }).catch(() => {});
} finally {
  await browser.close();
}
process.exit(failures.length ? 1 : 0);
