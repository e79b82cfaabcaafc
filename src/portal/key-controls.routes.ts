import { Router, type Request, type Response } from 'express';
import { badInput } from '../domain/errors.js';
import { LIMIT_RESETS, type LimitReset } from '../domain/keys/controls.js';
import type { KeyControlsInput } from '../domain/keys/key-settings.js';
import { formBody, onBadInput, param, viewer, type FormBody, type Portal } from './context.js';
import { thresholdsFromForm, thresholdsText } from './alert-settings.js';
import { backWithNotice, text } from './forms.js';

/**
 * The key controls of docs/limits.md in the portal: one form for the budget period, allow-list, rate limits and tags
 * of a key, and pause / resume. The same keys service as tRPC decides everything; forms work without JavaScript.
 */
export function keyControlsRoutes(portal: Portal): Router {
  const { deps, render } = portal;
  const { keys } = deps.services;
  const router = Router();

  async function controlsPage(req: Request, res: Response, id: string, error: string | null, status = 200, values?: FormBody) {
    const v = viewer(res);
    const key = await keys.get(id, v.actor);
    const form = values ?? {
      limitReset: key.limitReset ?? '', allowedModels: (key.allowedModels ?? []).join(', '), rpmLimit: String(key.rpmLimit ?? ''),
      tpmLimit: String(key.tpmLimit ?? ''), maxParallel: String(key.maxParallel ?? ''), tags: key.tags.join(', '),
      alertThresholds: key.alertThresholds === null ? '' : thresholdsText(key.alertThresholds),
    };
    render(req, res, 'keys/controls', { title: `Controls of ${key.name}`, key, form, error, resets: LIMIT_RESETS }, { status });
  }

  router.get('/keys/:id/controls', (req, res) => controlsPage(req, res, param(req, 'id'), null));

  router.post('/keys/:id/controls', async (req, res) => {
    const v = viewer(res);
    const body = formBody(req);
    const id = param(req, 'id');
    onBadInput(res, (error, status) => controlsPage(req, res, id, error, status, body));
    await keys.update(id, controlsFromForm(body), v.actor);
    res.redirect(303, `/keys/${encodeURIComponent(id)}?done=controls`);
  });

  // Scheduled rotation on or off (docs/webhooks.md); refused with the reason when the owner has no secret receiver.
  router.post('/keys/:id/auto-rotate', async (req, res) => {
    const v = viewer(res);
    const id = param(req, 'id');
    onBadInput(res, (error, status) => controlsPage(req, res, id, error, status));
    const on = text(formBody(req), 'autoRotate') === '1';
    await keys.update(id, { autoRotate: on }, v.actor);
    res.redirect(303, `/keys/${encodeURIComponent(id)}?done=${on ? 'auto_rotate_on' : 'auto_rotate_off'}`);
  });

  for (const [path, pause] of [['disable', true], ['enable', false]] as const)
    router.post(`/keys/:id/${path}`, async (req, res) => {
      const v = viewer(res);
      const id = param(req, 'id');
      await (pause ? keys.disable(id, v.actor) : keys.enable(id, v.actor));
      res.redirect(303, backWithNotice(formBody(req).back, `/keys/${encodeURIComponent(id)}`, pause ? 'done=paused' : 'done=resumed'));
    });

  return router;
}

/** The controls form as the keys service takes it: empty fields remove a control. */
export function controlsFromForm(body: FormBody): KeyControlsInput {
  const list = (name: string) => text(body, name).split(',').map((s) => s.trim()).filter((s) => s.length > 0);
  const count = (name: string, label: string) => {
    const raw = text(body, name).trim();
    if (raw === '') return null;
    if (!/^\d{1,10}$/.test(raw)) throw badInput(`${label} must be a whole number, or empty for none.`);
    return Number(raw);
  };
  const reset = text(body, 'limitReset');
  if (reset !== '' && !LIMIT_RESETS.includes(reset as LimitReset)) throw badInput('Choose a budget period.');
  const models = list('allowedModels');
  return {
    limitReset: reset === '' ? null : (reset as LimitReset),
    allowedModels: models.length ? models : null,
    rpmLimit: count('rpmLimit', 'Requests per minute'),
    tpmLimit: count('tpmLimit', 'Tokens per minute'),
    maxParallel: count('maxParallel', 'Requests in parallel'),
    tags: list('tags'),
    alertThresholds: thresholdsFromForm(body),
  };
}
