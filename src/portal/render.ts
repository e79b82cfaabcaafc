import { fileURLToPath } from 'node:url';
import type { Request, Response } from 'express';
import { Eta } from 'eta';
import type { Config } from '../config.js';
import type { Clock } from '../domain/clock.js';
import { viewerOf } from './context.js';
import { formatters } from './format.js';
import { noticeText } from './notices.js';
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
    const view = options.fragment && isHtmx(req) ? options.fragment : page;
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
      ...data,
    });
    if (options.fragment) res.vary('HX-Request');
    res.set('Cache-Control', options.noStore ? 'no-store' : 'private, no-cache');
    res.status(options.status ?? 200).type('html').send(html);
  };
}
