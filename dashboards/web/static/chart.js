// Small SVG charts: time series lines with horizontal reference lines,
// zoomable by dragging across the plot or with the wheel; and sparklines.
const NS = 'http://www.w3.org/2000/svg';

function svgEl(tag, attrs = {}) {
  const e = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  return e;
}

function niceStep(span, n) {
  const raw = span / n, mag = 10 ** Math.floor(Math.log10(raw));
  const f = raw / mag;
  return (f < 1.5 ? 1 : f < 3.5 ? 2 : f < 7.5 ? 5 : 10) * mag;
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const pad = (n) => String(n).padStart(2, '0');

// Axis labels in UTC, like every time on the pages (common.js fmtTime).
function timeLabel(t, span) {
  const d = new Date(t * 1000);
  if (span <= 2 * 86400) return `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}`;
  if (span <= 60 * 86400) return `${MONTHS[d.getUTCMonth()]} ${d.getUTCDate()}`;
  return `${MONTHS[d.getUTCMonth()]} ${d.getUTCFullYear()}`;
}

// Time ticks on round UTC boundaries: minutes/hours for short spans, days
// (midnight UTC) for longer, first of the month beyond two months.
function timeTicks(from, to) {
  const span = to - from;
  const steps = [60, 300, 600, 1800, 3600, 7200, 10800, 21600, 43200, 86400, 2 * 86400, 7 * 86400];
  const step = steps.find((s) => span / s <= 8);
  const out = [];
  if (step) {
    for (let t = Math.ceil(from / step) * step; t <= to; t += step) out.push(t);
    return out;
  }
  const d = new Date(from * 1000);
  let y = d.getUTCFullYear(), m = d.getUTCMonth() + 1;
  const every = span > 400 * 86400 ? 3 : span > 200 * 86400 ? 2 : 1;
  for (;;) {
    if (m > 11) { y += Math.floor(m / 12); m %= 12; }
    const t = Date.UTC(y, m, 1) / 1000;
    if (t > to) break;
    out.push(t);
    m += every;
  }
  return out;
}

// opts: {series: [{name, color, points: [[t, v|null]...], dash}], hlines:
// [{value, color, label}], from, to (seconds), yFormat(v), yTitle (the
// unit, written along the y axis), height (px, default 300), onZoom(from,
// to), onReset()}. Draws into container (replacing its content); the SVG's
// user units are CSS pixels, so text keeps its size at any width.
export function lineChart(container, opts) {
  container.textContent = '';
  const W = Math.max(container.clientWidth || 800, 300), H = opts.height || 300;
  const m = { l: opts.yTitle ? 84 : 70, r: 12, t: 10, b: 26 };
  const pw = W - m.l - m.r, ph = H - m.t - m.b;
  const svg = svgEl('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', height: H });
  svg.style.height = `${H}px`;
  const from = opts.from, to = opts.to, span = to - from;
  let ymax = 0;
  for (const s of opts.series) for (const [, v] of s.points) if (v !== null && v > ymax) ymax = v;
  for (const h of opts.hlines || []) if (h.value && h.value > ymax) ymax = h.value;
  if (ymax <= 0) ymax = 1;
  const ystep = niceStep(ymax, 4);
  ymax = Math.ceil((ymax * 1.05) / ystep) * ystep;
  const x = (t) => m.l + ((t - from) / span) * pw;
  const y = (v) => m.t + ph - (v / ymax) * ph;
  for (let v = 0; v <= ymax + 1e-9; v += ystep) {
    svg.append(svgEl('line', { class: 'grid', x1: m.l, x2: m.l + pw, y1: y(v), y2: y(v) }));
    const t = svgEl('text', { x: m.l - 6, y: y(v) + 4, 'text-anchor': 'end' });
    t.textContent = opts.yFormat ? opts.yFormat(v) : String(v);
    svg.append(t);
  }
  for (const t of timeTicks(from, to)) {
    svg.append(svgEl('line', { class: 'grid', x1: x(t), x2: x(t), y1: m.t, y2: m.t + ph }));
    if (x(t) < m.l + 24) continue; // room for the zone below the y axis
    const lab = svgEl('text', { x: x(t), y: H - 8, 'text-anchor': 'middle' });
    lab.textContent = timeLabel(t, span);
    svg.append(lab);
  }
  // The time zone below the y axis, where no tick label goes.
  const utc = svgEl('text', { class: 'unit', x: m.l - 6, y: H - 8, 'text-anchor': 'end' });
  utc.textContent = 'UTC';
  svg.append(utc);
  if (opts.yTitle) {
    const yt = svgEl('text', {
      class: 'unit', x: 0, y: 0, 'text-anchor': 'middle',
      transform: `translate(12 ${m.t + ph / 2}) rotate(-90)`,
    });
    yt.textContent = opts.yTitle;
    svg.append(yt);
  }
  svg.dataset.ymax = ymax;
  svg.append(svgEl('line', { class: 'axis', x1: m.l, x2: m.l, y1: m.t, y2: m.t + ph }));
  svg.append(svgEl('line', { class: 'axis', x1: m.l, x2: m.l + pw, y1: m.t + ph, y2: m.t + ph }));
  for (const s of opts.series) {
    let d = '', pen = false;
    for (const [t, v] of s.points) {
      if (v === null || t < from || t > to) { pen = false; continue; }
      d += `${pen ? 'L' : 'M'}${x(t).toFixed(1)},${y(v).toFixed(1)}`;
      pen = true;
    }
    const p = svgEl('path', { d: d || 'M0,0', fill: 'none', stroke: s.color, 'stroke-width': s.width || 1.5 });
    if (s.dash) p.setAttribute('stroke-dasharray', '6 4');
    p.dataset.series = s.name;
    svg.append(p);
  }
  for (const h of opts.hlines || []) {
    if (!h.value) continue;
    const l = svgEl('line', { x1: m.l, x2: m.l + pw, y1: y(h.value), y2: y(h.value), stroke: h.color, 'stroke-width': 1.5 });
    if (h.dash) l.setAttribute('stroke-dasharray', '6 4');
    l.dataset.hline = h.label;
    svg.append(l);
  }
  // Zoom: drag a span, or the wheel around the pointer.
  const sel = svgEl('rect', { class: 'sel', x: 0, y: m.t, width: 0, height: ph, visibility: 'hidden' });
  svg.append(sel);
  const toT = (ev) => {
    const r = svg.getBoundingClientRect();
    const px = ((ev.clientX - r.left) / r.width) * W;
    return from + (Math.min(Math.max(px, m.l), m.l + pw) - m.l) / pw * span;
  };
  let t0 = null;
  svg.addEventListener('mousedown', (ev) => { t0 = toT(ev); ev.preventDefault(); });
  svg.addEventListener('mousemove', (ev) => {
    if (t0 === null) return;
    const t1 = toT(ev);
    sel.setAttribute('x', x(Math.min(t0, t1)));
    sel.setAttribute('width', Math.abs(x(t1) - x(t0)));
    sel.setAttribute('visibility', 'visible');
  });
  const end = (ev) => {
    if (t0 === null) return;
    const t1 = toT(ev), a = Math.min(t0, t1), b = Math.max(t0, t1);
    t0 = null;
    sel.setAttribute('visibility', 'hidden');
    if (b - a >= 60 && opts.onZoom) opts.onZoom(Math.floor(a), Math.ceil(b));
  };
  svg.addEventListener('mouseup', end);
  svg.addEventListener('mouseleave', () => { t0 = null; sel.setAttribute('visibility', 'hidden'); });
  svg.addEventListener('wheel', (ev) => {
    if (!opts.onZoom) return;
    ev.preventDefault();
    const c = toT(ev), k = ev.deltaY < 0 ? 0.5 : 2;
    const a = c - (c - from) * k, b = c + (to - c) * k;
    if (b - a >= 600) opts.onZoom(Math.floor(a), Math.ceil(b));
  }, { passive: false });
  svg.addEventListener('dblclick', () => opts.onReset && opts.onReset());
  container.append(svg);
  return svg;
}

// A sparkline of values (nulls are gaps) in a 140 x 28 box, from 0 to
// scale (the capacity: the height says how full the link is) or, without
// one, to the largest value.
export function sparkline(values, color = '#43a047', scale = null) {
  const W = 140, H = 28;
  const svg = svgEl('svg', { class: 'spark', viewBox: `0 0 ${W} ${H}` });
  const max = Math.max(1, scale || 0, ...values.filter((v) => v !== null));
  let d = '', pen = false;
  values.forEach((v, i) => {
    if (v === null) { pen = false; return; }
    const px = (i / Math.max(1, values.length - 1)) * (W - 2) + 1, py = H - 2 - (v / max) * (H - 4);
    d += `${pen ? 'L' : 'M'}${px.toFixed(1)},${py.toFixed(1)}`;
    pen = true;
  });
  svg.append(svgEl('path', { d: d || 'M0,0', fill: 'none', stroke: color, 'stroke-width': 1.5 }));
  return svg;
}
