import { Router, type Request, type Response } from 'express';
import { formBody, onBadInput, param, viewer, type Portal } from './context.js';
import { optionalEndOfLocalDate, text } from './forms.js';
import { notFound } from '../domain/errors.js';
import { publicBase } from './view-models.js';

/** Management tokens (mbm_…) for the tRPC API: created and shown once, listed, revoked. */
export function tokensRoutes(portal: Portal): Router {
  const { deps, render } = portal;
  const { tokens } = deps.services;
  const router = Router();

  async function tokensPage(req: Request, res: Response, extra: Record<string, unknown> = {}, status = 200) {
    const v = viewer(res);
    render(
      req,
      res,
      'tokens/index',
      { title: 'Management tokens', tokens: await tokens.list(v.actor), form: {}, error: null, created: null, apiBase: `${publicBase(req, deps.config.publicUrl)}/trpc`, ...extra },
      { status, noStore: !!extra.created },
    );
  }

  router.get('/tokens', (req, res) => tokensPage(req, res));

  router.post('/tokens', async (req, res) => {
    const v = viewer(res);
    const body = formBody(req);
    const form = { name: text(body, 'name'), expires: text(body, 'expires') };
    onBadInput(res, (error, status) => tokensPage(req, res, { form, error }, status));
    const created = await tokens.create({ name: form.name, expiresAt: optionalEndOfLocalDate(body, 'expires', v.timeZone) }, v.actor);
    // Shown once, straight in the POST response (never redirected with, never stored), like API keys.
    await tokensPage(req, res, { created }, 201);
  });

  router.get('/tokens/:id/revoke', async (req, res) => {
    const v = viewer(res);
    const token = (await tokens.list(v.actor)).find((t) => t.id === param(req, 'id'));
    if (!token) throw notFound('Token');
    render(req, res, 'confirm', {
      title: `Revoke ${token.name}`,
      confirm: {
        crumbs: [['/tokens', 'Management tokens']],
        heading: 'Revoke this token?',
        object: token.name,
        objectId: `mbm_…${token.last4}`,
        consequence: 'Automation using this token stops working at once. This cannot be undone.',
        done: token.status === 'active' ? null : 'This token no longer works.',
        action: `/tokens/${token.id}/revoke`,
        button: 'Revoke token',
        cancel: 'Keep it',
        cancelHref: '/tokens',
      },
    });
  });

  router.post('/tokens/:id/revoke', async (req, res) => {
    const v = viewer(res);
    await tokens.revoke(param(req, 'id'), v.actor);
    res.redirect(303, '/tokens?done=token_revoked');
  });

  return router;
}
