// Shared helpers of the dashboard pages: API access, units, times, session.

export class ApiError extends Error {
  constructor(status, text) { super(`HTTP ${status}: ${text}`); this.status = status; }
}

// GET path as JSON; a 401 sends the user to the login page.
export async function api(path) {
  const r = await fetch(path, { credentials: 'same-origin', headers: { Accept: 'application/json' } });
  if (r.status === 401) {
    location.href = '/login.html?next=' + encodeURIComponent(location.pathname);
    throw new ApiError(401, 'log in first');
  }
  if (!r.ok) {
    throw new ApiError(r.status, (await r.text()).trim());
  }
  return r.json();
}

// Like api() but null when the endpoint is missing or fails (features other
// modules may not provide yet).
export async function apiOptional(path) {
  try {
    return await api(path);
  } catch (e) {
    if (e.status === 401) throw e;
    return null;
  }
}

// Runs fn over items with at most n in flight.
export async function pool(items, n, fn) {
  let i = 0;
  const workers = Array.from({ length: Math.min(n, items.length) }, async () => {
    while (i < items.length) {
      const k = i++;
      await fn(items[k], k);
    }
  });
  await Promise.all(workers);
}

// 1234567 -> "1.23 Mbps"; null/undefined/NaN -> "–".
export function fmtBps(v) {
  if (v === null || v === undefined || !Number.isFinite(v)) return '–';
  const units = [['Tbps', 1e12], ['Gbps', 1e9], ['Mbps', 1e6], ['kbps', 1e3]];
  for (const [u, f] of units) {
    if (Math.abs(v) >= f) return `${(v / f).toFixed(v / f >= 100 ? 0 : v / f >= 10 ? 1 : 2)} ${u}`;
  }
  return `${Math.round(v)} bps`;
}

export function fmtPct(v, digits = 2) {
  if (v === null || v === undefined || !Number.isFinite(v)) return '–';
  return `${v.toFixed(digits)} %`;
}

// Every time on the pages is UTC, labelled so: the API, the reports and the
// maintenance form all speak UTC, and a district spans one zone anyway.
const pad = (n) => String(n).padStart(2, '0');

// Milliseconds since the epoch -> "2026-11-23 14:05 UTC".
export function fmtTime(ms) {
  if (ms === null || ms === undefined || !Number.isFinite(Number(ms))) return '–';
  const d = new Date(Number(ms));
  return `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())} ` +
    `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())} UTC`;
}

// Milliseconds -> "14:05:09 UTC" (refresh stamps).
export function fmtClock(ms) {
  const d = new Date(ms);
  return `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())} UTC`;
}

export function fmtDuration(s) {
  if (s === null || s === undefined || !Number.isFinite(s)) return '–';
  s = Math.round(s);
  const d = Math.floor(s / 86400), h = Math.floor((s % 86400) / 3600), m = Math.floor((s % 3600) / 60);
  if (d) return `${d}d ${h}h`;
  if (h) return `${h}h ${m}m`;
  if (m) return `${m}m ${s % 60}s`;
  return `${s}s`;
}

export const STATUS_LABEL = {
  up: 'Up', link_down: 'Link down', agent_down: 'Agent down', suspected: 'Suspected down',
  no_data: 'No data',
};

// Lower is worse (sorting "worst first").
export const STATUS_RANK = { link_down: 0, agent_down: 1, suspected: 2, no_data: 3, up: 4 };

// Element helper: el('td', {class: 'num', text: 'x'}, child...).
export function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null) continue;
    if (k === 'text') e.textContent = v;
    else if (k === 'class') e.className = v;
    else if (k.startsWith('data-')) e.setAttribute(k, v);
    else e.setAttribute(k, v);
  }
  for (const c of children) if (c) e.append(c);
  return e;
}

export function statusBadge(status) {
  const s = STATUS_LABEL[status] ? status : 'no_data';
  return el('span', { class: `status ${s}`, text: STATUS_LABEL[s], 'data-status': s });
}

// The uplink among a site's interfaces: alias or name with "uplink"/"wan",
// else the fastest (report_data.h's rule).
export function pickUplink(ifaces) {
  if (!ifaces || !ifaces.length) return null;
  const rx = /uplink|wan/i;
  const named = ifaces.find((i) => rx.test(i.if_alias || '') || rx.test(i.if_name || ''));
  if (named) return named;
  return ifaces.reduce((a, b) => ((b.speed_bps || 0) > (a.speed_bps || 0) ? b : a));
}

let session = null;

// Shows the user and wires the logout button (POST with the CSRF token).
export async function initSession() {
  session = await api('/api/v1/session');
  const u = document.getElementById('user');
  if (u) u.textContent = session.user ? `${session.user}${session.admin ? ' (admin)' : ''}` : '';
  const b = document.getElementById('logout');
  if (b) {
    b.hidden = !session.user;
    b.addEventListener('click', async () => {
      await fetch('/logout', {
        method: 'POST', credentials: 'same-origin', headers: { 'X-CSRF-Token': session.csrf || '' },
      });
      location.href = '/login.html';
    });
  }
  return session;
}

// POST/DELETE with the session's CSRF token (admin actions).
export async function send(method, path, body) {
  const r = await fetch(path, {
    method, credentials: 'same-origin',
    headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': session?.csrf || '' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!r.ok) throw new ApiError(r.status, (await r.text()).trim());
  return r;
}
