import { Router, type Request, type Response } from 'express';
import { formBody, onBadInput, param, viewer, type Portal } from './context.js';
import { text } from './forms.js';
import { EVENT_TYPES } from '../domain/events/event-types.js';
import { teamPermissions } from '../domain/teams/roles.js';

/** Webhook endpoints (docs/webhooks.md): the user's own and those of teams they manage; the secret is shown once. */
export function webhooksRoutes(portal: Portal): Router {
  const { deps, render } = portal;
  const { webhooks, teams } = deps.services;
  const router = Router();

  async function webhooksPage(req: Request, res: Response, extra: Record<string, unknown> = {}, status = 200) {
    const v = viewer(res);
    const managed = (await teams.list(v.actor)).filter((t) => t.role && teamPermissions.manageMembers(t.role));
    const lists = [
      { team: null, endpoints: await webhooks.list({}, v.actor) },
      ...(await Promise.all(managed.map(async (team) => ({ team, endpoints: await webhooks.list({ teamId: team.id }, v.actor) })))),
    ];
    render(req, res, 'webhooks/index', {
      title: 'Webhooks', lists, teams: managed, eventTypes: EVENT_TYPES, form: { events: [] }, error: null, created: null, ...extra,
    }, { status, noStore: !!extra.created });
  }

  router.get('/webhooks', (req, res) => webhooksPage(req, res));

  router.post('/webhooks', async (req, res) => {
    const v = viewer(res);
    const body = formBody(req);
    const raw = body.events;
    const events = (Array.isArray(raw) ? raw : raw === undefined ? [] : [raw]).map(String);
    const form = { url: text(body, 'url'), events, teamId: text(body, 'teamId') };
    onBadInput(res, (error, status) => webhooksPage(req, res, { form, error }, status));
    const created = await webhooks.create({ url: form.url, events, teamId: form.teamId || null }, v.actor);
    // Shown once, in the POST response itself (never redirected with, never stored), like API keys.
    await webhooksPage(req, res, { created }, 201);
  });

  router.get('/webhooks/:id', async (req, res) => {
    const v = viewer(res);
    const endpoint = await webhooks.get(param(req, 'id'), v.actor);
    render(req, res, 'webhooks/show', {
      title: 'Webhook deliveries', endpoint, deliveries: await webhooks.deliveries(endpoint.id, v.actor),
    });
  });

  router.post('/webhooks/:id/test', async (req, res) => {
    const v = viewer(res);
    await webhooks.test(param(req, 'id'), v.actor);
    res.redirect(303, `/webhooks/${param(req, 'id')}?done=test_queued`);
  });

  router.get('/webhooks/:id/delete', async (req, res) => {
    const v = viewer(res);
    const endpoint = await webhooks.get(param(req, 'id'), v.actor);
    render(req, res, 'confirm', {
      title: 'Delete webhook',
      confirm: {
        crumbs: [['/webhooks', 'Webhooks']],
        heading: 'Delete this webhook?',
        object: endpoint.url,
        objectId: endpoint.events.join(', '),
        consequence: 'No more events are sent to this URL, including deliveries still being retried. This cannot be undone.',
        done: null,
        action: `/webhooks/${endpoint.id}/delete`,
        button: 'Delete webhook',
        cancel: 'Keep it',
        cancelHref: '/webhooks',
      },
    });
  });

  router.post('/webhooks/:id/delete', async (req, res) => {
    const v = viewer(res);
    await webhooks.delete(param(req, 'id'), v.actor);
    res.redirect(303, '/webhooks?done=webhook_deleted');
  });

  return router;
}
