/**
 * Daily bar charts rendered on the server as inline SVG: no chart library, no script, nothing for the CSP to
 * allow. Geometry goes in attributes (not style=""), colours come from app.css classes.
 */
export interface BarPoint {
  /** Axis label, e.g. "26 Nov". */
  label: string;
  value: number;
  /** Tooltip text, e.g. "26 Nov: A$1.20 (14 requests)". */
  title: string;
}

export interface BarChartOptions {
  /** Formats an axis value (the same unit as the points). */
  format: (value: number) => string;
  /** Accessible summary of the whole chart. */
  label: string;
  height?: number;
}

const WIDTH = 720;
const LEFT = 64;
const BOTTOM = 26;
const TOP = 10;

export function barChartSvg(points: BarPoint[], options: BarChartOptions): string {
  const height = options.height ?? 200;
  const plotW = WIDTH - LEFT - 8;
  const plotH = height - TOP - BOTTOM;
  const max = niceCeiling(Math.max(0, ...points.map((p) => p.value)));
  const slot = plotW / Math.max(points.length, 1);
  const barW = Math.max(2, slot * 0.7);
  const parts: string[] = [];
  for (let i = 0; i <= 4; i++) {
    const v = (max * i) / 4;
    const y = TOP + plotH - (plotH * i) / 4;
    parts.push(`<line class="chart-grid" x1="${LEFT}" x2="${WIDTH - 8}" y1="${r(y)}" y2="${r(y)}"/>`);
    parts.push(`<text class="chart-axis" x="${LEFT - 8}" y="${r(y + 4)}" text-anchor="end">${esc(max === 0 && i > 0 ? '' : options.format(v))}</text>`);
  }
  const labelEvery = Math.ceil(points.length / 8);
  points.forEach((p, i) => {
    const h = max > 0 ? (plotH * p.value) / max : 0;
    const x = LEFT + i * slot + (slot - barW) / 2;
    const barH = p.value > 0 ? Math.max(h, 1.5) : 0;
    parts.push(
      `<rect class="chart-bar" x="${r(x)}" y="${r(TOP + plotH - barH)}" width="${r(barW)}" height="${r(barH)}"><title>${esc(p.title)}</title></rect>`,
    );
    // A transparent full-height target so small bars still show their tooltip.
    parts.push(`<rect class="chart-hit" x="${r(LEFT + i * slot)}" y="${TOP}" width="${r(slot)}" height="${plotH}"><title>${esc(p.title)}</title></rect>`);
    if ((points.length - 1 - i) % labelEvery === 0)
      parts.push(`<text class="chart-axis" x="${r(x + barW / 2)}" y="${height - 8}" text-anchor="middle">${esc(p.label)}</text>`);
  });
  return `<svg class="chart" viewBox="0 0 ${WIDTH} ${height}" role="img" aria-label="${esc(options.label)}" preserveAspectRatio="xMidYMid meet">${parts.join('')}</svg>`;
}

/** A spend-against-limit bar: an SVG so its width needs no inline style. */
export function meterSvg(value: number, max: number | null, label: string): string {
  const pct = max && max > 0 ? Math.min(100, (value / max) * 100) : 0;
  const level = max === null ? 'none' : pct >= 100 ? 'full' : pct >= 80 ? 'high' : 'ok';
  return (
    `<svg class="meter meter-${level}" viewBox="0 0 100 6" preserveAspectRatio="none" role="img" aria-label="${esc(label)}">` +
    `<rect class="meter-track" width="100" height="6" rx="3"/>` +
    (pct > 0 ? `<rect class="meter-fill" width="${r(Math.max(pct, 3))}" height="6" rx="3"/>` : '') +
    `</svg>`
  );
}

/** 1, 2, 2.5 or 5 times a power of ten, at or above the value, so the axis reads well. */
function niceCeiling(value: number): number {
  if (value <= 0) return 0;
  const power = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 2, 2.5, 5, 10]) if (step * power >= value) return step * power;
  return 10 * power;
}

const r = (n: number) => Math.round(n * 10) / 10;

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}
