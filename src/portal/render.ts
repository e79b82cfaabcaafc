import { fileURLToPath } from 'node:url';
import type { Request, Response } from 'express';
import { Eta } from 'eta';
import type { Config } from '../config.js';
import type { Clock } from '../domain/clock.js';
import { viewerOf } from './context.js';
import { formatters } from './format.js';
import { noticeText } from './notices.js';
import { safeNext } from './forms.js';
import { meterSvg } from './charts.js';
import { createUpstreams } from '../proxy/upstreams/index.js';

const VIEWS_DIR = fileURLToPath(new URL('../../views', import.meta.url));

export interface RenderOptions {
  status?: number;
  /**
   * The fragment template this page is built around (views/<area>/_x.eta). An htmx request (HX-Request) gets just
   * the fragment, a normal request the page that includes it: one URL, one template, with or without JavaScript.
   */
  fragment?: string;
  /**
   * Further fragments of the same page, by the id of the element an htmx request swaps (HX-Target): a page with
   * several htmx-enhanced forms answers each with its own part, also after a POST's 303 redirect.
   */
  fragments?: Readonly<Record<string, string>>;
  /** Pages that show a secret must never be stored by the browser or a proxy. */
  noStore?: boolean;
}

export type Render = (req: Request, res: Response, page: string, data: Record<string, unknown>, options?: RenderOptions) => void;

export function isHtmx(req: Request): boolean {
  return req.get('hx-request') === 'true' && req.get('hx-history-restore-request') !== 'true';
}

export function createRender(config: Config, clock: Clock): Render {
  const eta = new Eta({ views: VIEWS_DIR, cache: true, autoTrim: [false, 'nl'] });
  // Providers without an API key are answered by the built-in demo: every page says so (made-up replies).
  const demoProviders = createUpstreams(config).demoProviders;
  return (req, res, page, data, options = {}) => {
    const v = viewerOf(res);
    const timeZone = v?.timeZone ?? config.timeZone;
    const view = isHtmx(req) ? (targetFragment(req, options.fragments) ?? options.fragment ?? page) : page;
    const html = eta.render(view, {
      user: v?.user ?? null,
      isAdmin: v?.user.role === 'admin',
      // Full path: inside the /admin router req.path is relative (/keys), which would light up the wrong tab.
      path: req.baseUrl + req.path,
      htmx: isHtmx(req),
      signupEnabled: config.signupEnabled,
      notice: noticeText(req.query.done),
      f: formatters(timeZone, clock.now()),
      meter: meterSvg,
      demoProviders,
      pageUrl: req.method === 'GET' || isHtmx(req) ? null : pageUrlAfterPost(req),
      ...data,
    });
    if (options.fragment || options.fragments) res.vary('HX-Request');
    if (options.fragments) res.vary('HX-Target');
    res.set('Cache-Control', options.noStore ? 'no-store' : 'private, no-cache');
    res.status(options.status ?? 200).type('html').send(html);
  };
}

function targetFragment(req: Request, fragments: RenderOptions['fragments']): string | undefined {
  const target = req.get('hx-target');
  return fragments && target && Object.hasOwn(fragments, target) ? fragments[target] : undefined;
}

/**
 * The page a form was sent from, for a page rendered in answer to a POST (a refused form shown again with its
 * messages, or a show-once secret). app.js puts it in the address bar with history.replaceState, so the address is
 * never the POST target: reloading shows the page again instead of sending the form twice, and a bookmark works.
 * The Referer is same-origin here (the CSRF check refused anything else; the policy is same-origin), and only its
 * path and query are used, without a stale ?done= notice.
 */
export function pageUrlAfterPost(req: Request): string | null {
  const referer = req.get('referer');
  if (!referer) return null;
  let url: URL;
  try {
    url = new URL(referer);
  } catch {
    return null;
  }
  url.searchParams.delete('done');
  const path = url.pathname + url.search;
  return safeNext(path) === path ? path : null;
}
