import type { Request, Response } from 'express';
import type { AppDeps } from '../app-deps.js';
import type { User } from '../domain/accounts/users.service.js';
import { viewerOf } from './context.js';

/** Starts a brand-new session (never reusing one the browser brought along) and sends the user on. */
export async function startSession(deps: AppDeps, req: Request, res: Response, user: User, next: string): Promise<void> {
  const previous = viewerOf(res)?.sessionId ?? deps.sessions.readCookie(req.headers.cookie);
  if (previous) await deps.sessions.invalidate(previous);
  const cookie = await deps.sessions.create(user.id, { ip: req.ip ?? null, userAgent: req.get('user-agent') ?? null });
  res.append('Set-Cookie', cookie.serialize());
  res.redirect(303, next);
}
