import { Router, type Request, type Response } from 'express';
import { billingPeriodAt } from '../domain/billing/period.js';
import { microToAud } from '../domain/money.js';
import type { Breakdown } from '../domain/usage/usage-reports.js';
import { onBadInput, viewer, type Portal } from './context.js';
import { csvDate, csvLine } from './csv.js';
import { DATE_HINT, isoDateText, localDateStart } from './forms.js';
import { dailyChart } from './view-models.js';

/**
 * The installation's usage for admins (issue #15, point 12): a period filter (the /usage filter's behaviour), totals,
 * a spend chart and the breakdowns by model, provider, team and user, and the same as CSV. Mounted behind
 * requireAdmin; the domain checks the role again.
 */
export function adminUsageRoutes(portal: Portal): Router {
  const { deps, render, reports } = portal;
  const { clock } = deps.services;
  const router = Router();

  /** The period from the query string: local days of the viewer, "to" inclusive; by default this billing month. */
  function periodOf(req: Request, res: Response) {
    const v = viewer(res);
    const str = (x: unknown) => (typeof x === 'string' && x.length <= 10 ? isoDateText(x) : '');
    const month = billingPeriodAt(clock.now(), v.timeZone);
    const f = new Intl.DateTimeFormat('en-CA', { timeZone: v.timeZone, year: 'numeric', month: '2-digit', day: '2-digit' });
    const form = { from: str(req.query.from) || f.format(month.start), to: str(req.query.to) || f.format(clock.now()) };
    const from = localDateStart(form.from, v.timeZone);
    const to = localDateStart(form.to, v.timeZone, 1);
    return { v, form, from, to };
  }

  router.get('/usage', async (req, res) => {
    const { v, form, from, to } = periodOf(req, res);
    const page = (extra: Record<string, unknown>, status = 200) =>
      render(req, res, 'admin/usage', { title: 'Installation usage', section: 'usage', form, summary: null, rangeError: null, ...extra }, { status });
    if (!from || !to) return page({ rangeError: DATE_HINT }, 400);
    onBadInput(res, (rangeError, status) => page({ rangeError }, status));
    const summary = await reports.installationSummary({ from, to }, v.actor, v.timeZone);
    const query = new URLSearchParams(form).toString();
    page({
      summary,
      chart: dailyChart(summary.over, v.timeZone, `Installation spend from ${form.from} to ${form.to}`),
      perBar: summary.bucketDays === 1 ? 'per day' : `per ${summary.bucketDays} days`,
      csvUrl: `/admin/usage.csv?${query}`,
    });
  });

  router.get('/usage.csv', async (req, res) => {
    const { v, form, from, to } = periodOf(req, res);
    if (!from || !to) return render(req, res, 'error', { title: 'That did not work', status: 400, message: DATE_HINT }, { status: 400 });
    const summary = await reports.installationSummary({ from, to }, v.actor, v.timeZone);
    res.set({
      'Content-Type': 'text/csv; charset=utf-8',
      'Content-Disposition': `attachment; filename="modelbridge-installation-usage-${form.from}-to-${form.to}-${csvDate(clock.now(), v.timeZone)}.csv"`,
      'Cache-Control': 'no-store',
    });
    const lines = [csvLine(['dimension', 'id', 'name', 'requests', 'input_tokens', 'output_tokens', 'cost_aud', 'from_utc', 'to_utc'])];
    const rows = (dimension: string, list: Breakdown[]) =>
      list.map((b) => csvLine([dimension, b.id, b.label || (dimension === 'team' ? 'Personal keys' : ''), b.requests, b.inputTokens, b.outputTokens, microToAud(b.costMicro), from.toISOString(), to.toISOString()]));
    lines.push(...rows('model', summary.byModel), ...rows('provider', summary.byProvider), ...rows('team', summary.byTeam), ...rows('user', summary.byUser));
    res.send(lines.join(''));
  });

  return router;
}
