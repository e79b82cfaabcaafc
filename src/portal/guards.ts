import type { NextFunction, Request, Response } from 'express';
import type { AppDeps } from '../app-deps.js';
import { actorFor, isSameOrigin, sessionUser } from '../http/request-auth.js';
import { forbidden } from '../domain/errors.js';
import { viewer, type Viewer } from './context.js';

/** Reads the session cookie (if any) into res.locals.viewer; pages decide whether they need one. */
export function loadSession(deps: AppDeps) {
  return async (req: Request, res: Response, next: NextFunction) => {
    const found = await sessionUser(req, res, deps);
    if (found) {
      const v: Viewer = {
        user: found.user,
        sessionId: found.sessionId,
        actor: actorFor(found.user, 'session', req),
        timeZone: found.user.timeZone ?? deps.config.timeZone,
      };
      res.locals.viewer = v;
    }
    next();
  };
}

export function requireUser(_req: Request, res: Response, next: NextFunction) {
  viewer(res); // throws UNAUTHENTICATED → the error handler sends the browser to /login
  next();
}

export function requireAdmin(_req: Request, res: Response, next: NextFunction) {
  if (viewer(res).user.role !== 'admin') throw forbidden('This area is for installation admins.');
  next();
}

/**
 * CSRF: every state change must come from a page of this installation (Origin, or Referer when a browser omits
 * Origin). A request with neither is refused too: browsers always send one of them on a form POST.
 */
export function sameOriginOnly(deps: AppDeps) {
  return (req: Request, _res: Response, next: NextFunction) => {
    if (req.method === 'GET' || req.method === 'HEAD' || req.method === 'OPTIONS') return next();
    if (!isSameOrigin(req, deps.config)) throw forbidden('This request did not come from a ModelBridge page, so it was refused.');
    next();
  };
}
