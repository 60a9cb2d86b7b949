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
    const gm = document.getElementById('growth-met');
    gm.textContent = `${s.growth.on_track} of ${s.schools}`;
    gm.dataset.raw = String(s.growth.on_track);
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
