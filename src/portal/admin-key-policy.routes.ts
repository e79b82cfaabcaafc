import { Router, type Request, type Response } from 'express';
import { formBody, onBadInput, viewer, type Portal } from './context.js';
import { policyFormValuesOf, policyFromForm, policySection, type PolicyFormState } from './key-policy-form.js';

/**
 * The installation's guard-rails on new keys (docs/security.md, "Guard-rails on new keys"): the form, and every key
 * of the installation that breaks the policy in force. Mounted behind requireAdmin; the service checks the role again.
 */
export function adminKeyPolicyRoutes(portal: Portal): Router {
  const { deps, render } = portal;
  const { keyPolicy, users, teams } = deps.services;
  const router = Router();

  async function policyPage(req: Request, res: Response, form: PolicyFormState | null = null, status = 200) {
    const v = viewer(res);
    const [policy, inForce, violating, everyone, allTeams] = await Promise.all([
      keyPolicy.installation(),
      keyPolicy.inForce(null),
      keyPolicy.violatingKeys({ all: true }, v.actor),
      users.list(),
      teams.listAll(v.actor),
    ]);
    render(req, res, 'admin/key-policy', {
      title: 'Guard-rails on new keys',
      section: 'key-policy',
      keyPolicy: policySection({
        scope: 'installation', policy, inForce, editable: true, action: '/admin/key-policy', violating, form,
        emails: Object.fromEntries(everyone.map((u) => [u.id, u.email])),
        teamNames: Object.fromEntries(allTeams.map((t) => [t.id, t.name])),
      }),
    }, { status, fragments: { 'key-policy': 'partials/_key-policy' } });
  }

  router.get('/key-policy', (req, res) => policyPage(req, res));

  router.post('/key-policy', async (req, res) => {
    const v = viewer(res);
    const values = policyFormValuesOf(formBody(req));
    onBadInput(res, (error, status, fields) => policyPage(req, res, { values, errors: fields ?? {}, error }, status));
    await keyPolicy.setInstallation(policyFromForm(values), v.actor);
    res.redirect(303, '/admin/key-policy?done=key_policy_saved');
  });

  return router;
}
