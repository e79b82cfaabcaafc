import { Router, type Request, type Response } from 'express';
import { billingPeriodAt } from '../domain/billing/period.js';
import { TEAM_ROLES, teamPermissions, type TeamRole } from '../domain/teams/roles.js';
import { badInput, notFound, UnknownEmailError } from '../domain/errors.js';
import { thresholdsFromForm, thresholdsText } from './alert-settings.js';
import { formBody, onBadInput, param, viewer, type Portal, type Viewer } from './context.js';
import { choice, optionalAud, text } from './forms.js';
import { policyFormValuesOf, policyFromForm, policySection, type PolicyFormState } from './key-policy-form.js';
import { publicBase, rowModel, teamNames } from './view-models.js';

export function teamsRoutes(portal: Portal): Router {
  const { deps, render, reports } = portal;
  const { teams, invites, keys, keyPolicy, clock } = deps.services;
  const router = Router();

  async function listPage(req: Request, res: Response, extra: Record<string, unknown> = {}, status = 200) {
    const v = viewer(res);
    render(req, res, 'teams/index', { title: 'Teams', teams: await teams.list(v.actor), form: {}, error: null, ...extra }, { status });
  }

  router.get('/teams', (req, res) => listPage(req, res));

  router.post('/teams', async (req, res) => {
    const v = viewer(res);
    const name = text(formBody(req), 'name');
    onBadInput(res, (error, status) => listPage(req, res, { form: { name }, error }, status));
    const team = await teams.create(name, v.actor);
    res.redirect(303, `/teams/${encodeURIComponent(team.id)}?done=team_created`);
  });

  /**
   * A team's page. What it shows follows the role table: everyone sees the balance and the members; owners and
   * admins see all team keys and usage by member and key, members their own keys and usage, viewers no keys.
   */
  // The id is passed in, not read from req.params: when the error handler re-renders, params are gone.
  async function teamPage(req: Request, res: Response, teamId: string, extra: Record<string, unknown> = {}, status = 200, policyForm: PolicyFormState | null = null) {
    const v = viewer(res);
    const team = await teams.get(teamId, v.actor);
    const role = team.role;
    const asInstallationAdmin = role === null; // teams.get lets installation admins look at any team
    const seesAll = asInstallationAdmin || teamPermissions.manageAllKeys(role);
    const teamKeys = await keys.list(asInstallationAdmin ? { teamId: team.id, all: true } : { teamId: team.id }, v.actor);
    const period = billingPeriodAt(clock.now(), deps.config.timeZone);
    const scope = role ? await reports.scope({ teamId: team.id }, v.actor) : { keys: null };
    const [byUser, byKey, total] = await Promise.all([
      reports.byUser(scope, { from: period.start }),
      reports.byKey(scope, { from: period.start }),
      reports.total(scope, period.start),
    ]);
    const names = teamNames([team]);
    const controls = await deps.services.teamControls.get(team.id, v.actor);
    const budgets = new Map(controls.members.map((b) => [b.userId, b]));
    const alerts = await deps.services.alerts.forTeam(team.id, v.actor);
    const canManageMembers = role !== null && teamPermissions.manageMembers(role);
    const pendingInvites = canManageMembers ? await invites.listPending(team.id, v.actor) : [];
    const seesKeys = seesAll || (role !== null && teamPermissions.manageOwnKeys(role));
    render(
      req,
      res,
      'teams/show',
      {
        title: team.name,
        team,
        role,
        roles: TEAM_ROLES,
        can: {
          createKeys: role !== null && teamPermissions.createKeys(role),
          manageMembers: canManageMembers,
          seesAllKeys: seesAll,
          seesKeys,
          grantableRoles: role ? TEAM_ROLES.filter((r) => teamPermissions.canManageRole(role, r)) : [],
        },
        members: team.members.map((m) => ({
          ...m,
          manageable: role !== null && teamPermissions.manageMembers(role) && teamPermissions.canManageRole(role, m.role) && m.userId !== v.user.id,
          isViewer: m.userId === v.user.id,
          // Every member sees the monthly budgets (their own above all); owners and admins set them.
          budget: budgets.get(m.userId) ?? null,
        })),
        keys: teamKeys.map((k) => rowModel(k, names, clock.now(), v.user.id)),
        usage: { byUser, byKey, total, periodStart: period.start },
        alerts,
        alertThresholds: thresholdsText(controls.alertThresholds),
        alertValue: controls.alertThresholds === null ? '' : thresholdsText(controls.alertThresholds),
        memberForm: {},
        memberError: null,
        emailError: null,
        invites: pendingInvites,
        inviteLink: null,
        inviteForm: {},
        inviteError: null,
        keyPolicy: await keyPolicySection(
          team.id, v.actor,
          { editable: canManageMembers, seesKeys, ownKeysOnly: !seesAll, emails: team.members, saved: req.query.done === 'key_policy_saved' },
          policyForm,
        ),
        ...extra,
      },
      // An invite link is shown once, in the answer to the POST that made it: never stored by the browser.
      { status, fragment: 'teams/_members', fragments: { 'key-policy': 'partials/_key-policy' }, noStore: !!extra.inviteLink },
    );
  }

  /** The team's guard-rails on new keys: a form for its owners and admins, read-only for the others (who set the same). */
  async function keyPolicySection(
    teamId: string,
    actor: Viewer['actor'],
    who: { editable: boolean; seesKeys: boolean; ownKeysOnly: boolean; emails: Array<{ userId: string; email: string }>; saved: boolean },
    form: PolicyFormState | null,
  ) {
    const [policy, inForce, violating] = await Promise.all([
      keyPolicy.team(teamId, actor),
      keyPolicy.inForce(teamId),
      who.seesKeys ? keyPolicy.violatingKeys({ teamId }, actor) : Promise.resolve(null),
    ]);
    return policySection({
      scope: 'team', policy, inForce, editable: who.editable, action: `/teams/${encodeURIComponent(teamId)}/key-policy`, violating,
      ownKeysOnly: who.ownKeysOnly, emails: Object.fromEntries(who.emails.map((m) => [m.userId, m.email])), form, savedNoticeHere: who.saved,
    });
  }

  router.get('/teams/:id', (req, res) => teamPage(req, res, param(req, 'id')));

  // The whole policy is sent (an unticked box switches its rule off); the service checks the role under lock.
  router.post('/teams/:id/key-policy', async (req, res) => {
    const v = viewer(res);
    const teamId = param(req, 'id');
    const values = policyFormValuesOf(formBody(req));
    onBadInput(res, (error, status, fields) => teamPage(req, res, teamId, {}, status, { values, errors: fields ?? {}, error }));
    await keyPolicy.setTeam(teamId, policyFromForm(values), v.actor);
    res.redirect(303, `/teams/${encodeURIComponent(teamId)}?done=key_policy_saved#key-policy`);
  });

  router.post('/teams/:id/members', async (req, res) => {
    const v = viewer(res);
    const body = formBody(req);
    const teamId = param(req, 'id');
    const memberForm = { email: text(body, 'email'), role: text(body, 'role') };
    onBadInput(res, (memberError, status) => teamPage(req, res, teamId, { memberForm, memberError }, status));
    try {
      await teams.addMember(teamId, memberForm.email, roleFrom(memberForm.role), v.actor);
    } catch (err) {
      // An address nobody uses is a mistake in the form (400 at the field), not a missing page.
      if (err instanceof UnknownEmailError) return teamPage(req, res, teamId, { memberForm, emailError: err.message }, 400);
      throw err;
    }
    res.redirect(303, `/teams/${encodeURIComponent(param(req, 'id'))}?done=member_added`);
  });

  // An invitation by e-mail: the one-time link is shown once, straight in this POST's answer (never redirected with).
  router.post('/teams/:id/invites', async (req, res) => {
    const v = viewer(res);
    const teamId = param(req, 'id');
    const inviteForm = { email: text(formBody(req), 'email'), role: text(formBody(req), 'role') };
    onBadInput(res, (inviteError, status) => teamPage(req, res, teamId, { inviteForm, inviteError }, status));
    const { invite, token } = await invites.create(teamId, inviteForm.email, roleFrom(inviteForm.role), v.actor);
    const url = `${publicBase(req, deps.config.publicUrl)}/invite/${token}`;
    await teamPage(req, res, teamId, { inviteLink: { email: invite.email, role: invite.role, url, expiresAt: invite.expiresAt } }, 201);
  });

  router.post('/teams/:id/invites/:inviteId/revoke', async (req, res) => {
    const v = viewer(res);
    const teamId = param(req, 'id');
    onBadInput(res, (inviteError, status) => teamPage(req, res, teamId, { inviteError }, status));
    await invites.revoke(teamId, param(req, 'inviteId'), v.actor);
    res.redirect(303, `/teams/${encodeURIComponent(teamId)}?done=invite_revoked#team-invites`);
  });

  router.post('/teams/:id/members/:userId/role', async (req, res) => {
    const v = viewer(res);
    const teamId = param(req, 'id');
    onBadInput(res, (memberError, status) => teamPage(req, res, teamId, { memberError }, status));
    await teams.setRole(teamId, param(req, 'userId'), roleFrom(text(formBody(req), 'role')), v.actor);
    res.redirect(303, `/teams/${encodeURIComponent(param(req, 'id'))}?done=member_updated`);
  });

  router.post('/teams/:id/alerts', async (req, res) => {
    const v = viewer(res);
    const teamId = param(req, 'id');
    const body = formBody(req);
    onBadInput(res, (alertError, status) => teamPage(req, res, teamId, { alertError, alertValue: text(body, 'alertThresholds') }, status));
    await deps.services.teamControls.setControls(teamId, { alertThresholds: thresholdsFromForm(body) }, v.actor);
    res.redirect(303, `/teams/${encodeURIComponent(teamId)}?done=alerts_saved`);
  });

  router.post('/teams/:id/members/:userId/budget', async (req, res) => {
    const v = viewer(res);
    const teamId = param(req, 'id');
    onBadInput(res, (memberError, status) => teamPage(req, res, teamId, { memberError }, status));
    await deps.services.teamControls.setMemberBudget(teamId, param(req, 'userId'), optionalAud(formBody(req), 'budget', 'The monthly budget'), v.actor);
    res.redirect(303, `/teams/${encodeURIComponent(teamId)}?done=member_updated`);
  });

  // Removing (or leaving) revokes the member's keys for the team: the portal's one confirmation page first.
  router.get('/teams/:id/members/:userId/remove', async (req, res) => {
    const v = viewer(res);
    const team = await teams.get(param(req, 'id'), v.actor);
    const member = team.members.find((m) => m.userId === param(req, 'userId'));
    if (!member) throw notFound('Member');
    const leaving = member.userId === v.user.id;
    render(req, res, 'confirm', {
      title: leaving ? `Leave ${team.name}` : `Remove ${member.email}`,
      confirm: {
        crumbs: [['/teams', 'Teams'], [`/teams/${team.id}`, team.name]],
        heading: leaving ? 'Leave this team?' : 'Remove this member?',
        object: leaving ? team.name : `${member.name} (${member.email})`,
        consequence: leaving
          ? 'Your keys for this team are revoked at once, and you no longer see its keys or usage.'
          : `Their keys for ${team.name} are revoked at once. Their personal keys are not affected.`,
        action: `/teams/${team.id}/members/${member.userId}/remove`,
        button: leaving ? 'Leave team' : 'Remove member',
        cancelHref: `/teams/${team.id}`,
      },
    });
  });

  router.post('/teams/:id/members/:userId/remove', async (req, res) => {
    const v = viewer(res);
    const teamId = param(req, 'id');
    onBadInput(res, (memberError, status) => teamPage(req, res, teamId, { memberError }, status));
    const leaving = param(req, 'userId') === v.user.id;
    await teams.removeMember(param(req, 'id'), param(req, 'userId'), v.actor);
    res.redirect(303, leaving ? '/teams?done=left' : `/teams/${encodeURIComponent(param(req, 'id'))}?done=member_removed`);
  });

  return router;
}

function roleFrom(raw: string): TeamRole {
  const role = choice(raw, TEAM_ROLES);
  if (!role) throw badInput('Choose a role: owner, admin, member or viewer.');
  return role;
}
