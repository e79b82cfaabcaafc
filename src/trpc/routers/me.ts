import { z } from 'zod';
import { authedProcedure, router } from '../init.js';
import { alertThresholds } from '../inputs.js';
import { balanceDto, planDto, teamDto, userDto } from '../presenters.js';

export const meRouter = router({
  /** Who am I: the user, their plan, this period's personal balance and their teams with roles. */
  get: authedProcedure.query(async ({ ctx }) => {
    const { services } = ctx.deps;
    const [balance, teams] = await Promise.all([services.balances.personal(ctx.user.id), services.teams.list(ctx.actor)]);
    return { user: userDto(ctx.user), plan: planDto(balance.plan), balance: balanceDto(balance), teams: teams.map(teamDto) };
  }),

  /** The caller's alert thresholds on their plan's included usage this month (percent; null: 50, 80, 100; [] none). */
  setAlertThresholds: authedProcedure
    .input(z.object({ alertThresholds: alertThresholds.nullable() }).strict())
    .mutation(async ({ ctx, input }) => ({ alertThresholds: await ctx.deps.services.balances.setAlertThresholds(input.alertThresholds, ctx.actor) })),

  /** Changes the caller's password (the current one is required); every other session of the user ends. */
  changePassword: authedProcedure
    .input(z.object({ currentPassword: z.string().max(1000), newPassword: z.string().max(1000) }).strict())
    .mutation(async ({ ctx, input }) => {
      await ctx.deps.services.users.changePassword(ctx.actor, input.currentPassword, input.newPassword, ctx.sessionId ?? null);
      return { ok: true as const };
    }),
});
