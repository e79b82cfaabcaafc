import { Router, type Request, type Response } from 'express';
import { KEY_STATUSES, type ApiKey, type KeyStatus } from '../domain/keys/key.js';
import { MAX_GRACE_SECONDS } from '../domain/keys/keys.service.js';
import { describePolicy } from '../domain/keys/key-policy.js';
import { teamPermissions } from '../domain/teams/roles.js';
import { badInput, collectFieldErrors, throwIfFieldErrors } from '../domain/errors.js';
import { thresholdsText } from './alert-settings.js';
import { formBody, onBadInput, param, viewer, type FormBody, type Portal, type Viewer } from './context.js';
import { backWithNotice, choice, optionalAud, optionalEndOfLocalDate, safeNext, text } from './forms.js';
import { keySnippets } from './key-snippets.js';
import { isHtmx } from './render.js';
import { dailyChart, publicBase, rowModel, teamNames } from './view-models.js';
import { formatAud } from '../domain/money.js';

const STATUSES: readonly KeyStatus[] = KEY_STATUSES;
export const GRACE_CHOICES = [
  { seconds: 0, label: 'Revoke the old key now' },
  { seconds: 3600, label: 'Keep the old key working for 1 hour' },
  { seconds: 86_400, label: 'Keep the old key working for 24 hours' },
  { seconds: 7 * 86_400, label: 'Keep the old key working for 7 days' },
] as const;

export function keysRoutes(portal: Portal): Router {
  const { deps, render, reports } = portal;
  const { keys, teams, usage, clock } = deps.services;
  const router = Router();

  /** Everything the keys page shows: the filtered table, the create form, and the teams the user may create keys for. */
  async function keysPage(req: Request, res: Response, extra: Record<string, unknown>, status = 200, fragment = 'keys/_table') {
    const v = viewer(res);
    const owner = typeof req.query.owner === 'string' ? req.query.owner : '';
    const statusFilter = choice(req.query.status, STATUSES);
    const myTeams = await teams.list(v.actor);
    const teamFilter = owner.startsWith('team:') ? owner.slice(5) : undefined;
    let list = await keys.list({ teamId: teamFilter, status: statusFilter }, v.actor);
    if (owner === 'personal') list = list.filter((k) => k.teamId === null);
    const creatableTeams = myTeams.filter((t) => t.role && teamPermissions.createKeys(t.role));
    render(
      req,
      res,
      'keys/index',
      {
        title: 'API keys',
        policyNotes: await policyNotes(creatableTeams),
        rows: rowModels(list, v.user.id, myTeams),
        filters: { owner, status: statusFilter ?? '' },
        statuses: STATUSES,
        teams: myTeams,
        creatableTeams,
        // "Create a team key" on a team's page links here with ?for=<team id>: the form starts on that team.
        form: { owner: typeof req.query.for === 'string' ? req.query.for : '' },
        createError: null,
        fieldErrors: {},
        created: null,
        ...extra,
      },
      { status, fragment, noStore: !!extra.created },
    );
  }

  /** The guard-rails in force, in words, for personal keys and each team the viewer may create keys for. */
  async function policyNotes(creatable: Array<{ id: string; name: string }>): Promise<Array<{ owner: string; text: string }>> {
    const owners = [{ id: null, label: 'Personal keys' }, ...creatable.map((t) => ({ id: t.id, label: `Team ${t.name}` }))];
    const notes = await Promise.all(owners.map(async (o) => ({ owner: o.label, text: describePolicy(await deps.services.keyPolicy.inForce(o.id)) })));
    return notes.filter((n): n is { owner: string; text: string } => n.text !== null);
  }

  /** One key as a table row for this viewer (with its team's name). */
  async function rowFor(key: ApiKey, v: Viewer) {
    return rowModel(key, teamNames(await teams.list(v.actor)), clock.now(), v.user.id);
  }

  function rowModels(list: ApiKey[], userId: string, myTeams: Awaited<ReturnType<typeof teams.list>>) {
    const names = teamNames(myTeams);
    const now = clock.now();
    return list.map((key) => rowModel(key, names, now, userId));
  }

  router.get('/keys', (req, res) => keysPage(req, res, {}));

  router.post('/keys', async (req, res) => {
    const v = viewer(res);
    const body = formBody(req);
    const form = { name: text(body, 'name'), limit: text(body, 'limit'), expires: text(body, 'expires'), owner: text(body, 'owner'), autoRotate: text(body, 'autoRotate') === '1' };
    onBadInput(res, (createError, status, fields) =>
      keysPage(req, res, { form, createError: fields ? null : createError, fieldErrors: formFieldErrors(fields) }, status, 'keys/_create'),
    );
    // Each field parsed on its own, so every bad one is marked with its own message (not only the first).
    let spendLimitMicro: number | null = null;
    let expiresAt: Date | null = null;
    const parseErrors = collectFieldErrors({
      spendLimitMicro: () => (spendLimitMicro = optionalAud(body, 'limit', 'The spending limit')),
      expiresAt: () => (expiresAt = optionalEndOfLocalDate(body, 'expires', v.timeZone)),
    });
    throwIfFieldErrors({
      ...keys.inputErrors({ name: form.name, ...(!parseErrors.spendLimitMicro && { spendLimitMicro }), ...(!parseErrors.expiresAt && { expiresAt }) }),
      ...parseErrors,
    });
    const created = await keys.create(
      { name: form.name, spendLimitMicro, expiresAt, teamId: form.owner && form.owner !== 'personal' ? form.owner : null, autoRotate: form.autoRotate },
      v.actor,
    );
    // The secret exists only in this response: rendered straight from the POST (no redirect, nothing stored),
    // marked no-store so neither the browser cache nor a proxy keeps it.
    await keysPage(req, res, { created: showOnce(req, created.key, created.secret, 'created') }, 201, 'keys/_created');
  });

  router.get('/keys/:id', async (req, res) => {
    const v = viewer(res);
    const key = await keys.get(param(req, 'id'), v.actor);
    const scope = await reports.scope({ keyId: key.id }, v.actor);
    const since = new Date(clock.now().getTime() - 30 * 86_400_000);
    const [daily, models, recent, myTeams, successor, visible, refused, alerts, leaks] = await Promise.all([
      reports.daily(scope, 30, v.timeZone),
      reports.byModel(scope, { from: since }),
      usage.list({ keyId: key.id, limit: 25 }, v.actor),
      teams.list(v.actor),
      key.rotatedToId ? keys.get(key.rotatedToId, v.actor).catch(() => null) : Promise.resolve(null),
      keys.list({}, v.actor),
      deps.services.refusals.forKey(key.id, v.actor),
      deps.services.alerts.forKey(key.id, v.actor),
      deps.services.leaks.noticesFor(v.actor, key.id),
    ]);
    render(req, res, 'keys/show', {
      title: key.name,
      key: rowModel(key, teamNames(myTeams), clock.now(), v.user.id),
      chart: dailyChart(daily, v.timeZone, `Daily spend of ${key.name} over the last 30 days`),
      models,
      recent: recent.events,
      refused,
      alerts,
      leaks,
      alertThresholds: thresholdsText(key.alertThresholds),
      successor,
      // The set-up snippets again, with a placeholder where the secret (shown once, not stored) goes.
      ...(key.status === 'active' || key.status === 'limit_reached'
        ? { keyPlaceholder: keyPlaceholder(key), snippets: keySnippets(publicBase(req, deps.config.publicUrl), keyPlaceholder(key)) }
        : {}),
      // An installation admin may look at (and revoke) any key, but only the key's own people change it.
      manageable: visible.some((k) => k.id === key.id),
    });
  });

  /** One table row, for htmx to put back after an edit is cancelled. */
  router.get('/keys/:id/row', async (req, res) => {
    const v = viewer(res);
    const key = await keys.get(param(req, 'id'), v.actor);
    render(req, res, 'keys/_row', { row: await rowFor(key, v) });
  });

  // Inline limit edit: htmx swaps the row for a small form and back; without JavaScript it is its own page.
  // The id is passed in, not read from req.params: when the error handler re-renders, params are gone.
  async function limitPage(req: Request, res: Response, id: string, error: string | null, status = 200, value?: string) {
    const v = viewer(res);
    const key = await keys.get(id, v.actor);
    const row = await rowFor(key, v);
    render(req, res, 'keys/limit', { title: `Spending limit of ${key.name}`, row, error, value: value ?? (key.spendLimitMicro === null ? '' : microToInput(key.spendLimitMicro)) }, { status, fragment: 'keys/_row_edit' });
  }

  router.get('/keys/:id/limit', (req, res) => limitPage(req, res, param(req, 'id'), null));

  router.post('/keys/:id/limit', async (req, res) => {
    const v = viewer(res);
    const body = formBody(req);
    const id = param(req, 'id');
    onBadInput(res, (error, status) => limitPage(req, res, id, error, status, text(body, 'limit')));
    const key = await keys.update(id, { spendLimitMicro: optionalAud(body, 'limit', 'The spending limit') }, v.actor);
    if (isHtmx(req)) return render(req, res, 'keys/_row', { row: await rowFor(key, v), flash: 'Limit updated.' });
    res.redirect(303, backWithNotice(body.back, '/keys', 'done=limit'));
  });

  // Revoke: the portal's one confirmation pattern (views/confirm.eta), with or without JavaScript.
  router.get('/keys/:id/revoke', async (req, res) => {
    const v = viewer(res);
    const key = await keys.get(param(req, 'id'), v.actor);
    const back = safeNext(req.query.back) === '/' ? '/keys' : safeNext(req.query.back);
    render(req, res, 'confirm', {
      title: `Revoke ${key.name}`,
      confirm: {
        crumbs: [['/keys', 'API keys'], [`/keys/${key.id}`, key.name]],
        heading: 'Revoke this key?',
        object: key.name,
        objectId: `mbk_…${key.last4}`,
        consequence: 'Anything using this key stops working on its very next request. Revoking cannot be undone; its usage history stays.',
        done: key.status === 'revoked' ? 'This key is already revoked.' : null,
        action: `/keys/${key.id}/revoke`,
        back,
        button: 'Revoke key',
        cancel: 'Keep it',
        cancelHref: back,
      },
    });
  });

  router.post('/keys/:id/revoke', async (req, res) => {
    const v = viewer(res);
    const body = formBody(req);
    const key = await keys.revoke(param(req, 'id'), v.actor);
    if (isHtmx(req)) return render(req, res, 'keys/_row', { row: await rowFor(key, v), flash: 'Key revoked.' });
    res.redirect(303, backWithNotice(body.back, '/keys', 'done=revoked'));
  });

  router.get('/keys/:id/rotate', async (req, res) => {
    const v = viewer(res);
    const key = await keys.get(param(req, 'id'), v.actor);
    // Rotated already: its successor is the key to rotate; the key page says so and links it.
    if (key.rotatedToId) return res.redirect(303, `/keys/${key.id}`);
    render(req, res, 'keys/rotate', { title: `Rotate ${key.name}`, key, graceChoices: GRACE_CHOICES, error: null });
  });

  router.post('/keys/:id/rotate', async (req, res) => {
    const v = viewer(res);
    const body = formBody(req);
    const key = await keys.get(param(req, 'id'), v.actor);
    onBadInput(res, (error, status) => render(req, res, 'keys/rotate', { title: `Rotate ${key.name}`, key, graceChoices: GRACE_CHOICES, error }, { status }));
    const grace = graceSeconds(body);
    const rotated = await keys.rotate(key.id, grace, v.actor);
    render(req, res, 'keys/rotated', { title: `New key for ${key.name}`, previous: rotated.previous, created: showOnce(req, rotated.key, rotated.secret, 'rotated') }, { status: 201, noStore: true });
  });

  function showOnce(req: Request, key: ApiKey, secret: string, how: 'created' | 'rotated') {
    return { key, secret, how, snippets: keySnippets(publicBase(req, deps.config.publicUrl), secret) };
  }

  return router;
}

function graceSeconds(body: FormBody): number {
  const raw = text(body, 'grace');
  const seconds = Number(raw);
  if (!/^\d+$/.test(raw) || seconds > MAX_GRACE_SECONDS) throw badInput('Choose how long the old key keeps working.');
  return seconds;
}

/** Stands for a key's secret in snippets: recognisably that key (its last four), not a working secret. */
function keyPlaceholder(key: ApiKey): string {
  return `mbk_YOUR_KEY_${key.last4}`;
}

/** The domain's field names as the create form names its inputs. */
function formFieldErrors(fields: Readonly<Record<string, string>> | undefined): Record<string, string> {
  const names: Record<string, string> = { name: 'name', spendLimitMicro: 'limit', expiresAt: 'expires' };
  return Object.fromEntries(Object.entries(fields ?? {}).map(([field, message]) => [names[field] ?? field, message]));
}


function microToInput(micro: number): string {
  return formatAud(micro).replace(/^A\$/, '').replace(/,/g, '');
}
