import { Router } from 'express';
import { keysNeedingAttention } from '../domain/keys/attention.js';
import { viewer, type Portal } from './context.js';
import { dailyChart } from './view-models.js';

export function dashboardRoutes(portal: Portal): Router {
  const { deps, render, reports } = portal;
  const { balances, keys, teams, clock } = deps.services;
  const router = Router();

  router.get('/', async (req, res) => {
    const v = viewer(res);
    const [balance, allKeys, myTeams, ownScope, personalScope, alerts, leaks] = await Promise.all([
      balances.personal(v.user.id),
      keys.list({}, v.actor),
      teams.list(v.actor),
      reports.scope({ ownOnly: true }, v.actor),
      reports.scope({ personal: true }, v.actor),
      deps.services.alerts.forUser(v.actor),
      deps.services.leaks.noticesFor(v.actor),
    ]);
    const [daily, periodAll, periodPersonal] = await Promise.all([
      reports.daily(ownScope, 30, v.timeZone),
      reports.total(ownScope, balance.periodStart),
      reports.total(personalScope, balance.periodStart),
    ]);
    const includedRemaining = Math.max(0, balance.includedMicro - balance.includedUsedMicro);
    const overageHeadroom =
      balance.overageCapMicro === null ? null : Math.max(0, balance.overageCapMicro - balance.overageUsedMicro);
    render(req, res, 'dashboard/index', {
      title: 'Dashboard',
      balance,
      alerts,
      leaks,
      includedRemaining,
      overageHeadroom,
      periodAll,
      periodPersonal,
      chart: dailyChart(daily, v.timeZone, 'Daily spend of your keys over the last 30 days'),
      attention: keysNeedingAttention(allKeys, clock.now()),
      activeKeys: allKeys.filter((k) => k.status === 'active').length,
      // A brand-new account (no key yet) is welcomed, not welcomed back.
      returning: allKeys.length > 0,
      teams: myTeams,
    });
  });

  return router;
}
