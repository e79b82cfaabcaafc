import type { NextFunction, Request, Response } from 'express';
import { isDatabaseUnavailable } from '../db/errors.js';
import type { Logger } from '../logger.js';
import { DomainError, type DomainErrorCode } from '../domain/errors.js';
import type { Rerender } from './context.js';
import { isHtmx, type Render } from './render.js';

const STATUS: Record<DomainErrorCode, number> = {
  BAD_INPUT: 400,
  UNAUTHENTICATED: 401,
  FORBIDDEN: 403,
  NOT_FOUND: 404,
  CONFLICT: 409,
  TOO_MANY_REQUESTS: 429,
};

const TITLES: Record<number, string> = {
  400: 'That did not work',
  403: 'Not allowed',
  404: 'Not found',
  409: 'That did not work',
  413: 'Too large',
  429: 'Slow down',
  500: 'Something went wrong',
  503: 'Temporarily unavailable',
};

/** Retry-After of the 503 page: about how long the database deadlines take to notice it is back. */
const UNAVAILABLE_RETRY_AFTER_SECONDS = 5;

export function notFoundHandler(_req: Request, _res: Response, next: NextFunction) {
  next(new DomainError('NOT_FOUND', 'There is no page at this address.'));
}

/**
 * The portal's one error handler: every domain error becomes an HTTP answer here, and nowhere else.
 * - invalid input / conflicts re-render the form the user sent, with the message (400 / 409);
 * - not signed in → the sign-in page (htmx: a full-page redirect via HX-Redirect);
 * - forbidden / not found / throttled → an error page (htmx: a message swapped into #flash);
 * - a database that does not answer (in time) → a 503 page with Retry-After;
 * - anything else is logged and answered with a generic 500 that leaks nothing.
 */
export function portalErrorHandler(render: Render, logger: Logger) {
  return async (err: unknown, req: Request, res: Response, next: NextFunction) => {
    if (res.headersSent) return next(err);
    try {
      const { status, message } = classify(err);
      if (status === 500) logger.error({ err, path: req.path }, 'portal request failed');
      if (status === 503) {
        logger.warn({ err, path: req.path }, 'portal request refused: database unavailable');
        res.set('Retry-After', String(UNAVAILABLE_RETRY_AFTER_SECONDS));
      }
      if (status === 401) return redirectToLogin(req, res);
      const rerender = res.locals.rerender as Rerender | undefined;
      if ((status === 400 || status === 409 || status === 429) && rerender && err instanceof DomainError) return await rerender(message, status, err.fields);
      if (isHtmx(req)) {
        res.set('HX-Retarget', '#flash').set('HX-Reswap', 'innerHTML');
        return render(req, res, 'partials/_alert', { message, kind: 'error' }, { status });
      }
      render(req, res, 'error', { title: TITLES[status] ?? 'Error', status, message }, { status });
    } catch (renderErr) {
      logger.error({ err: renderErr }, 'portal error page failed');
      if (!res.headersSent) res.status(500).type('text').send('Something went wrong.');
    }
  };
}

function classify(err: unknown): { status: number; message: string } {
  if (err instanceof DomainError) return { status: STATUS[err.code], message: err.message };
  if (isDatabaseUnavailable(err)) return { status: 503, message: 'ModelBridge cannot reach its database right now. Nothing was changed; please try again in a moment.' };
  const e = err as { type?: string; status?: number } | null;
  if (e?.type === 'entity.too.large') return { status: 413, message: 'That form was too large.' };
  if (e?.status && e.status >= 400 && e.status < 500) return { status: e.status === 404 ? 404 : 400, message: 'That request could not be read.' };
  return { status: 500, message: 'Something went wrong on our side. Please try again.' };
}

function redirectToLogin(req: Request, res: Response) {
  const next = req.method === 'GET' && req.path !== '/' ? `?next=${encodeURIComponent(req.originalUrl)}` : '';
  if (isHtmx(req)) return res.set('HX-Redirect', `/login${next}`).status(204).end();
  res.redirect(303, `/login${next}`);
}
