import { Router, type Request, type Response } from 'express';
import type { User } from '../domain/accounts/users.service.js';
import { PASSWORD_MIN } from '../domain/accounts/users.service.js';
import { createFirstAdmin, needsFirstRun } from '../domain/accounts/first-run.js';
import { notFound } from '../domain/errors.js';
import { formBody, onBadInput, viewerOf, type Portal } from './context.js';
import { safeNext, text } from './forms.js';
import { startSession } from './sign-in.js';

/** Sign-in, sign-up, first-run set-up and sign-out: with the reset and invite links, the portal pages open without a session. */
export function authRoutes(portal: Portal): Router {
  const { deps, render } = portal;
  const { users, loginThrottle } = deps.services;
  const router = Router();

  const signIn = (req: Request, res: Response, user: User, next: string) => startSession(deps, req, res, user, next);

  router.get('/login', async (req, res) => {
    if (viewerOf(res)) return res.redirect(303, '/');
    if (await needsFirstRun(users)) return res.redirect(303, '/setup');
    render(req, res, 'auth/login', { title: 'Sign in', email: '', next: safeNext(req.query.next), error: null });
  });

  router.post('/login', async (req, res) => {
    const body = formBody(req);
    const email = text(body, 'email').trim();
    const next = safeNext(body.next);
    const page = (error: string, status: number) => render(req, res, 'auth/login', { title: 'Sign in', email, next, error }, { status });
    const subject = await loginThrottle.subject(email, req.ip);
    const wait = await loginThrottle.retryAfterSeconds(subject);
    if (wait > 0) {
      res.set('Retry-After', String(wait));
      return page(`Too many sign-in attempts. Try again in ${Math.ceil(wait / 60)} minute${wait > 60 ? 's' : ''}.`, 429);
    }
    const user = await users.verifyCredentials(email, text(body, 'password'));
    if (!user) {
      await loginThrottle.recordFailure(subject);
      // One answer for unknown e-mail, wrong password and disabled account: nothing to learn about who exists.
      return page('That e-mail and password do not match an account.', 401);
    }
    await loginThrottle.recordSuccess(subject);
    await signIn(req, res, user, next);
  });

  router.post('/logout', async (req, res) => {
    const v = viewerOf(res);
    if (v) await deps.sessions.invalidate(v.sessionId);
    res.append('Set-Cookie', deps.sessions.blankCookie().serialize());
    res.redirect(303, '/login?done=signed_out');
  });

  router.get('/signup', (req, res) => {
    if (!deps.config.signupEnabled) throw notFound('Page');
    if (viewerOf(res)) return res.redirect(303, '/');
    render(req, res, 'auth/signup', { title: 'Create your account', form: {}, error: null, passwordMin: PASSWORD_MIN });
  });

  router.post('/signup', async (req, res) => {
    if (!deps.config.signupEnabled) throw notFound('Page');
    const body = formBody(req);
    const form = { email: text(body, 'email'), name: text(body, 'name') };
    onBadInput(res, (error, status) => render(req, res, 'auth/signup', { title: 'Create your account', form, error, passwordMin: PASSWORD_MIN }, { status }));
    // Open sign-up always gets the default plan and the plain user role.
    const user = await users.create({ email: form.email, name: form.name || undefined, password: text(body, 'password') }, null);
    await signIn(req, res, user, '/');
  });

  router.get('/setup', async (req, res) => {
    if (!(await needsFirstRun(users))) return res.redirect(303, '/login');
    render(req, res, 'auth/setup', { title: 'Set up ModelBridge', form: {}, error: null, passwordMin: PASSWORD_MIN });
  });

  router.post('/setup', async (req, res) => {
    const body = formBody(req);
    const form = { email: text(body, 'email'), name: text(body, 'name') };
    onBadInput(res, (error, status) => {
      if (status === 409) return res.redirect(303, '/login');
      render(req, res, 'auth/setup', { title: 'Set up ModelBridge', form, error, passwordMin: PASSWORD_MIN }, { status });
    });
    const user = await createFirstAdmin(users, { email: form.email, name: form.name || undefined, password: text(body, 'password') });
    await signIn(req, res, user, '/');
  });

  return router;
}
