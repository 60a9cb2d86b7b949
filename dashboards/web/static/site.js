// Site page: bandwidth with 95th percentile and capacity, probes,
// interfaces, flows, outages, maintenance windows (a form for admins),
// capacity and growth.
import {
  api, apiOptional, el, fmtBps, fmtDuration, fmtPct, fmtTime, initSession, pickUplink,
  send, statusBadge,
} from './common.js';
import { lineChart } from './chart.js';

const RANGES = { day: 86400, week: 7 * 86400, month: 31 * 86400, year: 366 * 86400 };
const STEPS = [60, 300, 3600, 86400];
const id = decodeURIComponent(location.pathname.replace(/^\/sites\//, '').replace(/\/$/, ''));
const enc = encodeURIComponent(id);
let site = null, uplink = null, capacityBps = null, session = null;

function viewFromUrl() {
  const q = new URLSearchParams(location.search);
  const from = Number(q.get('from')), to = Number(q.get('to'));
  if (Number.isInteger(from) && Number.isInteger(to) && from > 0 && to > from) {
    return { range: null, from, to };
  }
  const range = RANGES[q.get('range')] ? q.get('range') : 'day';
  const now = Math.floor(Date.now() / 1000);
  return { range, from: now - RANGES[range], to: now };
}

function go(params) {
  history.pushState(null, '', `${location.pathname}?${new URLSearchParams(params)}`);
  drawRange();
}

// Zooming any chart moves every chart of the page to that span.
const zoom = (from, to) => go({ from, to });
const reset = () => go({ range: 'day' });

function drawRange() {
  return Promise.all([drawTraffic(), drawProbes()]);
}

async function drawTraffic() {
  const v = viewFromUrl();
  for (const b of document.querySelectorAll('#ranges button')) {
    b.classList.toggle('active', b.dataset.range === v.range);
  }
  const box = document.getElementById('traffic');
  const legend = document.getElementById('traffic-legend');
  box.dataset.from = v.from;
  box.dataset.to = v.to;
  if (!uplink) {
    box.textContent = '';
    box.append(el('p', { class: 'na', text: 'No interface data yet.' }));
    document.getElementById('png').hidden = true;
    legend.textContent = '';
    return;
  }
  const step = STEPS.find((s) => s >= (v.to - v.from) / 1000) || 86400;
  box.dataset.step = step;
  const q = new URLSearchParams({ from: v.from, to: v.to, step, device: uplink.device, iface: uplink.iface });
  const s = await api(`/api/v1/sites/${enc}/series?${q}`);
  const pts = s.series?.[0]?.points || [];
  const ins = pts.map((p) => [p.time, p.in_bps ?? null]);
  const outs = pts.map((p) => [p.time, p.out_bps ?? null]);
  // The 95th percentile comes from the server, always over 5-minute averages
  // (the billing convention), not from the points drawn at this range's step.
  const pc = s.series?.[0]?.p95 || {};
  const in95 = pc.in_bps ?? null, out95 = pc.out_bps ?? null;
  const pcNote = pc.step ? `95th percentile of ${pc.step === 300 ? '5-minute' : `${pc.step} s`} averages` : '';
  lineChart(box, {
    from: v.from, to: v.to, yFormat: fmtBps, yTitle: 'bandwidth (bit/s)',
    series: [
      { name: 'in', color: '#43a047', points: ins },
      { name: 'out', color: '#1565c0', points: outs },
    ],
    hlines: [
      { value: in95, color: '#1b5e20', label: 'in95', dash: true },
      { value: out95, color: '#0d47a1', label: 'out95', dash: true },
      { value: capacityBps, color: '#c62828', label: 'capacity' },
    ],
    onZoom: zoom, onReset: reset,
  });
  legend.textContent = '';
  legend.append(
    el('span', {}, el('span', { class: 'sw in' }), `In (95th: ${fmtBps(in95)})`),
    el('span', {}, el('span', { class: 'sw out' }), `Out (95th: ${fmtBps(out95)})`),
    el('span', {}, el('span', { class: 'sw cap' }), `Capacity ${fmtBps(capacityBps)}`),
    el('span', { class: 'muted', text: `${uplink.device} ${uplink.iface} · ${fmtTime(v.from * 1000)} – ${fmtTime(v.to * 1000)}${pcNote ? ` · ${pcNote}` : ''}` }),
  );
  legend.dataset.in95 = in95 ?? '';
  legend.dataset.out95 = out95 ?? '';
  const png = document.getElementById('png');
  png.hidden = false;
  const gq = v.range ? `range=${v.range}` : `from=${v.from}&to=${v.to}`;
  png.href = `/graph/site/${enc}/traffic.png?${gq}&width=1000&height=300`;
  document.body.dataset.loaded = 'yes';
}

// Probe rtt and loss over the view of the bandwidth chart (api.h /probes
// lists the probes; their series come from /series?probe=NAME).
let probeNames = null;
async function drawProbes() {
  const box = document.getElementById('probes');
  if (probeNames === null) {
    const l = await apiOptional(`/api/v1/sites/${enc}/probes`);
    probeNames = l && Array.isArray(l.probes) ? l.probes : [];
  }
  box.textContent = '';
  if (!probeNames.length) {
    box.append(el('p', { class: 'muted', text: 'No probe results from this school yet.' }));
    return;
  }
  const v = viewFromUrl();
  const step = STEPS.find((s) => s >= (v.to - v.from) / 1000) || 86400;
  await Promise.all(probeNames.map(async (name) => {
    const q = new URLSearchParams({ from: v.from, to: v.to, step, probe: name });
    const s = await api(`/api/v1/sites/${enc}/series?${q}`);
    const pts = s.series?.[0]?.points || [];
    const rtt = pts.map((p) => [p.time, p.rtt_ms ?? null]);
    const loss = pts.map((p) => [p.time, p.loss === null || p.loss === undefined ? null : p.loss * 100]);
    const last = (a) => { for (let i = a.length - 1; i >= 0; i--) if (a[i][1] !== null) return a[i][1]; return null; };
    const lr = last(rtt), ll = last(loss);
    const rc = el('div', { class: 'chart', 'data-probe': name, 'data-kind': 'rtt' });
    const lc = el('div', { class: 'chart', 'data-probe': name, 'data-kind': 'loss' });
    const sec = el('div', {
      class: 'probe', 'data-probe': name, 'data-points': rtt.filter((p) => p[1] !== null).length,
      'data-rtt-last': lr ?? '', 'data-loss-last': ll ?? '',
    },
    el('h3', { text: name }),
    el('p', { class: 'latest' }, 'latest: round-trip time ',
      el('strong', { text: lr === null ? '–' : `${lr.toFixed(1)} ms` }), ', loss ',
      el('strong', { text: ll === null ? '–' : `${ll.toFixed(1)} %` })),
    el('div', { class: 'pair' }, rc, lc));
    box.append(sec);
    const fmt = (unit) => (x) => `${x.toFixed(x === 0 || x >= 10 ? 0 : x >= 1 ? 1 : 2)} ${unit}`;
    lineChart(rc, {
      from: v.from, to: v.to, height: 240, yFormat: fmt('ms'), yTitle: 'round-trip time (ms)',
      series: [{ name: 'rtt', color: '#6a1b9a', points: rtt, width: 2 }],
      onZoom: zoom, onReset: reset,
    });
    lineChart(lc, {
      from: v.from, to: v.to, height: 240, yFormat: fmt('%'), yTitle: 'packet loss (%)',
      series: [{ name: 'loss', color: '#c62828', points: loss, width: 2 }],
      onZoom: zoom, onReset: reset,
    });
  }));
}

// Maintenance windows; admins get a form and delete buttons (POST/DELETE
// with the session's CSRF token).
async function drawMaintenance() {
  const body = document.querySelector('#maint tbody');
  const list = await apiOptional(`/api/v1/sites/${enc}/maintenance`);
  body.textContent = '';
  const admin = !!session?.admin;
  document.getElementById('maint-form').hidden = !admin;
  if (!list) {
    body.append(el('tr', {}, el('td', { colspan: 4, class: 'na', text: 'Maintenance windows: not available.' })));
    return;
  }
  if (!list.length) {
    body.append(el('tr', {}, el('td', { colspan: 4, class: 'muted', text: 'No maintenance windows declared.' })));
  }
  for (const m of list.slice().reverse()) {
    const del = admin ? el('button', { type: 'button', class: 'del', text: 'Delete' }) : null;
    if (del) {
      del.addEventListener('click', async () => {
        del.disabled = true;
        try {
          await send('DELETE', `/api/v1/sites/${enc}/maintenance/${m.id}`);
        } catch (e) {
          document.getElementById('maint-error').textContent = e.message;
        }
        drawMaintenance();
      });
    }
    body.append(el('tr', { 'data-maint': m.id },
      el('td', { text: fmtTime(m.start_ms) }), el('td', { text: fmtTime(m.end_ms) }),
      el('td', { text: m.reason }), el('td', {}, del)));
  }
}

function wireMaintenanceForm() {
  const form = document.getElementById('maint-form');
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const err = document.getElementById('maint-error');
    err.textContent = '';
    // datetime-local values are taken as UTC, as the API reads them.
    const v = (k) => form.elements[k].value;
    try {
      await send('POST', `/api/v1/sites/${enc}/maintenance`, { from: v('from'), to: v('to'), reason: v('reason') });
      form.reset();
    } catch (e) {
      err.textContent = e.message;
    }
    await drawMaintenance();
    form.dataset.done = String(Number(form.dataset.done || 0) + 1);
  });
}

function drawIfaces() {
  const body = document.querySelector('#ifaces tbody');
  for (const i of site.interfaces || []) {
    const up = i.oper_status === 1;
    body.append(el('tr', {},
      el('td', { text: i.device }), el('td', { text: i.iface }), el('td', { text: i.if_alias || '' }),
      el('td', { class: 'num', text: fmtBps(i.speed_bps) }),
      el('td', {}, el('span', { class: `status ${up ? 'up' : i.oper_status ? 'link_down' : 'no_data'}`, text: up ? 'up' : i.oper_status ? 'down' : 'unknown' })),
      el('td', { text: fmtTime(i.last_seen_ms) })));
  }
  if (!(site.interfaces || []).length) {
    body.append(el('tr', {}, el('td', { colspan: 6, class: 'na', text: 'No interfaces reported yet.' })));
  }
}

function fmtBytes(v) {
  if (!Number.isFinite(v)) return '–';
  const u = [['TB', 1e12], ['GB', 1e9], ['MB', 1e6], ['kB', 1e3]].find(([, f]) => v >= f);
  return u ? `${(v / u[1]).toFixed(1)} ${u[0]}` : `${v} B`;
}

// cols: [[heading, (row) => text, numeric]]; rows: objects.
function table(id, cols, rows) {
  const t = el('table', { id },
    el('thead', {}, el('tr', {}, ...cols.map(([h, , num]) => el('th', { class: num ? 'num' : null, text: h })))));
  const tb = el('tbody');
  for (const r of rows) tb.append(el('tr', {}, ...cols.map(([, f, num]) => el('td', { class: num ? 'num' : null, text: f(r) }))));
  t.append(tb);
  return t;
}

// What the agent's privacy setting did to the school's addresses, as far as
// the names tell (flow_report.h: a prefix, "h:" + a keyed hash, or in full).
function privacyNote(talkers) {
  if (talkers.some((t) => /^h:[0-9a-f]+$/.test(t.address))) {
    return 'School addresses are pseudonymised (keyed hash) by the agent\'s privacy setting.';
  }
  if (talkers.some((t) => t.address.includes('/'))) {
    return 'School addresses are grouped into prefixes by the agent\'s privacy setting.';
  }
  return 'Addresses as the agent reports them (its privacy setting decides whether school addresses are grouped, hashed or shown in full).';
}

// Flow summaries (api.h /flows): the newest interval of each capture source,
// privacy already applied by the agent; nothing here undoes it.
async function drawFlows() {
  const box = document.getElementById('flows');
  const f = await apiOptional(`/api/v1/sites/${enc}/flows`);
  if (!f || !Array.isArray(f.sources)) {
    box.append(el('p', { class: 'na', text: 'Application classes and top talkers: not available.' }));
    return;
  }
  if (!f.sources.length) {
    box.append(el('p', { class: 'muted', text: 'No flow data from this school yet.' }));
    return;
  }
  for (const src of f.sources) {
    const iv = src.intervals?.[0];
    if (!iv) continue;
    const total = (iv.by_app || []).reduce((a, x) => a + (x.bytes || 0), 0);
    const share = (x) => (total ? `${((100 * x.bytes) / total).toFixed(1)} %` : '–');
    const apps = table('apps', [['Application', (x) => x.name], ['Bytes', (x) => fmtBytes(x.bytes), true], ['Share', share, true]], iv.by_app || []);
    const talkers = iv.top_talkers || [];
    const tt = talkers.length
      ? table('talkers', [['Top talker', (x) => x.address], ['In', (x) => fmtBytes(x.bytes_in), true],
        ['Out', (x) => fmtBytes(x.bytes_out), true], ['Total', (x) => fmtBytes(x.bytes), true]], talkers)
      : el('p', { class: 'muted', text: 'No top talkers in this interval.' });
    box.append(el('div', { class: 'flows', 'data-source': src.source },
      el('h3', { text: `${src.source}: ${fmtTime(iv.start_ms)} – ${fmtTime(iv.end_ms)}` }),
      el('div', { class: 'pair' }, apps, tt),
      talkers.length ? el('p', { class: 'muted privacy', text: privacyNote(talkers) }) : null));
  }
}

async function drawOutages() {
  const body = document.querySelector('#outages tbody');
  const list = await apiOptional(`/api/v1/sites/${enc}/outages`);
  if (!list) {
    body.append(el('tr', {}, el('td', { colspan: 5, class: 'na', text: 'Outage log: not available.' })));
    return;
  }
  if (!list.length) {
    body.append(el('tr', {}, el('td', { colspan: 5, class: 'muted', text: 'No outages in the last 30 days.' })));
  }
  for (const o of list.slice().reverse()) {
    body.append(el('tr', { 'data-outage': o.id },
      el('td', { text: fmtTime(o.start_ms) }), el('td', { text: o.end_ms ? fmtTime(o.end_ms) : 'ongoing' }),
      el('td', { text: fmtDuration(o.duration_s) }), el('td', { text: o.cause }), el('td', { text: o.state })));
  }
}

// Uptime of this month and this year (UTC calendar) against the target.
async function drawUptime() {
  const box = document.getElementById('uptime');
  const now = new Date();
  const month = now.toISOString().slice(0, 7);
  const [m, y] = await Promise.all([
    apiOptional(`/api/v1/sites/${enc}/uptime?month=${month}`),
    apiOptional(`/api/v1/sites/${enc}/uptime?year=${now.getUTCFullYear()}`),
  ]);
  const part = (label, u, field) => {
    const v = u ? u.uptime_percent : null;
    const cls = v === null || v === undefined || !u ? 'na' : u.met ? 'good' : 'bad';
    return el('span', { class: cls, 'data-field': field, 'data-raw': v ?? '', text: `${label} ${v === null || v === undefined ? 'no data' : fmtPct(v)}` });
  };
  const target = m?.target_percent ?? y?.target_percent;
  box.append('Uptime: ', part('this month', m, 'uptime_month'), ' · ', part('this year', y, 'uptime_year'),
    Number.isFinite(target) ? ` (target ${fmtPct(target, 1)}, maintenance excluded)` : '');
}

async function drawCapacity() {
  const dl = document.getElementById('capacity');
  const year = new Date().getUTCFullYear();
  const c = await apiOptional(`/api/v1/sites/${enc}/capacity?year=${year}`);
  if (!c) {
    dl.append(el('dt', { text: 'Capacity' }), el('dd', { class: 'na', text: 'not available' }));
    return;
  }
  const g = c.growth?.provisioned ?? null, used = c.growth?.used ?? null;
  const target = c.growth?.target;
  const since = c.growth?.baseline_year ? ` since ${c.growth.baseline_year}` : '';
  const growthText = (x) => (x && Number.isFinite(x.growth)
    ? `+${Math.round(x.growth * 100)} %${since} (${x.on_track ? 'on track' : 'behind'}` +
      `${Number.isFinite(x.expected_growth) ? `; +${Math.round(x.expected_growth * 100)} % expected by now` : ''})`
    : 'not known (no baseline)');
  const facts = [
    ['Uplink', c.uplink ? `${c.uplink.device} ${c.uplink.iface}` : '–'],
    ['Provisioned rate', fmtBps(c.rate_bps?.last)],
    ['95th percentile in / out', `${fmtBps(c.in?.p95_bps)} / ${fmtBps(c.out?.p95_bps)}`],
    ['Peak in / out', `${fmtBps(c.in?.max_bps)} / ${fmtBps(c.out?.max_bps)}`],
    ['Utilisation (95th)', c.utilisation === null || c.utilisation === undefined ? '–' : fmtPct(c.utilisation * 100, 1)],
    ['Growth target', Number.isFinite(target) ? `+${Math.round(target * 100)} % over the plan (${site.school_type})` : '–'],
    ['Growth of the provisioned rate', growthText(g)],
    ['Growth of use (95th)', growthText(used)],
    ['Forecast', c.forecast ? (c.forecast.reach ? `95th percentile reaches 80 % of capacity by ${c.forecast.reach}` : `${c.forecast.kind} (${c.forecast.months ?? 0} month(s) of data)`) : '–'],
    ['Recommendation', c.recommendation || '–'],
  ];
  for (const [k, v] of facts) dl.append(el('dt', { text: k }), el('dd', { text: v }));
  dl.dataset.p95in = c.in?.p95_bps ?? '';
}

async function main() {
  session = await initSession();
  site = await api(`/api/v1/sites/${enc}`);
  document.title = `netpulse · ${site.name}`;
  document.getElementById('name').textContent = site.name;
  const st = document.getElementById('status');
  st.replaceWith(statusBadge(site.status));
  document.getElementById('since').textContent = site.since_ms ? `since ${fmtTime(site.since_ms)}` : '';
  document.getElementById('stype').textContent = site.school_type;
  uplink = pickUplink(site.interfaces);
  capacityBps = site.circuit_bps || uplink?.speed_bps || null;
  document.getElementById('circuit').textContent = fmtBps(capacityBps);
  for (const b of document.querySelectorAll('#ranges button')) {
    b.addEventListener('click', () => go({ range: b.dataset.range }));
  }
  window.addEventListener('popstate', drawRange);
  wireMaintenanceForm();
  drawIfaces();
  await drawTraffic();
  await Promise.all([drawUptime(), drawProbes(), drawFlows(), drawOutages(), drawMaintenance(), drawCapacity()]);
  document.body.dataset.complete = 'yes';
}

main().catch((e) => {
  document.getElementById('name').textContent = `Cannot show this school: ${e.message}`;
});
