import type { Request, Response } from 'express';
import type { Config } from '../config.js';
import type { SessionManager } from '../auth/sessions.js';
import type { Actor } from '../domain/actor.js';
import type { Services } from '../domain/services.js';
import type { User } from '../domain/accounts/users.service.js';

/** Shared by the portal and tRPC: who is behind a request, from its session cookie. */
export async function sessionUser(
  req: Request,
  res: Response,
  deps: { sessions: SessionManager; services: Services },
): Promise<{ user: User; sessionId: string } | null> {
  const sessionId = deps.sessions.readCookie(req.headers.cookie);
  if (!sessionId) return null;
  const result = await deps.sessions.validate(sessionId);
  if (!result) {
    res.append('Set-Cookie', deps.sessions.blankCookie().serialize());
    return null;
  }
  if (result.refreshed) res.append('Set-Cookie', result.refreshed.serialize());
  const user = await deps.services.users.get(result.userId);
  if (!user || user.disabled) return null;
  return { user, sessionId: result.sessionId };
}

export function actorFor(user: User, via: Actor['via'], req: Request): Actor {
  return { userId: user.id, role: user.role, via, ip: req.ip ?? null, userAgent: req.get('user-agent') ?? null };
}

/**
 * CSRF and DNS-rebinding defence for cookie-authenticated state changes (and /setup): the browser's Origin (or,
 * failing that, Referer) must be this installation. With PUBLIC_URL set that is its origin, plus the documented
 * MODELBRIDGE_ALLOWED_ORIGINS; without it, the origin of the request's own Host — but only for a loopback host
 * name, because a page on an attacker's name that resolves to 127.0.0.1 sends a matching Host and Origin.
 * SameSite=Lax cookies already stop most cross-site posts; this closes the rest.
 */
export function isSameOrigin(req: Request, config: Pick<Config, 'publicUrl' | 'allowedOrigins'>): boolean {
  const origin = req.get('origin') ?? refererOrigin(req.get('referer'));
  if (!origin) return false;
  if (config.publicUrl) return origin === new URL(config.publicUrl).origin || config.allowedOrigins.includes(origin);
  const own = `${req.protocol}://${req.get('host')}`;
  return origin === own && isLoopbackOrigin(own);
}

/** http(s)://localhost, 127.0.0.0/8 or [::1], any port: names no outside DNS answer can point elsewhere. */
export function isLoopbackOrigin(origin: string): boolean {
  let host: string;
  try {
    host = new URL(origin).hostname.toLowerCase();
  } catch {
    return false;
  }
  return host === 'localhost' || host === '[::1]' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

function refererOrigin(referer: string | undefined): string | undefined {
  if (!referer) return undefined;
  try {
    return new URL(referer).origin;
  } catch {
    return undefined;
  }
}

export function bearerToken(req: Request): string | null {
  const header = req.get('authorization');
  if (!header) return null;
  const match = /^Bearer\s+(\S+)$/i.exec(header);
  return match ? match[1]! : null;
}
