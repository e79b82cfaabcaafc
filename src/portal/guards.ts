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
 * The refusal names the setting behind it: the commonest cause is not an attack but PUBLIC_URL unset or not the
 * address users open (http vs https, another host name or port), and then every sign-in answers 403.
 */
export function crossOriginMessage(publicUrl: string | undefined): string {
  const setting = publicUrl
    ? `This installation's PUBLIC_URL is ${publicUrl}; if you opened it at another address, open ${publicUrl} or have the operator set PUBLIC_URL to the address you use.`
    : 'PUBLIC_URL is not set, so only loopback addresses (127.0.0.1, localhost) are accepted: the operator sets PUBLIC_URL to the address you use.';
  return `This request did not come from a page of this ModelBridge installation, so it was refused. ${setting} (See docs/deploy.md.)`;
}

/**
 * CSRF: every state change must come from a page of this installation (Origin, or Referer when a browser omits
 * Origin). A request with neither is refused too: browsers always send one of them on a form POST.
 */
export function sameOriginOnly(deps: AppDeps) {
  return (req: Request, _res: Response, next: NextFunction) => {
    if (req.method === 'GET' || req.method === 'HEAD' || req.method === 'OPTIONS') return next();
    if (!isSameOrigin(req, deps.config)) throw forbidden(crossOriginMessage(deps.config.publicUrl));
    next();
  };
}
