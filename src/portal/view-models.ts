import type { DailySpend } from '../domain/usage/usage-reports.js';
import type { ApiKey } from '../domain/keys/key.js';
import type { Team } from '../domain/teams/teams.service.js';
import { formatAud } from '../domain/money.js';
import { keyAttention } from '../domain/keys/attention.js';
import { barChartSvg, meterSvg } from './charts.js';

/** A 30-day spend chart: the SVG plus the numbers behind it (rendered as a table for screen readers). */
export function dailyChart(days: DailySpend[], timeZone: string, label: string) {
  const dayLabel = new Intl.DateTimeFormat('en-AU', { timeZone: 'UTC', day: 'numeric', month: 'short' });
  const points = days.map((d) => {
    const label = dayLabel.format(new Date(`${d.date}T00:00:00Z`));
    return {
      label,
      value: d.costMicro,
      title: `${label}: ${formatAud(d.costMicro)} (${d.requests} request${d.requests === 1 ? '' : 's'})`,
      requests: d.requests,
    };
  });
  const total = days.reduce((sum, d) => sum + d.costMicro, 0);
  const requests = days.reduce((sum, d) => sum + d.requests, 0);
  return {
    svg: barChartSvg(points, { label: `${label}: ${formatAud(total)} in total`, format: axisAud }),
    // The same chart drawn for a phone's width: CSS shows one of the two, so its text stays readable.
    svgNarrow: barChartSvg(points, { label: `${label}: ${formatAud(total)} in total`, format: axisAud, width: 360, height: 220 }),
    points,
    total,
    requests,
    timeZone,
    empty: requests === 0,
  };
}

function axisAud(micro: number): string {
  if (micro === 0) return 'A$0';
  const aud = micro / 1_000_000;
  if (aud >= 100) return `A$${Math.round(aud).toLocaleString('en-AU')}`;
  if (aud >= 1) return `A$${aud.toFixed(aud % 1 === 0 ? 0 : 2)}`;
  if (aud >= 0.01) return `A$${aud.toFixed(2)}`;
  // Round ticks below a cent: as many decimals as the value needs (A$0.0005, A$0.000015), no trailing zeros.
  return `A$${aud.toFixed(6).replace(/0+$/, '')}`;
}

/** Team names by id, for showing which team a key belongs to. */
export function teamNames(teams: Team[]): Record<string, string> {
  return Object.fromEntries(teams.map((t) => [t.id, t.name]));
}


/** Where the installation is reachable, for the snippets (shared with the proxy's misdirected-URL answers). */
export { publicBase } from '../http/public-base.js';

/** What a key row shows: the key, where it belongs, how close it is to its limit, and which hints apply. */
export function rowModel(key: ApiKey, names: Record<string, string>, now: Date, viewerId: string) {
  const attention = keyAttention(key, now);
  // What the limit is judged on: the period's spend with a budget period, else lifetime spend.
  const counted = key.periodSpendMicro;
  const spendLabel = key.spendLimitMicro === null ? `${formatAud(key.spendMicro)} spent, no limit`
    : `${formatAud(counted)} of ${formatAud(key.spendLimitMicro)} spent${key.limitReset ? ` (${key.limitReset})` : ''}`;
  return {
    key,
    team: key.teamId ? (names[key.teamId] ?? 'Team') : null,
    mine: key.ownerId === viewerId,
    attention,
    // No limit, nothing to fill: an empty bar under "no limit" read as "nothing left".
    meter: key.spendLimitMicro === null ? '' : meterSvg(counted, key.spendLimitMicro, spendLabel),
    usable: key.status === 'active' || key.status === 'limit_reached',
  };
}

export type KeyRow = ReturnType<typeof rowModel>;
