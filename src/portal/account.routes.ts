import { Router, type Request, type Response } from 'express';
import { PASSWORD_MIN } from '../domain/accounts/users.service.js';
import { formBody, onBadInput, param, viewer, viewerOf, type Portal } from './context.js';
import { thresholdsFromForm, thresholdsText } from './alert-settings.js';
import { text } from './forms.js';

/** A signed-in user's own account: changing the password, and the spend alerts on the personal balance. */
export function accountRoutes(portal: Portal): Router {
  const { deps, render } = portal;
  const router = Router();
  const page = 'account/password';

  router.get('/account/password', (req, res) => {
    render(req, res, page, { title: 'Change your password', error: null, passwordMin: PASSWORD_MIN });
  });

  router.post('/account/password', async (req, res) => {
    const v = viewer(res);
    const body = formBody(req);
    onBadInput(res, (error, status) => render(req, res, page, { title: 'Change your password', error, passwordMin: PASSWORD_MIN }, { status }));
    await deps.services.users.changePassword(v.actor, text(body, 'current'), text(body, 'password'), v.sessionId);
    res.redirect(303, '/account/password?done=password_changed');
  });

  async function alertsPage(req: Request, res: Response, error: string | null, status = 200, value?: string) {
    const v = viewer(res);
    const [balance, alerts] = await Promise.all([deps.services.balances.personal(v.user.id), deps.services.alerts.forUser(v.actor)]);
    render(req, res, 'account/alerts', {
      title: 'Spend alerts', error, alerts, thresholds: thresholdsText(balance.alertThresholds),
      value: value ?? (balance.alertThresholds === null ? '' : thresholdsText(balance.alertThresholds)), balance,
    }, { status });
  }

  /** The caller's thresholds on their plan's included usage, the notice of this month and the crossings so far. */
  router.get('/account/alerts', (req, res) => alertsPage(req, res, null));

  router.post('/account/alerts', async (req, res) => {
    const v = viewer(res);
    const body = formBody(req);
    onBadInput(res, (error, status) => alertsPage(req, res, error, status, text(body, 'alertThresholds')));
    await deps.services.balances.setAlertThresholds(thresholdsFromForm(body), v.actor);
    res.redirect(303, '/account/alerts?done=alerts_saved');
  });

  return router;
}

/** The page an administrator's one-time reset link opens: open without a session, spent on success. */
export function passwordResetRoutes(portal: Portal): Router {
  const { deps, render } = portal;
  const { users } = deps.services;
  const router = Router();
  const title = 'Choose a new password';

  router.get('/reset/:token', async (req, res) => {
    const user = await users.findPasswordReset(param(req, 'token'));
    const invalid = user ? null : 'This reset link is not valid: it may have been used already or have expired. Ask your administrator for a new one.';
    render(req, res, 'auth/reset', { title, token: param(req, 'token'), email: user?.email ?? null, error: invalid, passwordMin: PASSWORD_MIN },
      { status: user ? 200 : 404, noStore: true });
  });

  router.post('/reset/:token', async (req, res) => {
    const token = param(req, 'token');
    const user = await users.findPasswordReset(token);
    onBadInput(res, (error, status) => render(req, res, 'auth/reset', { title, token, email: user?.email ?? null, error, passwordMin: PASSWORD_MIN }, { status, noStore: true }));
    await users.resetPassword(token, text(formBody(req), 'password'), { ip: req.ip ?? null, userAgent: req.get('user-agent') ?? null });
    // Any session the browser had is gone with the user's others; signing in again proves the new password.
    if (viewerOf(res)) res.append('Set-Cookie', deps.sessions.blankCookie().serialize());
    res.redirect(303, '/login?done=password_reset');
  });

  return router;
}
