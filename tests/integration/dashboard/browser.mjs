// Headless Chromium walk of the dashboard (driven by playwright-core):
// log in, every page without console errors, figures equal the API's,
// overview -> site -> range change -> back, screenshots. The browser runs in
// a zone far from UTC (Pacific/Auckland, UTC+13 in November): every time
// shown must be UTC and say so, and the maintenance form must take UTC.
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
const context = await browser.newContext({
  ignoreHTTPSErrors: true, viewport: { width: 1400, height: 900 }, timezoneId: 'Pacific/Auckland',
});
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

// How the pages write a time: "2026-11-23 14:05 UTC".
const utcText = (ms) => `${new Date(ms).toISOString().slice(0, 16).replace('T', ' ')} UTC`;

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
  check(await page.evaluate(() => new Date(2026, 0, 1).getTimezoneOffset()) !== 0, 'the browser is not on UTC');
  const oak = sites.find((s) => s.id === 'oak-es');
  const sinceText = await page.$eval('tr[data-site="oak-es"] td[data-field=since]', (td) => td.textContent);
  check(sinceText === utcText(oak.since_ms), `"since" shown in UTC (${sinceText} / ${utcText(oak.since_ms)})`);
  check(/^updated \d\d:\d\d:\d\d UTC$/.test(await page.textContent('#updated')), 'refresh time in UTC');
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
  const midnight = now - (now % 86400); // "today" is the UTC day
  const upToday = await apiGet(`/api/v1/sites/oak-es/uptime?from=${midnight}&to=${now}`);
  const shownToday = await page.$eval('tr[data-site="oak-es"] td[data-field=uptime_today]', (td) => td.dataset.raw ?? 'na');
  check(upToday.uptime_percent === null ? shownToday === '' : Math.abs(Number(shownToday) - upToday.uptime_percent) < 1e-9,
    `today's uptime (UTC day) equals the API (${shownToday} / ${upToday.uptime_percent})`);
  check((await page.textContent('#target')) === `target ${up.target_percent.toFixed(1)} %`, `uptime target shown (${await page.textContent('#target')})`);
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
  check((await page.textContent('#since')) === `since ${utcText(site.since_ms)}`, `site "since" in UTC (${await page.textContent('#since')})`);
  const siteUp = Number(await page.$eval('#uptime [data-field=uptime_month]', (e) => e.dataset.raw));
  check(Math.abs(siteUp - up.uptime_percent) < 1e-9, `site page month uptime equals the API (${siteUp} / ${up.uptime_percent})`);
  const ticks = await page.$$eval('#traffic svg text', (t) => t.map((e) => e.textContent));
  check(ticks.includes('UTC'), 'time axis says UTC');
  check(await page.$('#traffic svg line[data-hline=capacity]') !== null, 'capacity line drawn');
  check(await page.$('#traffic svg line[data-hline=in95]') !== null, '95th percentile line drawn');
  const ifRows = await page.$$('#ifaces tbody tr');
  check(ifRows.length === site.interfaces.length, 'interfaces table equals the API');
  const p95shown = Number(await page.$eval('#traffic-legend', (e) => e.dataset.in95));
  const v = await page.$eval('#traffic', (e) => ({ from: e.dataset.from, to: e.dataset.to, step: e.dataset.step }));
  // The 95th percentile is the billing one: over 5-minute averages whatever
  // the chart's step; recomputed here from a 5-minute fetch of the same span.
  const fiveS = await apiGet(`/api/v1/sites/oak-es/series?from=${v.from}&to=${v.to}&step=300&device=edge&iface=eth0`);
  const ins = fiveS.series[0].points.map((p) => p.in_bps).filter((x) => x !== null).sort((a, b) => a - b);
  const apiP95 = ins[Math.max(0, Math.ceil(0.95 * ins.length) - 1)];
  check(fiveS.series[0].step === 300 && ins.length > 0, `5-minute series for the 95th (${fiveS.series[0].step} s, ${ins.length} points)`);
  check(Math.abs(p95shown - apiP95) < 1e-6 * apiP95, `95th percentile equals the 5-minute data's (${p95shown} / ${apiP95})`);
  const dayS = await apiGet(`/api/v1/sites/oak-es/series?from=${v.from}&to=${v.to}&step=${v.step}&device=edge&iface=eth0`);
  check(dayS.series[0].p95.in_bps === p95shown && dayS.series[0].p95.step === 300,
    `series API's p95 at the chart's step ${v.step} is the 5-minute one (${dayS.series[0].p95.in_bps})`);
  const png = await page.getAttribute('#png', 'href');
  const g = await context.request.get(base + png);
  check(g.ok() && g.headers()['content-type'] === 'image/png', `classic graph link works (${png})`);

  // Applications and top talkers as the API gives them (privacy applied by
  // the agent: the page shows the names as reported and says so).
  const flows = (await apiGet('/api/v1/sites/oak-es/flows')).sources[0].intervals[0];
  const appRows = await page.$$eval('#apps tbody tr', (trs) => trs.map((t) => [...t.children].map((c) => c.textContent)));
  check(appRows.length === flows.by_app.length && appRows.every((r, i) => r[0] === flows.by_app[i].name),
    `application classes equal the API (${appRows.map((r) => r[0])})`);
  const total = flows.by_app.reduce((a, x) => a + x.bytes, 0);
  check(appRows[0]?.[2] === `${(100 * flows.by_app[0].bytes / total).toFixed(1)} %`, `application share (${appRows[0]?.[2]})`);
  const talkers = await page.$$eval('#talkers tbody tr td:first-child', (tds) => tds.map((t) => t.textContent));
  check(JSON.stringify(talkers) === JSON.stringify(flows.top_talkers.map((t) => t.address)),
    `top talkers as reported by the agent (${talkers})`);
  check(/prefixes/.test(await page.textContent('.flows .privacy')), 'privacy note says school addresses are prefixes');

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
    const known = ps.series[0].points.filter((p) => p.rtt_ms !== null);
    const n = known.length;
    const sec = await page.$(`#probes .probe[data-probe="${name}"]`);
    const d = await sec.evaluate((e) => ({ ...e.dataset }));
    check(n > 0 && n === Number(d.points), `probe ${name}: points shown equal the API's (${d.points} / ${n})`);
    const last = known[n - 1];
    check(Math.abs(Number(d.rttLast) - last.rtt_ms) < 1e-9 && Math.abs(Number(d.lossLast) - last.loss * 100) < 1e-9,
      `probe ${name}: latest rtt ${d.rttLast} ms and loss ${d.lossLast} % equal the API (${last.rtt_ms} ms, ${last.loss * 100} %)`);
    const latest = await sec.$eval('.latest', (e) => e.textContent);
    check(latest.includes(`${last.rtt_ms.toFixed(1)} ms`) && latest.includes(`${(last.loss * 100).toFixed(1)} %`),
      `probe ${name}: latest values written with units (${latest})`);
    // Readable at a glance: each chart at least 600 x 220 px on this screen,
    // tick labels at least 11 px high, the y axis titled with its unit,
    // loss in percent on a scale that holds the API's maximum.
    for (const [kind, title, unit, max] of [
      ['rtt', 'round-trip time (ms)', 'ms', Math.max(...known.map((p) => p.rtt_ms))],
      ['loss', 'packet loss (%)', '%', Math.max(...known.map((p) => p.loss * 100))]]) {
      const chart = await sec.$(`.chart[data-kind=${kind}] svg`);
      const bb = await chart.boundingBox();
      check(bb.width >= 600 && bb.height >= 220, `probe ${name} ${kind} chart size ${Math.round(bb.width)}x${Math.round(bb.height)}`);
      const labels = await chart.$$eval('text', (t) => t.map((e) => ({ text: e.textContent, h: e.getBoundingClientRect().height })));
      check(labels.some((l) => l.text === title), `probe ${name} ${kind}: y axis titled "${title}"`);
      const yl = labels.filter((l) => l.text.endsWith(` ${unit}`));
      check(yl.length >= 3 && yl.every((l) => l.h >= 11), `probe ${name} ${kind}: y labels in ${unit}, >= 11 px (${yl.map((l) => `${l.text}@${l.h.toFixed(0)}`).join(' ')})`);
      const ymax = Number(await chart.evaluate((e) => e.dataset.ymax));
      check(ymax >= max && ymax <= Math.max(2, max * 2), `probe ${name} ${kind}: scale 0..${ymax} holds the API's max ${max}`);
    }
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
  const row = mw ? await page.textContent(`#maint tr[data-maint="${mw.id}"]`) : '';
  check(row.includes('browser test window'), 'the new window is listed on the page');
  check(row.includes(utcText(start.getTime())) && row.includes(utcText(start.getTime() + 3600000)),
    `the table shows the window as typed, in UTC (${row})`);
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
  const ranked = await page.$$eval('#schools tbody tr', (trs) => trs.map((t) => ({
    site: t.dataset.site, util: t.querySelector('[data-field=util]').dataset.raw,
    uptime: t.querySelector('[data-field=uptime]').dataset.raw,
  })));
  const byUtil = sum.sites.slice().sort((a, b) => (b.utilisation ?? -1) - (a.utilisation ?? -1));
  check(ranked.length === sum.sites.length && ranked.every((r, i) => r.site === byUtil[i].site),
    `schools ranked busiest first as the API's utilisation (${ranked.map((r) => r.site)})`);
  check(ranked.every((r) => {
    const a = sum.sites.find((x) => x.site === r.site);
    return (a.uptime_percent === null ? r.uptime === '' : Math.abs(Number(r.uptime) - a.uptime_percent) < 1e-9) &&
      (a.utilisation === null ? r.util === '' : Math.abs(Number(r.util) - a.utilisation) < 1e-9);
  }), 'schools table: uptime and utilisation equal the API');
  const reportHref = await page.getAttribute('#report-html', 'href');
  check(/\/api\/v1\/report\?year=\d{4}&format=html/.test(reportHref), 'report link');
  const rep = await context.request.get(base + reportHref);
  check(rep.ok() && /attachment/.test(rep.headers()['content-disposition'] || '') && (await rep.text()).includes('Oak Elementary'),
    `annual report downloads as HTML (${rep.status()})`);

  // A school without data, with one settled outage: the page still works,
  // and its outage log is the API's, times in UTC.
  await page.goto(`${base}/sites/elm-ms`);
  await page.waitForSelector('body[data-complete=yes]', { timeout: 30000 });
  noErrors('site page without data');
  check(/No interface data yet/.test(await page.textContent('#traffic')), 'no-data school: the chart says so');
  const outages = await apiGet('/api/v1/sites/elm-ms/outages');
  const oRows = await page.$$eval('#outages tbody tr[data-outage]', (trs) => trs.map((t) => [...t.children].map((c) => c.textContent)));
  check(outages.length === 1 && oRows.length === 1 && oRows[0][0] === utcText(outages[0].start_ms) &&
    oRows[0][1] === utcText(outages[0].end_ms) && oRows[0][2] === '12m 34s' && oRows[0][3] === outages[0].cause,
    `outage log equals the API (${JSON.stringify(oRows)})`);
  await page.screenshot({ path: path.join(shots, '5-site-no-data.png'), fullPage: true });

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
