import type { Request, Response } from 'express';
import type { AppDeps } from '../app-deps.js';
import type { User } from '../domain/accounts/users.service.js';
import type { Actor } from '../domain/actor.js';
import type { UsageReports } from '../domain/usage/usage-reports.js';
import { unauthenticated } from '../domain/errors.js';
import type { Render } from './render.js';

/** What every portal route module receives: the app's dependencies plus the portal's own helpers. */
export interface Portal {
  deps: AppDeps;
  render: Render;
  reports: UsageReports;
}

/** The signed-in user of a request, set by loadSession (res.locals.viewer). */
export interface Viewer {
  user: User;
  sessionId: string;
  actor: Actor;
  timeZone: string;
}

export function viewerOf(res: Response): Viewer | null {
  return (res.locals.viewer as Viewer | undefined) ?? null;
}

/** The signed-in user; routes behind requireUser can rely on it, anything else gets "sign in first". */
export function viewer(res: Response): Viewer {
  const v = viewerOf(res);
  if (!v) throw unauthenticated();
  return v;
}

export type FormBody = Record<string, unknown>;

export function formBody(req: Request): FormBody {
  return (req.body && typeof req.body === 'object' ? req.body : {}) as FormBody;
}

/** Re-renders the page a form came from with the domain's message, when validation fails (see errors.ts). */
export type Rerender = (message: string, status: number) => Promise<void> | void;

export function onBadInput(res: Response, rerender: Rerender): void {
  res.locals.rerender = rerender;
}

/** A route parameter as a plain string (ids are opaque; an odd value simply finds nothing). */
export function param(req: Request, name: string): string {
  const value = (req.params as Record<string, unknown>)[name];
  return typeof value === 'string' ? value : '';
}
