// Small inline-SVG charts: time on x, one or more series on y (bars or lines).

const NS = 'http://www.w3.org/2000/svg';

function el(name, attrs = {}, text) {
  const e = document.createElementNS(NS, name);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  if (text !== undefined) e.textContent = text;
  return e;
}

function niceMax(v) {
  if (!(v > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

const fmtTime = (ms) => new Date(ms).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });

// series: [{name, color, kind: 'bar'|'line', values: [number|null per slot]}]; slots: start ms
// of each x slot. Returns a <figure>.
export function chart({ title, unit, slots, series, width = 560, height = 180 }) {
  const fig = document.createElement('figure');
  fig.className = 'chart card';
  fig.setAttribute('data-chart', title);
  const h3 = document.createElement('h3');
  h3.textContent = title;
  fig.append(h3);
  const pad = { l: 44, r: 8, t: 8, b: 22 };
  const w = width - pad.l - pad.r;
  const h = height - pad.t - pad.b;
  const max = niceMax(Math.max(0, ...series.flatMap((s) => s.values.filter((v) => v != null))));
  const svg = el('svg', { viewBox: `0 0 ${width} ${height}`, role: 'img' });
  const total = series.map((s) => `${s.name}: ${s.values.reduce((a, v) => (v != null ? Math.max(a, v) : a), 0)}`).join(', ');
  svg.append(el('title', {}, `${title} over the last ${slots.length} intervals (max ${total}${unit ? ' ' + unit : ''})`));
  for (let i = 0; i <= 4; i++) {
    const y = pad.t + h - (h * i) / 4;
    svg.append(el('line', { x1: pad.l, x2: pad.l + w, y1: y, y2: y, class: 'axis' }));
    const v = (max * i) / 4;
    svg.append(el('text', { x: pad.l - 4, y: y + 3, 'text-anchor': 'end' }, v >= 100 ? v.toFixed(0) : +v.toFixed(2)));
  }
  const n = Math.max(1, slots.length);
  const step = w / n;
  for (let i = 0; i < n; i += Math.max(1, Math.ceil(n / 6))) {
    svg.append(el('text', { x: pad.l + i * step + step / 2, y: height - 6, 'text-anchor': 'middle' }, fmtTime(slots[i])));
  }
  const bars = series.filter((s) => s.kind === 'bar');
  bars.forEach((s, bi) => {
    const bw = Math.max(1, (step * 0.8) / bars.length);
    s.values.forEach((v, i) => {
      if (!v) return;
      const bh = (h * v) / max;
      svg.append(el('rect', { x: pad.l + i * step + step * 0.1 + bi * bw, y: pad.t + h - bh, width: bw, height: bh, fill: s.color }));
    });
  });
  for (const s of series.filter((x) => x.kind === 'line')) {
    let d = '';
    s.values.forEach((v, i) => {
      if (v == null) return;
      const x = pad.l + i * step + step / 2;
      const y = pad.t + h - (h * v) / max;
      d += `${d && s.values[i - 1] != null ? 'L' : 'M'}${x.toFixed(1)},${y.toFixed(1)}`;
      svg.append(el('circle', { cx: x, cy: y, r: 2, fill: s.color }));
    });
    if (d) svg.append(el('path', { d, fill: 'none', stroke: s.color, 'stroke-width': 2 }));
  }
  fig.append(svg);
  const legend = document.createElement('figcaption');
  legend.className = 'legend';
  for (const s of series) {
    const item = document.createElement('span');
    const sw = document.createElement('span');
    sw.className = 'swatch';
    sw.style.background = s.color;
    item.append(sw, `${s.name}${unit ? ' (' + unit + ')' : ''}`);
    legend.append(item);
  }
  fig.append(legend);
  return fig;
}
