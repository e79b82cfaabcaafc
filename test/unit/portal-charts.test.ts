import { describe, expect, it } from 'vitest';
import { barChartSvg, niceTicks } from '../../src/portal/charts.js';
import { dailyChart } from '../../src/portal/view-models.js';

describe('portal charts', () => {
  it('puts the axis on round ticks: 1, 2 or 5 times a power of ten, at most five steps', () => {
    expect(niceTicks(13)).toEqual([0, 5, 10, 15]);
    expect(niceTicks(25)).toEqual([0, 10, 20, 30]);
    expect(niceTicks(500)).toEqual([0, 200, 400, 600]);
    expect(niceTicks(1_000_000)).toEqual([0, 500_000, 1_000_000]);
    expect(niceTicks(3)).toEqual([0, 1, 2, 3]);
    expect(niceTicks(0)).toEqual([0, 1, 2, 3, 4]);
  });

  it('labels ticks below a cent exactly (A$0.000015, not A$0.000013) and leaves room for the longest label', () => {
    const days = [13, 25, 0, 7].map((costMicro, i) => ({ date: `2026-11-0${i + 1}`, costMicro, requests: costMicro ? 1 : 0 }));
    const chart = dailyChart(days as never, 'Australia/Sydney', 'Daily spend');
    const labels = [...chart.svg.matchAll(/text-anchor="end">([^<]*)</g)].map((m) => m[1]);
    expect(labels).toEqual(['A$0', 'A$0.00001', 'A$0.00002', 'A$0.00003']);
    // The axis labels end 8 units left of the plot, which starts after the longest label's width.
    const plotLeft = Number(/<line class="chart-grid" x1="(\d+(?:\.\d+)?)"/.exec(chart.svg)![1]);
    expect(plotLeft).toBeGreaterThanOrEqual('A$0.00003'.length * 7 + 12);
    expect(chart.svgNarrow).toContain('viewBox="0 0 360 220"');
  });

  it('gives every day a hover title with its exact value', () => {
    const svg = barChartSvg([{ label: '1 Nov', value: 5, title: '1 Nov: A$0.000005 (1 request)' }], { label: 'x', format: String });
    expect(svg).toContain('<title>1 Nov: A$0.000005 (1 request)</title>');
  });
});
