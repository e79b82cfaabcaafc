import { Router, type Request } from 'express';
import type { UsageEvent, UsageFilter } from '../domain/usage/usage.service.js';
import { microToAud } from '../domain/money.js';
import { viewer, type Portal, type Viewer } from './context.js';
import { isoDateText, localDateStart } from './forms.js';
import { teamNames } from './view-models.js';
import { csvCell, csvDate } from './csv.js';

const PAGE_SIZE = 50;
const CSV_PAGE = 500;
/** A CSV export stops here; narrower date ranges get the rest. */
const CSV_MAX_ROWS = 100_000;

export function usageRoutes(portal: Portal): Router {
  const { deps, render, reports } = portal;
  const { usage, keys, teams, clock } = deps.services;
  const router = Router();

  /** The filters of the usage log, from the query string (dates are local days of the viewer). */
  function filterOf(req: Request, v: Viewer) {
    const q = req.query;
    const str = (x: unknown) => (typeof x === 'string' && x.length <= 100 ? x.trim() : '');
    const form = { key: str(q.key), team: str(q.team), tag: str(q.tag), from: isoDateText(str(q.from)), to: isoDateText(str(q.to)) };
    const filter: UsageFilter = {
      keyId: form.key || undefined,
      tag: form.tag || undefined,
      teamId: form.team || undefined,
      from: localDateStart(form.from, v.timeZone) ?? undefined,
      // "to" is inclusive for people: through the end of that day.
      to: localDateStart(form.to, v.timeZone, 1) ?? undefined,
    };
    return { form, filter };
  }

  router.get('/usage', async (req, res) => {
    const v = viewer(res);
    const { form, filter } = filterOf(req, v);
    const cursor = typeof req.query.cursor === 'string' ? req.query.cursor : undefined;
    const [page, visibleKeys, myTeams, scope] = await Promise.all([
      usage.list({ ...filter, cursor, limit: PAGE_SIZE }, v.actor),
      keys.list({}, v.actor),
      teams.list(v.actor),
      reports.scope({ keyId: filter.keyId, teamId: filter.teamId }, v.actor),
    ]);
    const total = await reports.total(scope, filter.from ?? new Date(0), filter.to ?? null);
    const keyNames = Object.fromEntries(visibleKeys.map((k) => [k.id, k.name]));
    const query = new URLSearchParams(Object.entries(form).filter(([, value]) => value)).toString();
    render(
      req,
      res,
      'usage/index',
      {
        title: 'Usage',
        form,
        events: page.events,
        nextCursor: page.nextCursor,
        keyNames,
        teamNames: teamNames(myTeams),
        keys: visibleKeys,
        teams: myTeams,
        total,
        query,
        nextUrl: page.nextCursor ? `/usage?${query}${query ? '&' : ''}cursor=${page.nextCursor}` : null,
        csvUrl: `/usage.csv${query ? `?${query}` : ''}`,
        // A range that ends before it starts matches nothing: say so rather than show an empty log.
        rangeError: filter.from && filter.to && filter.from.getTime() >= filter.to.getTime() ? 'The “From” date is after the “To” date, so nothing can match: swap them.' : null,
      },
      { fragment: 'usage/_table' },
    );
  });

  router.get('/usage.csv', async (req, res) => {
    const v = viewer(res);
    const { filter } = filterOf(req, v);
    // Resolve the first page before sending headers, so a foreign key or team is still a clean 404 page.
    let page = await usage.list({ ...filter, limit: CSV_PAGE }, v.actor);
    const visibleKeys = await keys.list({}, v.actor);
    const keyNames = Object.fromEntries(visibleKeys.map((k) => [k.id, k.name]));
    const keyTags = Object.fromEntries(visibleKeys.map((k) => [k.id, k.tags]));
    res.set({
      'Content-Type': 'text/csv; charset=utf-8',
      'Content-Disposition': `attachment; filename="modelbridge-usage-${csvDate(clock.now(), v.timeZone)}.csv"`,
      'Cache-Control': 'no-store',
    });
    res.write(`${CSV_COLUMNS.join(',')}\r\n`);
    let written = 0;
    for (;;) {
      for (const e of page.events) res.write(`${csvRow(e, keyNames[e.keyId] ?? '', keyTags[e.keyId] ?? [])}\r\n`);
      written += page.events.length;
      if (!page.nextCursor || written >= CSV_MAX_ROWS) break;
      page = await usage.list({ ...filter, cursor: page.nextCursor, limit: CSV_PAGE }, v.actor);
    }
    res.end();
  });

  return router;
}

// New columns go at the end, so a spreadsheet or script reading the earlier ones by position keeps working.
// input_tokens is the uncached input; reasoning_tokens is part of output_tokens.
const CSV_COLUMNS = [
  'time_utc', 'request_id', 'key_id', 'key_name', 'team_id', 'model', 'provider', 'endpoint', 'outcome', 'http_status',
  'input_tokens', 'output_tokens', 'cost_aud', 'estimated', 'streamed', 'latency_ms',
  'cached_input_tokens', 'cache_write_5m_tokens', 'cache_write_1h_tokens', 'reasoning_tokens', 'key_tags',
];

function csvRow(e: UsageEvent, keyName: string, keyTags: string[]): string {
  return [
    e.createdAt.toISOString(), e.requestId, e.keyId, keyName, e.teamId ?? '', e.model, e.provider, e.endpoint, e.outcome,
    e.httpStatus, e.inputTokens, e.outputTokens, microToAud(e.costMicro), e.estimated, e.streamed, e.latencyMs,
    e.cachedInputTokens, e.cacheWrite5mTokens, e.cacheWrite1hTokens, e.reasoningTokens, keyTags.join(' '),
  ].map(csvCell).join(',');
}
