import { Router, type Request, type Response } from 'express';
import { PASSWORD_MIN } from '../domain/accounts/users.service.js';
import { InviteUnusableError } from '../domain/teams/invites.service.js';
import { formBody, onBadInput, param, viewer, viewerOf, type Portal } from './context.js';
import { text } from './forms.js';
import { startSession } from './sign-in.js';

/**
 * The page a team invitation link opens: open without a session. Signed in as the invited address, one button
 * joins; without an account for it, the page creates one (with that address, a name and a password) and joins; with
 * an account but signed out, it asks to sign in and comes back. A used, expired or withdrawn link gets a page that
 * says which (410), never an error.
 */
export function inviteRoutes(portal: Portal): Router {
  const { deps, render } = portal;
  const { invites } = deps.services;
  const router = Router();

  async function invitePage(req: Request, res: Response, extra: Record<string, unknown> = {}, status?: number) {
    const token = param(req, 'token');
    const invite = await invites.lookup(token);
    const v = viewerOf(res);
    const unusable = !invite ? new InviteUnusableError('unknown') : invite.state !== 'pending' ? new InviteUnusableError(invite.state) : null;
    render(req, res, 'auth/invite', {
      title: invite ? `Join ${invite.teamName}` : 'Invitation',
      token, invite, unusable: unusable?.message ?? null,
      signedInAs: v?.user.email ?? null,
      isInvitee: !!v && !!invite && v.user.email === invite.email,
      form: {}, error: null, passwordMin: PASSWORD_MIN, ...extra,
      // The token is in the address: the page is never stored.
    }, { status: status ?? (unusable ? (invite ? 410 : 404) : 200), noStore: true });
  }

  router.get('/invite/:token', (req, res) => invitePage(req, res));

  router.post('/invite/:token/accept', async (req, res) => {
    const v = viewer(res);
    onBadInput(res, (error, status) => invitePage(req, res, { error }, status));
    const joined = await orUnusablePage(req, res, () => invites.accept(param(req, 'token'), v.actor));
    if (joined) res.redirect(303, `/teams/${encodeURIComponent(joined.teamId)}?done=invite_accepted`);
  });

  router.post('/invite/:token/account', async (req, res) => {
    const body = formBody(req);
    const form = { name: text(body, 'name') };
    onBadInput(res, (error, status) => invitePage(req, res, { form, error }, status));
    const user = await orUnusablePage(req, res, () =>
      invites.acceptAsNewUser(param(req, 'token'), { name: form.name || undefined, password: text(body, 'password') }, {
        ip: req.ip ?? null, userAgent: req.get('user-agent') ?? null,
      }));
    if (user) await startSession(deps, req, res, user, '/teams?done=invite_accepted');
  });

  /**
   * A link that went stale between showing the page and sending its form (used by a concurrent accept, withdrawn):
   * the same page as opening it now, and null to tell the route it has answered.
   */
  async function orUnusablePage<T>(req: Request, res: Response, run: () => Promise<T>): Promise<T | null> {
    try {
      return await run();
    } catch (err) {
      if (!(err instanceof InviteUnusableError)) throw err;
      await invitePage(req, res);
      return null;
    }
  }

  return router;
}
