import type { Request, Response } from 'express';
import type { AppDeps } from '../app-deps.js';
import type { User } from '../domain/accounts/users.service.js';
import { bearerToken, isSameOrigin, sessionUser } from '../http/request-auth.js';

export interface TrpcContext {
  req: Request;
  res: Response;
  deps: AppDeps;
  user: User | null;
  via: 'session' | 'token' | null;
  /** The browser session the call came with (only when via is 'session'). */
  sessionId?: string | null;
  /**
   * Why a credential the request carried cannot be used here (a proxy key, an unknown, revoked or expired token).
   * A bad credential is refused outright, even on public procedures, rather than quietly treated as anonymous.
   */
  credentialProblem: string | null;
  /** Whether the browser's Origin is this installation: cookie-authenticated mutations require it (CSRF). */
  sameOrigin: boolean;
}

/**
 * Who is calling. A bearer token wins over a cookie: automation sends `Authorization: Bearer mbm_…` and must
 * never silently fall back to whatever session a browser-like client also carries.
 */
export async function createContext(deps: AppDeps, req: Request, res: Response): Promise<TrpcContext> {
  const base = { req, res, deps, sameOrigin: isSameOrigin(req, deps.config) };
  const token = bearerToken(req);
  if (token !== null) {
    const user = await deps.services.tokens.authenticate(token);
    if (user) return { ...base, user, via: 'token', credentialProblem: null };
    const problem = token.startsWith('mbk_')
      ? 'Proxy keys (mbk_…) only work on /v1. Use a management token (mbm_…) for the API.'
      : 'That management token is not valid: it may be mistyped, revoked or expired.';
    return { ...base, user: null, via: null, credentialProblem: problem };
  }
  if (req.get('authorization')) return { ...base, user: null, via: null, credentialProblem: 'Use `Authorization: Bearer mbm_…`.' };
  const session = await sessionUser(req, res, deps);
  return session ? { ...base, user: session.user, via: 'session', sessionId: session.sessionId, credentialProblem: null } : { ...base, user: null, via: null, credentialProblem: null };
}
