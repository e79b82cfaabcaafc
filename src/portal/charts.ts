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
  /** Width of the drawing in SVG units: 720 for the desktop card, 360 for a phone (text stays ~11 px at both). */
  width?: number;
}

/** Axis text is 11 units high; a character is at most about 7 units wide in the system font. */
const CHAR_W = 7;
const BOTTOM = 26;
const TOP = 10;
const RIGHT = 8;

export function barChartSvg(points: BarPoint[], options: BarChartOptions): string {
  const width = options.width ?? 720;
  const height = options.height ?? 200;
  const ticks = niceTicks(Math.max(0, ...points.map((p) => p.value)));
  const max = ticks[ticks.length - 1]!;
  const tickLabels = ticks.map((v, i) => (max === 0 && i > 0 ? '' : options.format(v)));
  // The left margin fits the longest tick label, so "A$0.00050" is never cut.
  const left = Math.max(36, Math.max(...tickLabels.map((l) => l.length)) * CHAR_W + 12);
  const plotW = width - left - RIGHT;
  const plotH = height - TOP - BOTTOM;
  const slot = plotW / Math.max(points.length, 1);
  const barW = Math.max(2, slot * 0.7);
  const parts: string[] = [];
  ticks.forEach((v, i) => {
    const y = TOP + plotH - (max > 0 ? (plotH * v) / max : (plotH * i) / (ticks.length - 1));
    parts.push(`<line class="chart-grid" x1="${left}" x2="${width - RIGHT}" y1="${r(y)}" y2="${r(y)}"/>`);
    parts.push(`<text class="chart-axis" x="${left - 8}" y="${r(y + 4)}" text-anchor="end">${esc(tickLabels[i]!)}</text>`);
  });
  // As many day labels as fit (a label is about 6 characters wide), counted from the last day.
  const labelEvery = Math.max(1, Math.ceil(points.length / Math.max(1, Math.floor(plotW / (CHAR_W * 8)))));
  points.forEach((p, i) => {
    const h = max > 0 ? (plotH * p.value) / max : 0;
    const x = left + i * slot + (slot - barW) / 2;
    const barH = p.value > 0 ? Math.max(h, 1.5) : 0;
    parts.push(
      `<rect class="chart-bar" x="${r(x)}" y="${r(TOP + plotH - barH)}" width="${r(barW)}" height="${r(barH)}"><title>${esc(p.title)}</title></rect>`,
    );
    // A transparent full-height target so small bars still show their tooltip.
    parts.push(`<rect class="chart-hit" x="${r(left + i * slot)}" y="${TOP}" width="${r(slot)}" height="${plotH}"><title>${esc(p.title)}</title></rect>`);
    if ((points.length - 1 - i) % labelEvery === 0) {
      // Centred under its bar, except where that would run past the right edge ("2 Dec" on the last day).
      const centre = x + barW / 2;
      const fits = centre + (p.label.length * CHAR_W) / 2 <= width;
      parts.push(`<text class="chart-axis" x="${r(fits ? centre : width - 2)}" y="${height - 8}" text-anchor="${fits ? 'middle' : 'end'}">${esc(p.label)}</text>`);
    }
  });
  return `<svg class="chart" viewBox="0 0 ${width} ${height}" role="img" aria-label="${esc(options.label)}" preserveAspectRatio="xMidYMid meet">${parts.join('')}</svg>`;
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

/**
 * Round axis ticks from 0 past the largest value: a step of 1, 2 or 5 times a power of ten (in the points' unit,
 * never below 1), at most five steps — 0, 5, 10, 15 rather than 0, 3.25, 6.5, 9.75. All zero: 0 to 4.
 */
export function niceTicks(maxValue: number): number[] {
  if (maxValue <= 0) return [0, 1, 2, 3, 4];
  const rough = maxValue / 4;
  const power = 10 ** Math.floor(Math.log10(rough));
  const step = Math.max(1, ([1, 2, 5, 10].map((m) => m * power).find((candidate) => candidate >= rough) ?? 10 * power));
  const count = Math.max(1, Math.ceil(maxValue / step));
  return Array.from({ length: count + 1 }, (_, i) => i * step);
}

const r = (n: number) => Math.round(n * 10) / 10;

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}
