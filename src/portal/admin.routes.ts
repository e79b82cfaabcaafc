import { Router, type Request, type Response } from 'express';
import { listJobStatus } from '../domain/jobs/job-locks.js';
import { PROVIDERS, type CatalogModel } from '../domain/models/models.service.js';
import { badInput, notFound } from '../domain/errors.js';
import { JOB_NAMES, type JobName } from '../jobs/job.js';
import { KEY_STATUSES as ALL_KEY_STATUSES, type KeyStatus } from '../domain/keys/key.js';
import { formBody, onBadInput, param, viewer, type FormBody, type Portal } from './context.js';
import { choice, isoDateText, localDateStart, optionalAud, requiredAud, text } from './forms.js';
import { AUDIT_ACTIONS, describeAuditEvent } from '../domain/audit/describe-event.js';
import { auditNames } from '../domain/audit/audit-names.js';
import { publicBase } from './view-models.js';

const KEY_STATUSES: readonly KeyStatus[] = ALL_KEY_STATUSES;
const AUDIT_PAGE = 100;
const AUDIT_TARGETS = ['key', 'team', 'user', 'token', 'plan', 'model', 'installation'] as const;
/** The actors that are not a person (the audit row's actor_kind). */
const AUDIT_ACTOR_KINDS = ['cli', 'system', 'key', 'scanner'] as const;

/** Every job has one (a new job without a description does not compile). */
const JOB_DESCRIPTIONS: Record<JobName, string> = {
  'expire-keys': 'Marks keys past their expiry as expired (every minute).',
  'release-holds': 'Releases holds of requests that never settled (every minute).',
  reconcile: 'Recomputes balances and key spend from the ledger and corrects drift (every 5 minutes).',
  rollover: 'Starts a new billing period at the month boundary (hourly check).',
  'deliver-webhooks': 'Sends due webhook deliveries, retrying failed ones with backoff for a day (every 15 seconds).',
  'rotate-keys': 'Warns of keys due for rotation and rotates those set to rotate on schedule (every minute).',
};

/** The installation admin's area (mounted behind requireAdmin; the domain checks the role again). */
export function adminRoutes(portal: Portal): Router {
  const { deps, render } = portal;
  const { users, plans, balances, teams, models, audit, keys, db, clock } = deps.services;
  const router = Router();
  const back = (res: Response, path: string, done: string) => res.redirect(303, `/admin/${path}?done=${done}`);

  router.get('/', (_req, res) => res.redirect(303, '/admin/users'));

  // Users: create, plan, disable/enable.
  async function usersPage(req: Request, res: Response, extra: Record<string, unknown> = {}, status = 200) {
    const [all, planList] = await Promise.all([users.list(), plans.list()]);
    const planNames = Object.fromEntries(planList.map((p) => [p.id, p.name]));
    render(req, res, 'admin/users', { title: 'Users', section: 'users', users: all, plans: planList, planNames, form: {}, error: null, ...extra }, { status, noStore: !!extra.resetLink });
  }

  router.get('/users', (req, res) => usersPage(req, res));

  router.post('/users', async (req, res) => {
    const v = viewer(res);
    const body = formBody(req);
    const form = { email: text(body, 'email'), name: text(body, 'name'), plan: text(body, 'plan'), admin: text(body, 'admin') === 'on' };
    onBadInput(res, (error, status) => usersPage(req, res, { form, error }, status));
    const plan = (await plans.list()).find((p) => p.id === form.plan);
    await users.create(
      { email: form.email, name: form.name || undefined, password: text(body, 'password'), role: form.admin ? 'admin' : 'user', planName: plan?.name },
      v.actor,
    );
    back(res, 'users', 'user_created');
  });

  router.post('/users/:id/plan', async (req, res) => {
    onBadInput(res, (error, status) => usersPage(req, res, { error }, status));
    await users.setPlan(param(req, 'id'), text(formBody(req), 'plan'), viewer(res).actor);
    back(res, 'users', 'user_updated');
  });

  // Disabling stops every key of the user at once: the portal's one confirmation page first (views/confirm.eta).
  router.get('/users/:id/disable', async (req, res) => {
    const user = await users.get(param(req, 'id'));
    if (!user) throw notFound('User');
    render(req, res, 'confirm', {
      title: `Disable ${user.email}`,
      confirm: {
        crumbs: [['/admin/users', 'Users']],
        heading: 'Disable this user?',
        object: user.name ? `${user.name} (${user.email})` : user.email,
        consequence: 'They are signed out everywhere and cannot sign in, and every key they own is refused from its next request until you enable them again.',
        done: user.disabled ? 'This user is already disabled.' : null,
        action: `/admin/users/${user.id}/disable`,
        button: 'Disable user',
        cancelHref: '/admin/users',
      },
    });
  });

  router.post('/users/:id/disable', async (req, res) => {
    onBadInput(res, (error, status) => usersPage(req, res, { error }, status));
    await users.setDisabled(param(req, 'id'), true, viewer(res).actor);
    back(res, 'users', 'user_updated');
  });

  // A one-time reset link, shown once straight in the POST response (never redirected with, never stored).
  router.post('/users/:id/reset-link', async (req, res) => {
    onBadInput(res, (error, status) => usersPage(req, res, { error }, status));
    const user = await users.get(param(req, 'id'));
    const { token, expiresAt } = await users.issuePasswordReset(param(req, 'id'), viewer(res).actor);
    const url = `${publicBase(req, deps.config.publicUrl)}/reset/${token}`;
    await usersPage(req, res, { resetLink: { email: user?.email ?? '', url, expiresAt } }, 201);
  });

  router.post('/users/:id/enable', async (req, res) => {
    await users.setDisabled(param(req, 'id'), false, viewer(res).actor);
    back(res, 'users', 'user_updated');
  });

  // Every key of the installation, for incident response: admins may list and revoke any key (audited as such),
  // never change its limit or see its secret.
  router.get('/keys', async (req, res) => {
    const v = viewer(res);
    const status = choice(req.query.status, KEY_STATUSES);
    const [all, everyone, allTeams] = await Promise.all([keys.list({ all: true, status }, v.actor), users.list(), teams.listAll(v.actor)]);
    render(req, res, 'admin/keys', {
      title: 'All keys',
      section: 'keys',
      keys: all,
      status: status ?? '',
      statuses: KEY_STATUSES,
      emails: Object.fromEntries(everyone.map((u) => [u.id, u.email])),
      teamNames: Object.fromEntries(allTeams.map((t) => [t.id, t.name])),
    });
  });

  // Balances: top-ups for users and teams.
  async function balancesPage(req: Request, res: Response, extra: Record<string, unknown> = {}, status = 200) {
    const v = viewer(res);
    const all = await users.list();
    const personal = await Promise.all(all.map(async (user) => ({ user, balance: await balances.personal(user.id) })));
    render(req, res, 'admin/balances', { title: 'Balances and top-ups', section: 'balances', personal, teams: await teams.listAll(v.actor), form: {}, error: null, ...extra }, { status });
  }

  router.get('/balances', (req, res) => balancesPage(req, res));

  router.post('/credit', async (req, res) => {
    const body = formBody(req);
    const form = { target: text(body, 'target'), amount: text(body, 'amount'), note: text(body, 'note') };
    onBadInput(res, (error, status) => balancesPage(req, res, { form, error }, status));
    const [kind, id] = form.target.split(':');
    if (!id || (kind !== 'user' && kind !== 'team')) throw badInput('Choose who receives the top-up.');
    const amount = requiredAud(body, 'amount', 'The amount');
    await balances.credit(kind === 'user' ? { userId: id } : { teamId: id }, amount, form.note.trim().slice(0, 200) || null, viewer(res).actor);
    back(res, 'balances', 'credited');
  });

  // Plans.
  async function plansPage(req: Request, res: Response, extra: Record<string, unknown> = {}, status = 200) {
    render(req, res, 'admin/plans', { title: 'Plans', section: 'plans', plans: await plans.list(), form: {}, error: null, ...extra }, { status });
  }

  router.get('/plans', (req, res) => plansPage(req, res));

  router.post('/plans', async (req, res) => {
    const body = formBody(req);
    onBadInput(res, (error, status) => plansPage(req, res, { form: body, error }, status));
    await plans.create(planInput(body), viewer(res).actor);
    back(res, 'plans', 'plan_saved');
  });

  router.post('/plans/:id', async (req, res) => {
    const body = formBody(req);
    onBadInput(res, (error, status) => plansPage(req, res, { error }, status));
    await plans.update(param(req, 'id'), planInput(body), viewer(res).actor);
    back(res, 'plans', 'plan_saved');
  });

  // Model catalog and prices.
  async function modelsPage(req: Request, res: Response, extra: Record<string, unknown> = {}, status = 200) {
    render(req, res, 'admin/models', { title: 'Models and prices', section: 'models', models: await models.list(), providers: PROVIDERS, form: {}, error: null, ...extra }, { status });
  }

  router.get('/models', (req, res) => modelsPage(req, res));

  router.post('/models', async (req, res) => {
    const body = formBody(req);
    onBadInput(res, (error, status) => modelsPage(req, res, { form: body, error }, status));
    await models.upsert(modelInput(body), viewer(res).actor);
    back(res, 'models', 'model_saved');
  });

  // The audit log as sentences with links (issue #15, point 13), filtered by who, what kind of action, target, period.
  router.get('/audit', async (req, res) => {
    const v = viewer(res);
    const q = req.query;
    const form = {
      type: choice(q.type, AUDIT_TARGETS) ?? '', action: choice(q.action, AUDIT_ACTIONS) ?? '', actor: typeof q.actor === 'string' ? q.actor.slice(0, 40) : '',
      from: typeof q.from === 'string' ? isoDateText(q.from.slice(0, 10)) : '', to: typeof q.to === 'string' ? isoDateText(q.to.slice(0, 10)) : '',
    };
    const [, actorId] = /^user:([0-9A-Za-z]{1,32})$/.exec(form.actor) ?? [];
    const actorKind = choice(form.actor, AUDIT_ACTOR_KINDS);
    const from = localDateStart(form.from, v.timeZone) ?? undefined;
    const to = localDateStart(form.to, v.timeZone, 1) ?? undefined;
    const before = typeof q.before === 'string' && /^\d+$/.test(q.before) ? q.before : undefined;
    const events = await audit.list(db, {
      targetType: form.type || undefined, action: form.action || undefined, actorId, actorKind: actorId ? undefined : actorKind ?? undefined,
      from, to, beforeId: before, limit: AUDIT_PAGE,
    });
    const names = await auditNames(db, events);
    const query = new URLSearchParams(Object.entries(form).filter(([, value]) => value)).toString();
    render(req, res, 'admin/audit', {
      title: 'Audit log',
      section: 'audit',
      lines: events.map((e) => ({ event: e, ...describeAuditEvent(e, names) })),
      form,
      people: await users.list(),
      actorKinds: AUDIT_ACTOR_KINDS,
      actions: AUDIT_ACTIONS,
      types: AUDIT_TARGETS,
      rangeError: from && to && from.getTime() >= to.getTime() ? 'The “From” date is after the “To” date, so nothing can match: swap them.' : null,
      nextUrl: events.length === AUDIT_PAGE ? `/admin/audit?${query}${query ? '&' : ''}before=${events[events.length - 1]!.id}` : null,
    });
  });

  router.get('/jobs', async (req, res) => {
    const statuses = await listJobStatus(db, clock.now());
    const byName = new Map(statuses.map((s) => [s.name, s]));
    render(req, res, 'admin/jobs', {
      title: 'Jobs and reconciliation',
      section: 'jobs',
      jobs: JOB_NAMES.map((name) => ({ name, description: JOB_DESCRIPTIONS[name], status: byName.get(name) ?? null })),
      jobsEnabled: deps.config.jobsEnabled,
    });
  });

  return router;
}

function planInput(body: FormBody) {
  const overageAllowed = text(body, 'overageAllowed') === 'on';
  return {
    name: text(body, 'name'),
    includedMicro: requiredAud(body, 'included', 'The included amount'),
    overageAllowed,
    overageCapMicro: overageAllowed ? optionalAud(body, 'overageCap', 'The overage cap') : null,
    isDefault: text(body, 'isDefault') === 'on' ? true : undefined,
  };
}

function modelInput(body: FormBody): CatalogModel {
  const provider = choice(text(body, 'provider'), PROVIDERS);
  if (!provider) throw badInput('Choose a provider.');
  const maxOutput = text(body, 'maxOutputTokens').trim();
  if (!/^\d{1,8}$/.test(maxOutput)) throw badInput('The output cap is a whole number of tokens.');
  return {
    id: text(body, 'id').trim(),
    provider,
    upstreamModel: text(body, 'upstreamModel'),
    inputMicroPerMTok: requiredAud(body, 'inputPrice', 'The input price'),
    outputMicroPerMTok: requiredAud(body, 'outputPrice', 'The output price'),
    // Empty: billed at the input price.
    cachedInputMicroPerMTok: optionalAud(body, 'cachedInputPrice', 'The cached input price'),
    cacheWriteMicroPerMTok: optionalAud(body, 'cacheWritePrice', 'The 5-minute cache write price'),
    cacheWrite1hMicroPerMTok: optionalAud(body, 'cacheWrite1hPrice', 'The 1-hour cache write price'),
    maxOutputTokens: Number(maxOutput),
    enabled: text(body, 'enabled') === 'on',
  };
}
