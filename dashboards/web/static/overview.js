// Overview: every school, worst first, refreshed in place.
import {
  api, apiOptional, el, fmtBps, fmtClock, fmtPct, fmtTime, initSession, pickUplink, pool, statusBadge,
  STATUS_RANK,
} from './common.js';
import { sparkline } from './chart.js';

const STATUS_EVERY_MS = 15000;
const DETAIL_EVERY_MS = 60000;
const state = { sites: [], detail: new Map(), lastDetail: 0 };

// "Today" is the UTC day, like every time on the pages.
function utcMidnightS() {
  const now = Math.floor(Date.now() / 1000);
  return now - (now % 86400);
}

function lastValue(points, key) {
  for (let i = points.length - 1; i >= 0; i--) {
    if (points[i][key] !== null && points[i][key] !== undefined) return points[i][key];
  }
  return null;
}

// Rates, uptime and sparkline of one site (several API calls).
async function loadDetail(site) {
  const now = Math.floor(Date.now() / 1000);
  const d = { in: null, out: null, spark: [], cap: site.circuit_bps, today: null, month: null };
  const full = await apiOptional(`/api/v1/sites/${encodeURIComponent(site.id)}`);
  const up = pickUplink(full?.interfaces);
  if (up) {
    if (!d.cap) d.cap = up.speed_bps;
    const q = new URLSearchParams({ from: now - 7200, to: now, device: up.device, iface: up.iface });
    const s = await apiOptional(`/api/v1/sites/${encodeURIComponent(site.id)}/series?${q}`);
    const pts = s?.series?.[0]?.points || [];
    d.in = lastValue(pts, 'in_bps');
    d.out = lastValue(pts, 'out_bps');
    d.spark = pts.map((p) => (p.in_bps ?? null));
  }
  const month = new Date().toISOString().slice(0, 7);
  const [t, m] = await Promise.all([
    apiOptional(`/api/v1/sites/${encodeURIComponent(site.id)}/uptime?from=${utcMidnightS()}&to=${now}`),
    apiOptional(`/api/v1/sites/${encodeURIComponent(site.id)}/uptime?month=${month}`),
  ]);
  d.today = t ? t.uptime_percent : undefined;
  d.month = m ? m.uptime_percent : undefined;
  d.target = m?.target_percent ?? t?.target_percent ?? null;
  state.detail.set(site.id, d);
}

function uptimeCell(field, v, target) {
  if (v === undefined) return el('td', { class: 'num na', 'data-field': field, text: 'not available' });
  const td = el('td', { class: 'num', 'data-field': field, 'data-raw': v === null ? '' : String(v), text: fmtPct(v) });
  if (v !== null && target !== null) {
    td.classList.add(v < target ? 'bad' : 'good');
    td.title = `target ${fmtPct(target, 1)}`;
  }
  return td;
}

function rateCell(field, v, cap) {
  const td = el('td', { class: 'num', 'data-field': field, 'data-raw': v === null ? '' : String(v), text: fmtBps(v) });
  if (v !== null && cap) {
    const bar = el('span', { class: 'bar' });
    const fill = el('span');
    const u = Math.min(1, v / cap);
    fill.style.width = `${(u * 100).toFixed(0)}%`;
    if (u >= 0.8) fill.classList.add('hot');
    bar.append(fill);
    td.append(bar);
  }
  return td;
}

function render() {
  const q = document.getElementById('search').value.trim().toLowerCase();
  const type = document.getElementById('type').value;
  const rows = state.sites
    .filter((s) => (!type || s.school_type === type) && (!q || s.name.toLowerCase().includes(q) || s.id.toLowerCase().includes(q)))
    .sort((a, b) => {
      const r = (STATUS_RANK[a.status] ?? 3) - (STATUS_RANK[b.status] ?? 3);
      if (r) return r;
      const ua = state.detail.get(a.id)?.month ?? 101, ub = state.detail.get(b.id)?.month ?? 101;
      return ua - ub || a.name.localeCompare(b.name);
    });
  const body = document.querySelector('#sites tbody');
  body.textContent = '';
  for (const s of rows) {
    const d = state.detail.get(s.id) || {};
    const tr = el('tr', { 'data-site': s.id });
    tr.append(
      el('td', {}, el('a', { href: `/sites/${encodeURIComponent(s.id)}`, text: s.name }),
        el('div', { class: 'muted', text: `${s.id} · ${s.school_type}` })),
      el('td', { 'data-field': 'status', 'data-raw': s.status }, statusBadge(s.status)),
      el('td', { 'data-field': 'since', 'data-raw': s.since_ms ?? '', text: s.since_ms ? fmtTime(s.since_ms) : '–' }),
      rateCell('in', d.in ?? null, d.cap),
      rateCell('out', d.out ?? null, d.cap),
      el('td', { class: 'num', 'data-field': 'capacity', 'data-raw': d.cap ?? s.circuit_bps ?? '', text: fmtBps(d.cap ?? s.circuit_bps) }),
      uptimeCell('uptime_today', d.today, d.target ?? null),
      uptimeCell('uptime_month', d.month, d.target ?? null),
      el('td', { title: 'inbound, last 2 hours, against capacity' }, sparkline(d.spark || [], '#43a047', d.cap)),
    );
    body.append(tr);
  }
  document.getElementById('empty').hidden = rows.length > 0;
  const down = state.sites.filter((s) => s.status === 'link_down' || s.status === 'agent_down').length;
  document.getElementById('counts').textContent = `${state.sites.length} schools, ${down} down`;
  document.getElementById('updated').textContent = `updated ${fmtClock(Date.now())}`;
  const target = [...state.detail.values()].map((d) => d.target).find((t) => Number.isFinite(t));
  document.getElementById('target').textContent = target === undefined ? '' : `target ${fmtPct(target, 1)}`;
}

async function refresh() {
  try {
    state.sites = await api('/api/v1/sites');
    if (Date.now() - state.lastDetail >= DETAIL_EVERY_MS || state.detail.size === 0) {
      state.lastDetail = Date.now();
      render();
      await pool(state.sites, 4, loadDetail);
    }
    render();
    document.body.dataset.loaded = 'yes';
  } catch (e) {
    document.getElementById('updated').textContent = `update failed: ${e.message}`;
  }
}

await initSession();
document.getElementById('search').addEventListener('input', render);
document.getElementById('type').addEventListener('change', render);
await refresh();
setInterval(refresh, STATUS_EVERY_MS);
