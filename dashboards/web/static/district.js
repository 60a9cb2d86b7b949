// District page: totals, targets met, the upgrade list, the annual report.
import { api, apiOptional, el, fmtBps, fmtPct, initSession, pickUplink, pool } from './common.js';

async function totalsNow(sites) {
  let inSum = 0, outSum = 0, rate = 0, known = 0;
  const now = Math.floor(Date.now() / 1000);
  await pool(sites, 4, async (s) => {
    const full = await apiOptional(`/api/v1/sites/${encodeURIComponent(s.id)}`);
    const up = pickUplink(full?.interfaces);
    rate += s.circuit_bps || up?.speed_bps || 0;
    if (!up) return;
    const q = new URLSearchParams({ from: now - 1800, to: now, device: up.device, iface: up.iface });
    const ser = await apiOptional(`/api/v1/sites/${encodeURIComponent(s.id)}/series?${q}`);
    const pts = ser?.series?.[0]?.points || [];
    for (let i = pts.length - 1; i >= 0; i--) {
      if (pts[i].in_bps !== null && pts[i].in_bps !== undefined) {
        inSum += pts[i].in_bps;
        outSum += pts[i].out_bps ?? 0;
        known++;
        break;
      }
    }
  });
  document.getElementById('total-now').textContent = known ? `${fmtBps(inSum)} / ${fmtBps(outSum)}` : '–';
  document.getElementById('total-now').dataset.raw = String(inSum);
  document.getElementById('total-rate').textContent = fmtBps(rate);
}

const yesNo = (v, yes, no) => (v === null || v === undefined ? el('span', { class: 'na', text: 'no data' })
  : el('span', { class: v ? 'good' : 'bad', text: v ? yes : no }));

// Every school of the summary, busiest first (utilisation of the 95th
// percentile against the provisioned rate).
function drawSchools(list) {
  const body = document.querySelector('#schools tbody');
  const rows = list.slice().sort((a, b) => (b.utilisation ?? -1) - (a.utilisation ?? -1) || a.name.localeCompare(b.name));
  rows.forEach((r, i) => {
    body.append(el('tr', { 'data-site': r.site },
      el('td', { text: String(i + 1) }),
      el('td', {}, el('a', { href: `/sites/${encodeURIComponent(r.site)}`, text: r.name })),
      el('td', { text: r.school_type }),
      el('td', { class: 'num', 'data-field': 'util', 'data-raw': r.utilisation ?? '', text: r.utilisation === null ? '–' : fmtPct(r.utilisation * 100, 1) }),
      el('td', { class: 'num', text: fmtBps(r.p95_bps) }),
      el('td', { class: 'num', text: fmtBps(r.rate_bps) }),
      el('td', { class: 'num', 'data-field': 'uptime', 'data-raw': r.uptime_percent ?? '' }, r.uptime_percent === null ? '–' : fmtPct(r.uptime_percent), ' ', yesNo(r.uptime_met, 'met', 'missed')),
      el('td', {}, yesNo(r.growth_on_track, 'on track', 'behind')),
      el('td', { text: r.recommendation || '' })));
  });
}

async function main() {
  await initSession();
  const year = new Date().getUTCFullYear();
  document.getElementById('year').textContent = String(year);
  const sel = document.getElementById('report-year');
  for (let y = year; y >= year - 5; y--) sel.append(el('option', { value: String(y), text: String(y) }));
  const links = () => {
    document.getElementById('report-html').href = `/api/v1/report?year=${sel.value}&format=html`;
    document.getElementById('report-csv').href = `/api/v1/report?year=${sel.value}&format=csv`;
  };
  sel.addEventListener('change', links);
  links();
  const sites = await api('/api/v1/sites');
  const sum = await apiOptional(`/api/v1/district/summary?year=${year}`);
  const s = sum?.summary;
  if (s) {
    const um = document.getElementById('uptime-met');
    um.textContent = `${s.uptime.met} of ${s.schools}`;
    um.dataset.raw = String(s.uptime.met);
    document.getElementById('uptime-more').textContent = `missed ${s.uptime.missed}, no data ${s.uptime.no_data}`;
    const gm = document.getElementById('growth-met');
    gm.textContent = `${s.growth.on_track} of ${s.schools}`;
    gm.dataset.raw = String(s.growth.on_track);
    document.getElementById('growth-more').textContent = `behind ${s.growth.behind}, not known ${s.growth.unknown}`;
    drawSchools(sum.sites || []);
    const body = document.querySelector('#upgrades tbody');
    for (const u of s.upgrades || []) {
      body.append(el('tr', { 'data-site': u.site },
        el('td', { text: String(u.rank) }),
        el('td', {}, el('a', { href: `/sites/${encodeURIComponent(u.site)}`, text: u.name })),
        el('td', { text: u.school_type }),
        el('td', { class: 'num', text: u.utilisation === null ? '–' : fmtPct(u.utilisation * 100, 1) }),
        el('td', { class: 'num', text: fmtBps(u.rate_bps) }),
        el('td', { text: u.recommendation })));
    }
    document.getElementById('no-upgrades').hidden = (s.upgrades || []).length > 0;
  } else {
    for (const k of ['uptime-met', 'growth-met']) {
      const e = document.getElementById(k);
      e.textContent = 'not available';
      e.classList.add('na');
    }
  }
  await totalsNow(sites);
  document.body.dataset.loaded = 'yes';
}

main().catch((e) => {
  document.querySelector('h1').textContent = `District: ${e.message}`;
});
